"""A write the patch moves out of the lock that covered it (the ``scope-shrunk`` check of
the context engine, :mod:`contextrun`).

A patch that moves an unlock up (or a lock down) to shorten a critical section changes
what the lock protects. A statement that stays as it was, but that in the base function
ran with lock K held on every path and now runs with K held on none, while the function
still takes K elsewhere, is now outside the section: when it writes shared state (a field
store, a list insertion or removal) it races with every other holder of K. Reviewers ask
"what protects this now?"; lockdep cannot tell, KCSAN sometimes does.

Not reported: a write to an object the function allocated itself (filled in before it
is published). Compared by statement text (the same line in both functions, once each), between the
walks of the base and the patched function; only patches that remove a lock or unlock
line in the file get here (run.py), so the two extra walks are rare.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from reviewbot.engine import cfg
from reviewbot.engine.cfunc import FunctionView, node_text
from reviewbot.engine.cnodes import assigned_to, call_name, calls_in
from reviewbot.engine.context import ContextAnalysis
from reviewbot.engine.refstate import State
from reviewbot.engine.types import RawFinding
from reviewbot.engine.uses import parameter_list
from reviewbot.facts.fieldlocks import object_key, var_types
from reviewbot.facts.knowledge import Knowledge
from reviewbot.facts.tables import Facts

__all__ = ["shrunk_sections"]

# A write to shared state: a field store or update, a list or tree link change.
_SHARED_WRITE = re.compile(r"(->|\.)\w+(\[[^\]]*\])?\s*([-+*/|&^]?=(?!=)|\+\+|--)|"
                           r"\b(h?list_(add|del|move|splice|replace)\w*|rb_(insert|erase)\w*)\s*\(")


class _HeldAt(ContextAnalysis):
    """The context walk, recording at each statement line which locks each path holds."""

    def __init__(self, view: FunctionView, facts: Facts, k: Knowledge) -> None:
        super().__init__({"checks": ["scope"]}, view, facts, k)
        self.held_at: dict[int, set[frozenset[str]]] = {}

    def step(self, node: cfg.CNode, state: State, graph: cfg.Graph) -> list[tuple[cfg.CNode, State]]:
        if node.ast is not None and node.kind in ("effect", "branch", "return"):
            line = self.line(node.ast)
            if line is not None:
                self.held_at.setdefault(line, set()).add(frozenset(h.key for h in state.held if h.key))
        return super().step(node, state, graph)


def _statements(a: _HeldAt) -> dict[str, int]:
    """Shared writes of one statement line, by text; a text seen twice is ambiguous."""
    seen: dict[str, int] = {}
    twice: set[str] = set()
    for line in a.held_at:
        text = a.view.row_text(line).strip()
        if not text.endswith(";") or not _SHARED_WRITE.search(text):
            continue
        if text in seen:
            twice.add(text)
        seen[text] = line
    return {t: ln for t, ln in seen.items() if t not in twice}


def _private_objects(view: FunctionView, k: Knowledge) -> set[str]:
    """Locals the function allocates itself (``ev = kzalloc(...)``): filling one in before
    it is published needs no lock (kmem_cache_alloc() and the like: kernel.yaml
    ``allocators``)."""
    out: set[str] = set()
    for call in calls_in(view.node):
        if k.allocators.fullmatch(call_name(call)):
            target = assigned_to(call)
            if target is not None and target.type == "identifier":
                out.add(node_text(target))
    return out


def shrunk_sections(view: FunctionView, facts: Facts, k: Knowledge,
                    base: Callable[[], list[FunctionView]]) -> list[RawFinding]:
    bases = base()
    if len(bases) != 1:
        return []
    post, before = _HeldAt(view, facts, k), _HeldAt(bases[0], facts, k)
    post.run()
    before.run()
    now, then = _statements(post), _statements(before)
    private = _private_objects(view, k)
    out: list[RawFinding] = []
    reported: set[str] = set()
    for text, line in sorted(now.items(), key=lambda item: item[1]):
        if line in view.added or text not in then:
            continue
        written = re.match(r"\s*\(?\s*\*?\s*(\w+)\s*(->|\.)", text)
        if written is not None and written.group(1) in private:
            continue  # not yet visible to anyone else
        states_then, states_now = before.held_at[then[text]], post.held_at[line]
        common = frozenset.intersection(*states_then) if states_then else frozenset()
        for key in sorted(common):
            if key in reported or key not in post.taken or any(key in s for s in states_now):
                continue
            if written is not None and not _guards(key, text, written.group(1), view, facts):
                continue
            if any(s - common for s in states_now):
                continue  # now under another lock the base did not hold here: a conversion
            reported.add(key)
            detail = (f"line {line} (`{text}`) ran with {key} held in the base version of "
                      f"{view.name}(), and now runs without it on every path, though "
                      f"{view.name}() still takes {key} (line {post.taken[key]})")
            captures: dict[str, Any] = {"detail": detail, "call": key}
            out.append(RawFinding(line, view.name, captures, (post.taken[key], line)))
    return out


_WRITTEN = re.compile(r"([A-Za-z_]\w*(?:(?:->|\.)\w+)+)")


def _guards(key: str, text: str, root: str, view: FunctionView, facts: Facts) -> bool:
    """Whether lock ``key`` may protect the object a statement writes. A lock protects its
    own object's data (`memcg->lock` and `memcg->...`); a write through another root (the
    caller's `pvec->pages[i]`, moved out of the pgdat's `lru_lock`) is that lock's business
    only when the tree's other writers of the field hold it (facts/fieldlocks.py)."""
    lock_root = re.match(r"&?\s*(\w+)", key)
    if lock_root is None or lock_root.group(1) == root or root not in parameter_list(view.node):
        return True  # the lock's own object, or a global or local the lock may cover
    m = _WRITTEN.match(text.strip().lstrip("(*"))
    types = var_types("\n".join(view.text_lines[view.node.start_point[0]:view.node.end_point[0] + 1]))
    field_key = object_key(re.sub(r"\[[^\]]*\]", "", m.group(1)), types) if m is not None else None
    if field_key is None:
        return True
    fact = facts.field_lock(field_key)  # [lock, holders, writes, examples...] or []
    if not fact:
        return False
    lock_key = object_key(key, types)
    return fact[0] == lock_key if lock_key is not None else key.endswith(fact[0][fact[0].find("->"):])
