"""C functions as the rule engines see them: tree-sitter-c over kernel C, without cpp.

Kernel C is parsed without a preprocessor, so two rewrites keep the tree usable while
preserving every line number:

* annotations such as ``__init`` or ``__rcu`` are blanked (same length), because
  tree-sitter otherwise takes ``static void __init foo(void)`` for a declaration;
* loop macros (``for_each_mem_cgroup(memcg) {``, ``cgroup_taskset_for_each(t, css, tset)``,
  ``do_each_thread(g, t)``) become ``while (for_each_mem_cgroup(memcg)) {``. Without it
  tree-sitter-c 0.24 parses ``for_each_mem_cgroup(memcg) { ... }`` as a K&R *function
  definition* nested in the function (seen on mm/memcontrol.c), and the loop is lost.

A :class:`FunctionView` is one function with its post-image line numbers, the lines the
patch added, and ``partial`` when only what the hunks show was available.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import tree_sitter_c
from tree_sitter import Language, Node, Parser, Range

from reviewbot.diff import FileDiff, Hunk, Line
from reviewbot.facts.knowledge import load_knowledge

_LANGUAGE = Language(tree_sitter_c.language())

# Annotations that confuse a parser without cpp; blanked, not removed, to keep columns.
_ANNOTATION_WORDS = (
    "__init", "__exit", "__always_inline", "noinline", "__cold", "__must_check", "__rcu", "__user",
    "__iomem", "__percpu", "__maybe_unused", "notrace", "asmlinkage", "__sched", "__ref",
    "__meminit", "__read_mostly", "__ro_after_init", "__weak", "__latent_entropy", "__must_hold(",
)
_ANNOTATIONS = re.compile(
    r"\b(?:__init|__exit|__always_inline|noinline|__cold|__must_check|__rcu|__user|__iomem|"
    r"__percpu|__maybe_unused|notrace|asmlinkage|__sched|__ref|__meminit|__read_mostly|"
    r"__ro_after_init|__weak|__latent_entropy|__must_hold\([^)]*\))"
)
# Sparse lock annotations say a function returns with a lock held (or releases one taken
# by its caller) on purpose: kept as a same-length comment, /*ACQ..*/ or /*REL..*/, that
# the refcount engine reads (blkg_conf_prep() is __acquires(rcu) in 6.1).
_LOCK_ANNOTATIONS = re.compile(r"__(acquires|releases)\([^)]*\)")
LOCK_MARKER = re.compile(r"/\*(ACQ|REL)")


def _lock_marker(m: re.Match[str]) -> str:
    tag = "ACQ" if m.group(1) == "acquires" else "REL"
    return "/*" + tag + "-" * (len(m.group(0)) - 7) + "*/"
# Statement-position macros that take a body: kernel iterators.
LOOP_MACRO = re.compile(
    r"^(?:\w*for_each\w*|do_each_thread|while_each_thread_never|"
    r"list_for_each\w*|hlist_for_each\w*)$"
)
_LOOP_HEAD = re.compile(r"^([ \t]*)([A-Za-z_]\w*)[ \t]*\(", re.MULTILINE)
# Every name LOOP_MACRO accepts holds one of these.
_LOOP_WORDS = ("for_each", "do_each_thread", "while_each_thread_never")


def parser() -> Parser:
    return Parser(_LANGUAGE)


# A type as a macro argument (`container_of(p, struct mem_cgroup, css)`, `list_entry(...)`)
# is not C: tree-sitter gives up on the whole statement. `struct_mem_cgroup` (same length)
# is an identifier, and no analysis needs the type.
# (The "(" or "," before it is matched, not looked behind for: a pattern that starts with
# a character class lets the regex engine skip ahead; one that starts with a lookbehind
# tries every position. The next match cannot need that character: it follows a word.)
_TYPE_ARG = re.compile(r"([(,])(\s*)struct(\s+)(\w+)(?=\s*[,)])")


def prepare_source(text: str) -> str:
    """Rewrite kernel idioms so tree-sitter sees plain C; line numbers are unchanged.

    Each rewrite runs only on a text that holds a word every match of it holds: the
    regexes cost as much as parsing, and most functions and hunks have no annotation,
    no iterator and no while_each_thread()."""
    text = rewrite_guards(text)
    text = rewrite_cleanups(text)
    if "struct" in text:
        text = _TYPE_ARG.sub(
            lambda m: f"{m.group(1)}{m.group(2)}struct{'_' * len(m.group(3))}{m.group(4)}", text)
    if "__acquires(" in text or "__releases(" in text:
        text = _LOCK_ANNOTATIONS.sub(_lock_marker, text)
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


_WHILE_EACH = re.compile(r"(\}\s*)(while_each_thread\s*\([^;{}]*\))")


def _close_while_each(text: str) -> str:
    """`} while_each_thread(g, t);` closes a do_each_thread() loop: make it a do-while."""
    if "while_each_thread" not in text:
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


def node_text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", errors="replace")


def function_name(fn: Node) -> str | None:
    """Name declared by a function_definition node (through pointer declarators)."""
    decl = fn.child_by_field_name("declarator")
    while decl is not None and decl.type != "function_declarator":
        decl = decl.child_by_field_name("declarator")
    if decl is None:
        return None
    inner = decl.child_by_field_name("declarator")
    while inner is not None and inner.type not in ("identifier", "field_identifier"):
        inner = inner.child_by_field_name("declarator") or (
            inner.named_children[0] if inner.named_children else None
        )
    return node_text(inner) if inner is not None else None


def iter_functions(root: Node) -> Iterator[Node]:
    """Top-level function definitions in source order, also those under #ifdef blocks."""
    return iter(sorted(_function_nodes(root), key=lambda n: n.start_byte))


def _function_nodes(root: Node) -> Iterator[Node]:
    stack = [root]
    while stack:
        node = stack.pop()
        for child in reversed(node.children):
            if child.type == "function_definition":
                yield child
            elif child.type in (
                "translation_unit",
                "preproc_if",
                "preproc_ifdef",
                "preproc_else",
                "preproc_elif",
                "ERROR",
                "linkage_specification",
                "declaration_list",
            ):
                stack.append(child)


def has_error(node: Node) -> bool:
    return bool(node.has_error)


@dataclass
class FunctionView:
    """One function, post-image or base, with enough to map findings back to the patch."""

    file: str
    name: str
    node: Node
    first_row: int  # 0-based row of the node's source where the function starts
    rows: dict[int, int]  # 0-based source row -> file line number (post- or pre-image)
    added: frozenset[int]  # file line numbers the patch added (post-image views only)
    partial: bool  # only the lines shown by a hunk were available
    parse_errors: bool  # tree-sitter recovered from errors inside this function
    text_lines: list[str] = field(default_factory=list)  # source lines of the whole input
    # A function rebuilt on the nearest base (engine/rebuild.py): the lines the patch
    # itself shows (its hunks); the others are the base's and may differ in the author's tree.
    shown: frozenset[int] = frozenset()
    _lines: tuple[int, ...] | None = field(default=None, init=False, repr=False, compare=False)
    _line_set: frozenset[int] | None = field(default=None, init=False, repr=False, compare=False)
    _by_line: dict[int, int] | None = field(default=None, init=False, repr=False, compare=False)
    # Derived data an engine computes once per function (astq's RCU sections): keyed by the
    # engine, so that a per-node question is not a scan of the whole function each time.
    memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def line(self, node: Node) -> int | None:
        """File line number of a node (its first row)."""
        return self.rows.get(node.start_point[0])

    def row_text(self, line: int) -> str:
        if self._by_line is None:
            by_line: dict[int, int] = {}
            for row, ln in self.rows.items():
                if row < len(self.text_lines):
                    by_line.setdefault(ln, row)  # the first row of a line, as a scan finds
            self._by_line = by_line
        at = self._by_line.get(line)
        return self.text_lines[at] if at is not None else ""

    def lines(self) -> tuple[int, ...]:
        """File lines of the function, in order (cached: ``rows`` may map a whole file)."""
        if self._lines is None:
            start, end = self.node.start_point[0], self.node.end_point[0]
            self._lines = tuple(ln for row, ln in sorted(self.rows.items()) if start <= row <= end)
        return self._lines

    def line_set(self) -> frozenset[int]:
        if self._line_set is None:
            self._line_set = frozenset(self.lines())
        return self._line_set

    @property
    def touched(self) -> bool:
        return any(ln in self.added for ln in self.lines())


def views_from_text(
    file: str, text: str, *, added: frozenset[int] = frozenset(), wanted: set[int] | None = None
) -> list[FunctionView]:
    """Functions of a whole file; only those containing a line of ``wanted`` when given."""
    # A function read alone on its own rows (engine/rebuild.py) comes after one empty line
    # per row above it, thousands in a large file. No rewrite of prepare_source() matches
    # across those empty lines, and tree-sitter can be told where the code starts: the
    # same source and the same tree, without every regex and the lexer reading them.
    lead = len(text) - len(text.lstrip("\n"))
    src = "\n" * lead + prepare_source(text[lead:]) if lead else prepare_source(text)
    data = src.encode("utf-8", errors="replace")
    ts = parser()
    if lead:
        last = (src.count("\n"), len(data) - data.rfind(b"\n") - 1)
        ts.included_ranges = [Range((lead, 0), last, lead, len(data))]
    tree = ts.parse(data)
    lines = src.split("\n")
    views = []
    for fn in iter_functions(tree.root_node):
        name = function_name(fn)
        if not name:
            continue
        start, end = fn.start_point[0], fn.end_point[0]
        if wanted is not None and not any(start + 1 <= w <= end + 1 for w in wanted):
            continue
        views.append(
            FunctionView(
                file=file,
                name=name,
                node=fn,
                first_row=start,
                rows={r: r + 1 for r in range(start, end + 1)},
                added=added,
                partial=False,
                parse_errors=has_error(fn),
                text_lines=lines,
            )
        )
    return views


_COMMENT_OR_STRING = re.compile(r'//.*$|/\*.*?\*/|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')


def _brace_delta(line: str, in_comment: bool) -> tuple[int, bool]:
    if in_comment:
        end = line.find("*/")
        if end < 0:
            return 0, True
        line = line[end + 2 :]
    line = _COMMENT_OR_STRING.sub("", line)
    start = line.find("/*")
    still = False
    if start >= 0:
        line, still = line[:start], True
    if line.lstrip().startswith("#"):
        return 0, still
    return line.count("{") - line.count("}"), still


def _first_code(body: list[Line]) -> str:
    return next((ln.text.strip() for ln in body if ln.text.strip()), "")


def _starts_indented(body: list[Line]) -> bool:
    for ln in body:
        text = ln.text
        if not text.strip():
            continue
        stripped = text.lstrip()
        if stripped.startswith(("*", "/*", "//", "#")):
            continue  # comments and preprocessor lines say nothing about the depth
        return text[0] in "\t " and not text.startswith(" *")
    return False


def views_from_hunks(fd: FileDiff, *, post: bool = True) -> list[FunctionView]:
    """Rebuild what the hunks show (post-image: context and added lines; pre-image: context
    and removed lines) into parseable C, one fragment per hunk, and return its functions.

    A hunk that starts inside a function is wrapped in a synthetic definition named after the
    function in its ``@@`` header; such a function is ``partial``. Functions whose header and
    closing brace are both inside the hunk (new functions) are complete.
    """
    views: list[FunctionView] = []
    added_all = frozenset(
        ln.new_lineno for h in fd.hunks for ln in h.lines if ln.kind == "+" and ln.new_lineno
    )
    for hunk in fd.hunks:
        views.extend(_hunk_views(fd.path, hunk, post, added_all if post else frozenset()))
    return views


def _outside_comment(body: list[Line]) -> list[Line]:
    """A hunk that starts inside a block comment (`` * directory to avoid ... */``, three
    lines of context often begin there) has its leading comment lines blanked: parsed as
    code they swallow the statements after them."""
    for i, ln in enumerate(body):
        text = ln.text
        close, open_ = text.find("*/"), text.find("/*")
        if close >= 0 and (open_ < 0 or open_ > close):
            blank = [Line(x.kind, "", x.old_lineno, x.new_lineno) for x in body[:i]]
            rest = Line(ln.kind, " " * (close + 2) + text[close + 2 :], ln.old_lineno, ln.new_lineno)
            return [*blank, rest, *body[i + 1 :]]
        stripped = text.strip()
        if stripped and not stripped.startswith("*"):
            return body  # code (or a comment that opens here) comes first
    return body


def _hunk_views(path: str, hunk: Hunk, post: bool, added: frozenset[int]) -> list[FunctionView]:
    keep = (" ", "+") if post else (" ", "-")
    body = _outside_comment([ln for ln in hunk.lines if ln.kind in keep])
    if not body:
        return []
    depth, low, in_comment = 0, 0, False
    for ln in body:
        delta, in_comment = _brace_delta(ln.text, in_comment)
        depth += delta
        low = min(low, depth)
    outer = hunk.function or "__hunk"
    opened = -low
    if opened == 0 and _starts_indented(body):
        # Kernel style: code inside a function is indented, top-level code is not. The
        # @@ header names the last function *before* the hunk, which the hunk may have
        # already left (it then starts between functions and must not be wrapped).
        opened = 1
    header = (f"void {outer}(void) " + "{" * opened) if opened else ""
    if not opened and _first_code(body) == "{":
        # The hunk starts at the body's opening brace: only the signature is missing.
        header = f"void {outer}(void)"
    closing = "}" * max(0, depth + opened)
    if in_comment:
        # The hunk ends inside a block comment (its three lines of context often do):
        # close it, or the braces that close the fragment are commented out too.
        closing = "*/ " + closing
    src_lines = [header] + [ln.text for ln in body] + [closing]
    rows = {
        i + 1: (ln.new_lineno if post else ln.old_lineno) or 0 for i, ln in enumerate(body)
    }
    rows = {r: ln for r, ln in rows.items() if ln}
    src = prepare_source("\n".join(src_lines))
    tree = parser().parse(src.encode("utf-8", errors="replace"))
    lines = src.split("\n")
    last_row = len(src_lines) - 1
    views = []
    for fn in iter_functions(tree.root_node):
        name = function_name(fn)
        if not name:
            continue
        synthetic = fn.start_point[0] == 0 or fn.end_point[0] >= last_row
        views.append(
            FunctionView(
                file=path,
                name=name,
                node=fn,
                first_row=fn.start_point[0],
                rows=rows,
                added=added,
                partial=synthetic,
                parse_errors=has_error(fn),
                text_lines=lines,
            )
        )
    return views
