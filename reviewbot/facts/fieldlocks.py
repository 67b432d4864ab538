"""Which lock the base tree holds when it writes a field, and which locks it only ever
takes with interrupts disabled: locking conventions read from the tree's own majority.

A lock protects data, not code (Documentation/kernel-hacking/locking.rst). The tree says
which data: when nearly every function that writes ``q->rpm_status`` holds
``q->queue_lock`` there, that lock guards that field, and a new write without it races
with all of them. Likewise a lock that every function of the tree takes with
``spin_lock_irq()``/``_irqsave()`` is one interrupt context shares; a plain
``spin_lock()`` of it in process context is lockdep's "inconsistent lock state".

Fields and per-object locks are named by the struct type of the pointer they are reached
through (``request_queue->queue_lock``), read from the declarations of the function
(``struct request_queue *q``); a global lock by its name. What each body holds at a line
is read in line order, which is enough for counting: an unlock more indented than its lock
is a branch's early exit and leaves the rest of the body locked, and a
``lockdep_assert_held()`` counts as held from the first line. Writes are counted only
where the object is already visible to others: not in constructors and destructors
(``*_init``, ``*_alloc``, ``*_free``, ``__init``), not to an object the body allocated,
and not through marked accessors (``WRITE_ONCE()``, atomics: no plain ``=``).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from reviewbot.facts.knowledge import Knowledge, LockSpec

__all__ = ["IRQ_CONTEXT_HEAD", "LIST_CHANGE", "LIST_PREFIX", "LIST_WALK", "UNPUBLISHED", "WRITE",
           "FieldLockStats", "field_lock_tables", "is_candidate", "list_args", "list_uses", "lock_class", "new_stats",
           "object_key", "private_objects", "scan_file", "var_types"]

# A field is guarded by a lock when at least this share of at least MIN_SITES writes, in
# at least MIN_FUNCTIONS functions holding it, hold it (rare exceptions are the bug or a
# caller-held path; a looser majority is a convention, not a rule).
MIN_SHARE = 0.9
MIN_SITES = 4
MIN_FUNCTIONS = 2
# A lock is shared with interrupt context when all of its (process context, not nested)
# acquisitions disable interrupts, in at least IRQ_FUNCTIONS functions: one plain taker
# (a helper whose callers disable interrupts, dequeue_signal() under siglock) says plain
# acquisitions are fine in some context this view cannot tell from a new one.
IRQ_SHARE = 1.0
IRQ_SITES = 5
IRQ_FUNCTIONS = 3

# Functions that build or tear down an object nobody else sees yet (or any more).
UNPUBLISHED = re.compile(r"(?:^|_)(?:init|alloc|zalloc|create|new|setup|free|destroy|release|fini|"
                         r"cleanup|teardown|ctor|dtor|clone|copy|dup|reset)(?:_|$|\d)")
_DEFINITION = re.compile(r"^([A-Za-z_][^;{}#]*?)\n\{\n(.*?)^\}", re.MULTILINE | re.DOTALL)
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_NAME = re.compile(r"([A-Za-z_]\w*)\s*\(")
# `struct mem_cgroup *memcg` in a parameter list or a declaration (also `*a, *b`).
_DECL = re.compile(r"\bstruct\s+(\w+)\s+((?:\*\s*(?:const\s+)?\w+\s*(?:=[^,;)]*)?,?\s*)+)")
_DECL_VAR = re.compile(r"\*\s*(?:const\s+)?(\w+)")
# A lock call on `&expr` (or lockdep_assert_held(&expr)), and a plain write `x->a.b = `.
_LOCK_CALL = re.compile(r"\b(\w+)\s*\(\s*&\s*([A-Za-z_][\w>.\-]*?)\s*[,)]")
WRITE = re.compile(r"(?<![\w>.])([A-Za-z_]\w*)((?:->\w+|\.\w+)+)\s*(?:[-+*/|&^]?=(?!=)|\+\+|--)")
_ALLOC = re.compile(r"\b(\w+)\s*=\s*(?:\([^()]*\)\s*)?\w*alloc\w*\s*\(")
MAX_ORDER = 200_000  # lock order pairs kept (a bound on the table)
IRQ_CONTEXT_HEAD = re.compile(r"\b(irqreturn_t|enum\s+hrtimer_restart)\b")

# Candidates of facts/condlocks.py: a failure return, and a release of some lock
# (primitive or helper), in the body of a non-void function.
CANDIDATE_BODY = re.compile(r"\breturn\s+\(?\s*(?:NULL|false|-\s*E[A-Z]|ERR_PTR)\b")
_RELEASE = re.compile(r"\b\w*(?:unlock|up_read|up_write)\w*\s*\(")
_VOID = re.compile(r"\bvoid\s*$")
MAX_CANDIDATE_CHARS = 6000  # a helper is short; a long function is not one


def is_candidate(head: str, body: str) -> bool:
    """Whether a definition (its signature up to the name, and its body) may be a
    conditional lock helper worth a walk (facts/condlocks.py): not void, short, with a
    failure return and a release."""
    return (not _VOID.search(head) and len(body) <= MAX_CANDIDATE_CHARS
            and CANDIDATE_BODY.search(body) is not None and _RELEASE.search(body) is not None)


def var_types(text: str) -> dict[str, str]:
    """Pointer variable -> struct type, from ``struct T *x`` declarations in ``text``; a
    name declared with two types (a shadowing block) is left out."""
    out: dict[str, str] = {}
    clash: set[str] = set()
    for m in _DECL.finditer(text):
        for var in _DECL_VAR.findall(m.group(2)):
            if out.setdefault(var, m.group(1)) != m.group(1):
                clash.add(var)
    for var in clash:
        del out[var]
    return out


def object_key(expr: str, types: dict[str, str], params: Iterable[str] = ()) -> str | None:
    """``memcg->move_lock`` -> ``mem_cgroup->move_lock`` (the root's type, the path as
    written with ``.`` read as ``->``); a bare global name stays itself; None when the
    root's type is unknown."""
    expr = re.sub(r"\s+", "", expr).lstrip("&")
    m = re.fullmatch(r"([A-Za-z_]\w*)((?:->\w+|\.\w+)*)", expr)
    if m is None:
        return None
    root, path = m.group(1), m.group(2).replace(".", "->")
    if not path:
        return root if root not in types and root not in params else None
    typ = types.get(root)
    return f"{typ}{path}" if typ else None


def lock_class(key: str, field_type: Callable[[str, str], str | None]) -> str:
    """An object lock's class as lockdep keys it, the struct that holds the lock and its
    field: ``blkcg_gq->blkcg->lock`` -> ``blkcg->lock`` (``blkcg_gq.blkcg`` is a ``struct
    blkcg *``); a path through a field of unknown type stays as written."""
    parts = key.split("->")
    if len(parts) <= 2:
        return key
    typ: str | None = parts[0]
    for name in parts[1:-1]:
        typ = field_type(typ, name) if typ is not None else None
    return f"{typ}->{parts[-1]}" if typ is not None else key


def private_objects(text: str) -> set[str]:
    """Locals the body assigns an allocation to: not yet visible to anyone else."""
    return set(_ALLOC.findall(text))


@dataclass
class FieldLockStats:
    """Counts over the tree, reduced to the two tables by :meth:`tables`."""

    k: Knowledge  # which calls lock what (kernel.yaml)
    writes: dict[str, Counter[str]]  # field -> lock held -> sites ("" counts every site)
    writers: dict[str, dict[str, set[str]]]  # field -> lock -> functions holding it there
    irq: dict[str, Counter[str]]  # lock -> "irq" / "plain" -> sites
    irq_fns: dict[str, set[str]]  # lock -> functions taking it with interrupts disabled
    # (name, path, text) of the functions facts/condlocks.py walks
    candidates: list[tuple[str, str, str]] = field(default_factory=list)
    # "outer inner" -> a function taking inner while holding outer, for the pairs with a
    # lock of an object (by its struct type: "request_queue->queue_lock"), which the lock
    # summaries (global locks) do not see: lockdep's classes are per field too
    order: dict[str, str] = field(default_factory=dict)

    def tables(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """(field -> [lock, held sites, all sites, example functions...],
        lock -> [irq sites, all sites, example functions...])."""
        fields: dict[str, list[str]] = {}
        for name, held in self.writes.items():
            total = held[""]
            if total < MIN_SITES:
                continue
            best = max((lk for lk in held if lk), key=lambda lk: (held[lk], lk), default="")
            fns = sorted(self.writers[name].get(best, ()))
            if best and held[best] >= MIN_SHARE * total and len(fns) >= MIN_FUNCTIONS:
                fields[name] = [best, str(held[best]), str(total), *fns[:3]]
        irq: dict[str, list[str]] = {}
        for lock, counts in self.irq.items():
            total = counts["irq"] + counts["plain"]
            fns = sorted(self.irq_fns.get(lock, ()))
            if total >= IRQ_SITES and counts["irq"] >= IRQ_SHARE * total and len(fns) >= IRQ_FUNCTIONS:
                irq[lock] = [str(counts["irq"]), str(total), *fns[:3]]
        return fields, irq


def new_stats(k: Knowledge) -> FieldLockStats:
    return FieldLockStats(k, defaultdict(Counter), defaultdict(lambda: defaultdict(set)),
                          defaultdict(Counter), defaultdict(set))


def _indent(body: str, pos: int) -> int:
    start = body.rfind("\n", 0, pos) + 1
    n = 0
    while start + n < len(body) and body[start + n] == "\t":
        n += 1
    return n


# A list of objects is data a lock protects as much as a field: its head (`&cgrp->cset_links`)
# and the node fields it links (`&link->cset_link`) are named, like a field, by the struct
# type of the pointer they are reached through, with this prefix ("list:cgroup->cset_links").
LIST_PREFIX = "list:"
# Calls that link or unlink entries (every `&x->field` argument is a head or a node of the
# list), and plain walks of one (its `&x->field` argument is the head). RCU walks are not
# counted: they need no lock; RCU changes are made under the list's lock.
LIST_CHANGE = re.compile(
    r"\b(?:h?list_(?:add|add_tail|move|move_tail|del|del_init|splice|splice_init|splice_tail|"
    r"splice_tail_init|replace|replace_init|add_rcu|add_tail_rcu|del_rcu|del_init_rcu|add_head|"
    r"add_head_rcu|add_before|add_behind|rotate_left|bulk_move_tail))\s*\(")
LIST_WALK = re.compile(r"\b(?:h?list_for_each_entry(?:_safe)?(?:_continue|_reverse|_from)?(?:_safe)?|"
                       r"h?list_for_each(?:_safe)?|list_for_each_prev(?:_safe)?)\s*\(")
LIST_ARG = re.compile(r"&\s*([A-Za-z_]\w*(?:(?:->|\.)\w+)+)\s*$")


def list_args(args: Iterable[str]) -> list[str]:
    """The ``&x->field`` arguments among a list call's arguments."""
    return [m.group(1) for a in args if (m := LIST_ARG.search(a.strip()))]


def _split_args(args: str) -> list[str]:
    """An argument list's items, split at top-level commas (facts/extract.py's split_top(),
    which imports this module)."""
    out: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(args):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append(args[start:i])
            start = i + 1
    return out + [args[start:]]


def list_uses(text: str) -> list[tuple[int, str, str]]:
    """(offset, "change" or "walk", ``x->field``) of each list head or node a text's list
    calls name."""
    out: list[tuple[int, str, str]] = []
    if "list_" not in text:
        return out
    for rx, how in ((LIST_CHANGE, "change"), (LIST_WALK, "walk")):
        for m in rx.finditer(text):
            close = _closing(text, m.end() - 1)
            if close is not None:
                out += [(m.start(), how, arg) for arg in list_args(_split_args(text[m.end():close]))]
    return out


def _closing(text: str, open_at: int) -> int | None:
    """The offset of the parenthesis closing the one at ``open_at`` (None within 400
    characters: not a call this scan reads)."""
    depth = 0
    for i in range(open_at, min(len(text), open_at + 400)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    return None


def _events(body: str) -> Iterator[tuple[int, str, str, str]]:
    """(offset, "lock"|"write"|"list", call, "change"/"walk" or "", expression) in body order."""
    found = [(m.start(), "lock", m.group(1), m.group(2)) for m in _LOCK_CALL.finditer(body)]
    found += [(m.start(), "write", "", m.group(1) + m.group(2)) for m in WRITE.finditer(body)]
    found += [(pos, "list", how, expr) for pos, how, expr in list_uses(body)]
    return iter(sorted(found))


def scan_file(text: str, stats: FieldLockStats, path: str = "") -> None:
    """Add one source file's write and lock sites to ``stats`` (and, for files with a
    ``path``, the candidate conditional lock helpers)."""
    if "->" not in text and "unlock" not in text:
        return
    text = _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    for m in _DEFINITION.finditer(text):
        signature, body = m.group(1).rsplit("\n\n", 1)[-1], m.group(2)
        name_m = _NAME.search(signature)
        if name_m is not None and path and is_candidate(signature[: name_m.start()], body):
            stats.candidates.append((name_m.group(1), path, f"{signature}\n{{\n{body}}}\n"))
        # (A body that locks nothing counts too: its writes are the unlocked ones.)
        if name_m is None or "->" not in body:
            continue
        _scan_body(name_m.group(1), signature, body, stats)


def _scan_body(name: str, signature: str, body: str, stats: FieldLockStats) -> None:
    types = var_types(signature + "\n" + body)
    unpublished = UNPUBLISHED.search(name) is not None or "__init" in signature
    private = private_objects(body)
    in_irq = IRQ_CONTEXT_HEAD.search(signature) is not None
    held: dict[str, tuple[int, LockSpec]] = {}  # lock key -> (indent of its acquire, spec)
    for pos, what, call, expr in _events(body):
        if what in ("write", "list"):
            root = re.match(r"\w+", expr)
            if unpublished or root is None or root.group(0) in private:
                continue
            key = object_key(expr, types)
            if key is None or "->" not in key:
                continue
            if what == "list":
                key = LIST_PREFIX + key
            stats.writes[key][""] += 1
            for lock, (_, spec) in held.items():
                if not spec.shared or call == "walk":  # (a reader's lock is enough to walk)
                    stats.writes[key][lock] += 1
                    stats.writers[key][lock].add(name)
            continue
        if call.startswith("lockdep_assert_held") and call != "lockdep_assert_held_read":
            asserted = object_key(expr, types)
            if asserted is not None:
                held.setdefault(asserted, (0, _ASSERTED))
            continue
        found = stats.k.lock_for(call)
        if found is None or found[0].keyless or found[0].kind in ("rcu", "preempt", "irq", "bh"):
            continue
        spec, role = found
        named = object_key(expr, types)
        if named is None:
            continue
        lock = named
        indent = _indent(body, pos)
        if role == "release":
            taken = held.get(lock)
            if taken is not None and indent <= taken[0]:
                del held[lock]
            continue
        if spec.kind in ("spinlock", "raw_spinlock", "rwlock") and not spec.conditional:
            nested = in_irq or any(h[1].irq for h in held.values())
            if spec.irq:
                stats.irq[lock]["irq"] += 1
                stats.irq_fns[lock].add(name)
            elif not spec.bh and not nested:
                stats.irq[lock]["plain"] += 1
        if not spec.conditional and len(stats.order) < MAX_ORDER:
            for outer in held:
                if outer != lock and ("->" in outer or "->" in lock):
                    stats.order.setdefault(f"{outer} {lock}", name)
        held.setdefault(lock, (indent, spec))


# What a lockdep_assert_held() stands for: an exclusive hold of unknown kind.
_ASSERTED = LockSpec(re.compile("(?!)"), re.compile("(?!)"), "assert", "", False, False, "", False, "", {})


def field_lock_tables(texts: Iterable[str], k: Knowledge) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The field -> lock and interrupt-shared lock tables of a set of sources."""
    stats = new_stats(k)
    for text in texts:
        scan_file(text, stats)
    return stats.tables()
