"""Calls of helpers that return holding a lock only when they succeed (facts/condlocks.py:
``cgroup_kn_lock_live()``, ``refcount_dec_and_lock()``), in the context walk
(:mod:`context`): the lock is held on the branch where the result says success, as for
``mutex_trylock()``, and nowhere else.

Two shapes: the call tested directly (``if (!refcount_dec_and_lock(&r, &l)) return;``),
and the result kept in a local that a later condition tests (``cgrp =
cgroup_kn_lock_live(kn, false); if (!cgrp) return -ENODEV;``). A result used otherwise
(returned, stored, ignored) says nothing the walk can follow: nothing is held.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tree_sitter import Node

from reviewbot.engine.cfunc import node_text
from reviewbot.engine.cnodes import assigned_to
from reviewbot.engine.refspec import normalize
from reviewbot.engine.refstate import Held
from reviewbot.facts.locksummary import caller_key

if TYPE_CHECKING:
    from reviewbot.engine.context import ContextAnalysis

__all__ = ["conditional_acquires", "tested_call"]


def _held(a: ContextAnalysis, call: Node) -> list[tuple[Held, bool]]:
    """(what the call holds when it succeeded, whether success is a zero result)."""
    name = a.name_of(call)
    kept = a.facts.locks_kept_if(name) if name else {}
    if not kept:
        return []
    args = [node_text(x) for x in a.args_of(call)]
    out: list[tuple[Held, bool]] = []
    for raw, (polarity, primitive, *_) in kept.items():
        key = caller_key(raw, args)
        pair = a.pair_of_call.get(primitive)
        if key is None or pair is None:
            continue
        key = a.alias.find(normalize(key))
        owned = (key, pair) in a.released_keys or key in a.helper_released
        out.append((Held(key, pair, a.line(call) or 0, name, owned), polarity == "zero"))
    return out


def conditional_acquires(a: ContextAnalysis, call: Node) -> list[tuple[str, Any]]:
    """The acquire of ``x = helper(...)`` (a local): held until a test of ``x`` says it
    failed (the walk's result variables, ContextAnalysis.cond)."""
    target = assigned_to(call)
    if target is None or target.type != "identifier" or not a.is_local(node_text(target)):
        return []
    ops: list[tuple[str, Any]] = []
    for held, zero in _held(a, call):
        a.results.setdefault(node_text(target), []).append((held.key, held.pair, zero))
        ops.append(("acquire", held))
    return ops


def tested_call(a: ContextAnalysis, expr: Node) -> tuple[list[Any], list[Any]] | None:
    """Branches of a condition that is such a call itself: the lock held on the branch
    where it succeeded; None when ``expr`` is no such call."""
    if expr.type != "call_expression":
        return None
    found = _held(a, expr)
    if not found:
        return None
    inner = [op for c in a.calls_of(expr)[:-1] for op in a.call_ops(c)]
    own = a.call_ops(expr, in_condition=True)
    on_true = [("acquire", h) for h, zero in found if not zero]
    on_false = [("acquire", h) for h, zero in found if zero]
    return [inner + own + on_true], [inner + own + on_false]
