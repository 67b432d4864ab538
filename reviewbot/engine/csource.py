"""Kernel C source rewritten so that tree-sitter-c, without cpp, sees plain C.

Every rewrite keeps line numbers (and mostly columns), so findings still point at the
patch:

* annotations such as ``__init`` or ``__rcu`` are blanked (same length), because
  tree-sitter otherwise takes ``static void __init foo(void)`` for a declaration;
* loop macros (``for_each_mem_cgroup(memcg) {``, ``cgroup_taskset_for_each(t, css, tset)``,
  ``do_each_thread(g, t)``) become ``while (for_each_mem_cgroup(memcg)) {``. Without it
  tree-sitter-c 0.24 parses ``for_each_mem_cgroup(memcg) { ... }`` as a K&R *function
  definition* nested in the function (seen on mm/memcontrol.c), and the loop is lost;
* scope-based guards and ``__free()`` cleanups (include/linux/cleanup.h) become the calls
  they stand for, at the places they run.

:mod:`reviewbot.engine.cfunc` builds function views on top of :func:`prepare_source`.
"""

from __future__ import annotations

import re

import tree_sitter_c
from tree_sitter import Language, Parser

from reviewbot.facts.knowledge import load_knowledge

_LANGUAGE = Language(tree_sitter_c.language())

# Annotations that confuse a parser without cpp; blanked, not removed, to keep columns.
_ANNOTATION_WORDS = (
    "__init", "__exit", "__always_inline", "noinline", "__cold", "__must_check", "__rcu", "__user",
    "__iomem", "__percpu", "__maybe_unused", "notrace", "asmlinkage", "__sched", "__ref",
    "__meminit", "__read_mostly", "__ro_after_init", "__weak", "__latent_entropy", "__must_hold(",
    "__force", "__bpf_kfunc", "__noreturn", "__visible", "__always_unused", "__fastpath_inline",
    "__function_aligned", "noinstr", "__printf(",
)
_ANNOTATIONS = re.compile(
    r"\b(?:__init|__exit|__always_inline|noinline|__cold|__must_check|__rcu|__user|__iomem|"
    r"__percpu|__maybe_unused|notrace|asmlinkage|__sched|__ref|__meminit|__read_mostly|"
    r"__ro_after_init|__weak|__latent_entropy|__must_hold\([^)]*\)|"
    # sparse's `__force` in a cast (`*(void __rcu __force **)&kn->priv`, cgroup_get_from_id())
    # makes tree-sitter give up on the statement, and with it on a put that follows.
    r"__force\b|"
    # Function attributes of 6.x (kernel/cgroup/rstat.c's `__bpf_kfunc void
    # css_rstat_flush(...)`, kernel/exit.c's `void __noreturn do_exit(long code)`): read as
    # a type name, they leave the definition unparsed.
    r"__bpf_kfunc|__noreturn|__visible|__always_unused|__fastpath_inline|__function_aligned|"
    r"noinstr|__printf\([^)]*\))"
)
# Sparse lock annotations say a function returns with a lock held (or releases one taken
# by its caller) on purpose: kept as a same-length comment, /*ACQ..*/ or /*REL..*/, that
# the refcount engine reads (blkg_conf_prep() is __acquires(rcu) in 6.1).
_LOCK_ANNOTATIONS = re.compile(r"__(acquires|releases)\([^)]*\)")
LOCK_MARKER = re.compile(r"/\*(ACQ|REL)")
# ``__must_hold(&l)``: the function runs with its caller's lock held; kept as a same-length
# comment, /*HLD &l     */, that the context engine reads (engine/entryctx.py).
_MUST_HOLD = re.compile(r"__must_hold\(([^)\n]*)\)")
HOLD_MARKER = re.compile(r"/\*HLD (.*?)\s*\*/")


def _lock_marker(m: re.Match[str]) -> str:
    tag = "ACQ" if m.group(1) == "acquires" else "REL"
    return "/*" + tag + "-" * (len(m.group(0)) - 7) + "*/"
# Statement-position macros that take a body: kernel iterators.
LOOP_MACRO = re.compile(
    r"^(?:\w*for_each\w*|do_each_\w+|while_each_thread_never|"
    r"list_for_each\w*|hlist_for_each\w*)$"
)
_LOOP_HEAD = re.compile(r"^([ \t]*)([A-Za-z_]\w*)[ \t]*\(", re.MULTILINE)
# Every name LOOP_MACRO accepts holds one of these.
_LOOP_WORDS = ("for_each", "do_each_", "while_each_thread_never")


def parser() -> Parser:
    return Parser(_LANGUAGE)


# A type as a macro argument (`container_of(p, struct mem_cgroup, css)`, `list_entry(...)`)
# is not C: tree-sitter gives up on the whole statement. `struct_mem_cgroup` (same length)
# is an identifier, and no analysis needs the type.
# (The "(" or "," before it is matched, not looked behind for: a pattern that starts with
# a character class lets the regex engine skip ahead; one that starts with a lookbehind
# tries every position. The next match cannot need that character: it follows a word.)
_TYPE_ARG = re.compile(r"([(,])(\s*)(struct|union|enum)(\s+)(\w+)(?=\s*[,)])")
# ...and a base type of more than one word (`min_t(unsigned int, a, b)`,
# `alloc_percpu(unsigned long)`), but never a cast: followed by "," or by ")" that ends
# the argument list.
_BASE_TYPE_ARG = re.compile(
    r"([(,])(\s*)((?:un)?signed|long)([ \t]+)(int|long|short|char)(?:([ \t]+)(int|long))?"
    r"(?=\s*(?:,|\)\s*[;,)]))"
)
# `static DEFINE_RATELIMIT_STATE(rs, ...);` in a function body (mm/oom_kill.c): a static
# without a type is not C; the macro alone is a call statement.
_STATIC_DEFINE = re.compile(r"^([ \t]+)static(\s+)(?=(?:DEFINE|DECLARE)_\w+\()", re.MULTILINE)


def _join_type(m: re.Match[str]) -> str:
    """`unsigned int` -> `unsigned_int`: same length, one identifier."""
    words = m.group(3) + "_" * len(m.group(4)) + m.group(5)
    if m.group(7):
        words += "_" * len(m.group(6)) + m.group(7)
    return m.group(1) + m.group(2) + words


def prepare_source(text: str) -> str:
    """Rewrite kernel idioms so tree-sitter sees plain C; line numbers are unchanged.

    Each rewrite runs only on a text that holds a word every match of it holds: the
    regexes cost as much as parsing, and most functions and hunks have no annotation,
    no iterator and no while_each_thread()."""
    text = rewrite_guards(text)
    text = rewrite_cleanups(text)
    if "struct" in text or "union" in text or "enum" in text:
        text = _TYPE_ARG.sub(
            lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{'_' * len(m.group(4))}{m.group(5)}", text)
    if "_t(" in text or "percpu(" in text:
        text = _BASE_TYPE_ARG.sub(_join_type, text)
    if "static" in text and "E_" in text:
        text = _STATIC_DEFINE.sub(lambda m: m.group(1) + " " * len("static") + m.group(2), text)
    if "__acquires(" in text or "__releases(" in text:
        text = _LOCK_ANNOTATIONS.sub(_lock_marker, text)
    if "__must_hold(" in text:
        text = _MUST_HOLD.sub(lambda m: f"/*HLD {m.group(1)}     */", text)
    if any(word in text for word in _ANNOTATION_WORDS):
        text = _ANNOTATIONS.sub(lambda m: " " * len(m.group(0)), text)
    if not any(word in text for word in _LOOP_WORDS):
        return _close_while_each(text)
    out: list[str] = []
    pos = 0
    for match in _LOOP_HEAD.finditer(text):
        name = match.group(2)
        if not LOOP_MACRO.match(name) or match.start() < pos:
            continue
        open_paren = match.end() - 1
        close = _matching_paren(text, open_paren)
        if close is None:
            continue
        rest = text[close + 1 : close + 200].lstrip()
        if not rest or rest[0] == ";" or rest[0] == ",":
            continue  # a call, or a declaration, not a loop head
        out.append(text[pos : match.start(2)])
        out.append("while (" + text[match.start(2) : close + 1] + ")")
        pos = close + 1
    out.append(text[pos:])
    return _close_while_each("".join(out))


# Every do_each_X() { ... } while_each_X(...); pair of the kernel (do_each_thread,
# do_each_pid_task, do_each_subsys_mask in kernel/cgroup/cgroup.c): unrewritten, the
# closer leaves the whole function unparsed (rebind_subsystems(), cgroup_exit()).
_WHILE_EACH = re.compile(r"(\}\s*)(while_each_\w+\s*\([^;{}]*\))")


def _close_while_each(text: str) -> str:
    """`} while_each_thread(g, t);` closes a do_each_thread() loop: make it a do-while."""
    if "while_each_" not in text:
        return text
    return _WHILE_EACH.sub(lambda m: f"{m.group(1)}while ({m.group(2)})", text)

# Scope-based guards (include/linux/cleanup.h). `guard(spinlock_irq)(&l);` holds the lock
# to the end of the enclosing block and `scoped_guard(mutex, &m) { ... }` for its block;
# tree-sitter reads neither as a lock (the first is a call of a call, the second not C at
# all). They become the lock call where the guard is and the unlock call just before the
# block's closing brace, on the same lines, named GUARD_PREFIX + the call so that the
# analyses know the unlock also happens on every early return.
GUARD_PREFIX = "__guard_"
UNGUARD_PREFIX = "__unguard_"
_GUARD = re.compile(r"\bguard\(\s*(\w+)\s*\)\s*\(")
_SCOPED_GUARD = re.compile(r"\bscoped_guard\s*\(\s*(\w+)\s*(?:,|\))")
MAX_GUARDS = 200  # per input; a generated file with more is left as it is


def rewrite_guards(text: str) -> str:
    """One pass: find the guards and the braces, then edit from the end backwards."""
    if "guard(" not in text:
        return text

    guards = load_knowledge().guards
    found = sorted([*_GUARD.finditer(text), *_SCOPED_GUARD.finditer(text)], key=lambda m: m.start())
    if not found or len(found) > MAX_GUARDS:
        return text
    close_of, enclosing = _brace_structure(text, [m.start() for m in found])
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement); start == end inserts
    for m in found:
        lock, unlock = _calls_for(m.group(1), guards)
        open_paren = text.index("(", m.end() - 1 if m.re is _GUARD else m.start())
        close = _matching_close(text, open_paren, "(", ")", limit=2000)
        if close is None:
            continue
        if m.re is _GUARD:
            args = text[open_paren + 1 : close]
            edits.append((m.start(), close + 1, f"{lock}({args})"))
            block = enclosing.get(m.start())
            if block is not None and block in close_of:
                edits.append((close_of[block], close_of[block], f"{unlock}({args}); "))
            continue
        inner = text[open_paren + 1 : close]
        args = inner.split(",", 1)[1].strip() if "," in inner else ""
        rest = close + 1
        while rest < len(text) and text[rest] in " \t\n":
            rest += 1
        if rest < len(text) and text[rest] == "{" and rest in close_of:
            # The newlines between the head and its brace stay where they were.
            gap = text[close + 1 : rest]
            edits.append((m.start(), rest + 1, "{ " + f"{lock}({args});" + gap))
            edits.append((close_of[rest], close_of[rest] + 1, f"{unlock}({args}); " + "}"))
            continue
        semi = text.find(";", rest, rest + 2000)
        if semi < 0:
            continue
        edits.append((m.start(), close + 1, "{ " + f"{lock}({args});"))
        edits.append((semi + 1, semi + 1, f" {unlock}({args}); " + "}"))
    for start, end, rep in sorted(edits, key=lambda e: (e[0], e[0] != e[1]), reverse=True):
        text = text[:start] + rep + text[end:]
    return text


# Scope-based cleanup (include/linux/cleanup.h): `struct foo *p __free(kfree) = ...;` runs
# the class's cleanup (DEFINE_FREE(kfree, ..., kfree(_T))) on p when p goes out of scope.
# tree-sitter cannot read the attribute; it becomes blanks of the same length, and the
# cleanup a call FREE_PREFIX + class (p) just before the closing brace of the block that
# declares p, on that brace's line: the analyses see what is held when the block ends (the
# tree facts know the class's cleanup from its DEFINE_FREE). An early return also runs
# the cleanup; that path is not modelled.
FREE_PREFIX = "__free_"
_FREE_DECL = re.compile(r"([A-Za-z_]\w*)\s*(?:\[[^\]]*\]\s*)?\b__free\(\s*(\w+)\s*\)")


def rewrite_cleanups(text: str) -> str:
    """`__free(cls)` declarations: blanked, and their cleanup called at the block's end."""
    if "__free(" not in text:
        return text
    found = list(_FREE_DECL.finditer(text))
    if not found or len(found) > MAX_GUARDS:
        return text
    close_of, enclosing = _brace_structure(text, [m.start() for m in found])
    edits: list[tuple[int, int, str]] = []
    for m in found:
        attr = m.start(2) - len("__free("), m.end()
        edits.append((attr[0], attr[1], " " * (attr[1] - attr[0])))
        block = enclosing.get(m.start())
        if block is not None and block in close_of:
            edits.append((close_of[block], close_of[block], f"{FREE_PREFIX}{m.group(2)}({m.group(1)}); "))
    # Inserts at one brace keep the order of declaration reversed (cleanup.h runs the
    # last declared first).
    for start, end, rep in sorted(edits, key=lambda e: (e[0], e[0] != e[1]), reverse=True):
        text = text[:start] + rep + text[end:]
    return text


def _calls_for(cls: str, guards: dict[str, tuple[str, str]]) -> tuple[str, str]:
    lock, unlock = guards.get(cls, (cls, cls))
    return GUARD_PREFIX + lock, UNGUARD_PREFIX + unlock


def _brace_structure(text: str, probes: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    """Matching close of every ``{``, and the innermost open ``{`` at each probe position."""
    close_of: dict[int, int] = {}
    enclosing: dict[int, int] = {}
    stack: list[int] = []
    pending = sorted(probes)
    k, i = 0, 0
    while i < len(text):
        while k < len(pending) and pending[k] <= i:
            if stack:
                enclosing[pending[k]] = stack[-1]
            k += 1
        j = _skip_literal(text, i)
        if j != i:
            i = j
            continue
        if text[i] == "{":
            stack.append(i)
        elif text[i] == "}" and stack:
            close_of[stack.pop()] = i
        i += 1
    return close_of, enclosing


def _skip_literal(text: str, i: int) -> int:
    """Index after a comment or string literal starting at ``i`` (``i`` if none starts)."""
    if text.startswith("/*", i):
        end = text.find("*/", i + 2)
        return len(text) if end < 0 else end + 2
    if text.startswith("//", i):
        end = text.find("\n", i)
        return len(text) if end < 0 else end
    if text[i] in "\"'":
        quote, j = text[i], i + 1
        while j < len(text) and text[j] != quote and text[j] != "\n":
            j += 2 if text[j] == "\\" else 1
        return j + 1
    return i


def _matching_close(
    text: str, open_pos: int, opener: str, closer: str, limit: int | None = None
) -> int | None:
    depth, i = 0, open_pos
    stop = len(text) if limit is None else min(len(text), open_pos + limit)
    while i < stop:
        j = _skip_literal(text, i)
        if j != i:
            i = j
            continue
        ch = text[i]
        if ch == opener:
            depth += 1
        elif ch == closer:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return None



def _matching_paren(text: str, open_pos: int) -> int | None:
    depth = 0
    for i in range(open_pos, min(len(text), open_pos + 2000)):
        ch = text[i]
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        elif ch in ";{}":
            return None
    return None
