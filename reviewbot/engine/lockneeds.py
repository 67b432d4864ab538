"""The ``lock-not-held`` check of the context walk (:mod:`context`): a call of a function
whose locking contract (facts/contracts.py: ``lockdep_assert_held()``,
``lockdep_assert_cpus_held()``, ``rcu_dereference_protected(..., lockdep_is_held())``...)
says its caller holds a lock, on a path where the caller, which takes that lock elsewhere,
does not hold it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tree_sitter import Node

from reviewbot.engine.cfunc import node_text
from reviewbot.engine.refspec import normalize
from reviewbot.engine.refstate import State
from reviewbot.facts.locksummary import caller_key

if TYPE_CHECKING:
    from reviewbot.engine.context import ContextAnalysis

__all__ = ["required", "requiring"]


def requiring(a: ContextAnalysis) -> bool:
    """Whether :func:`required` can find anything in the function: it takes a lock itself
    and calls a function that asserts one. Asked once per walk instead of at every path
    state of every statement (most functions call none: the check was a few per cent of
    a context walk)."""
    if a.requires is None:
        a.requires = bool(a.taken or a.global_taken) and any(
            _needs_of(a, a.name_of(call)) for call in a.calls_of(a.view.node))
    return a.requires


def _needs_of(a: ContextAnalysis, name: str) -> dict[str, list[str]]:
    """facts.locks_required(), once per name."""
    needs = a.needs.get(name)
    if needs is None:
        needs = a.needs[name] = a.facts.locks_required(name)
    return needs


def required(a: ContextAnalysis, ast: Node, state: State) -> None:
    """The calls of ``ast`` that need a lock ``a``'s function takes elsewhere but this path
    does not hold."""
    for call in a.calls_of(ast):
        name = a.name_of(call)
        needs = _needs_of(a, name)
        if not needs:
            continue
        args = [node_text(x) for x in a.args_of(call)]
        for raw, via in needs.items():
            key = caller_key(raw, args)
            if key is None:
                continue
            key = a.alias.find(normalize(key))
            # A keyless global lock (cpus_read_lock(): cpu_hotplug_lock) is held under its
            # lockdep name; a lock a partial view first releases was held on entry.
            taken = a.taken.get(key, a.global_taken.get(key))
            if taken is None or key in a.released_first \
                    or any(h.key == key or (not h.key and a.kinds[h.pair].lock == key)
                           for h in state.held):
                continue
            line = a.line(call) or 0
            shown = " -> ".join(f"{c}()" for c in via)
            detail = (f"{name}() at line {line} expects {key} held ({shown}), but this path "
                      f"reaches it without the lock that {a.view.name}() takes elsewhere")
            if a.relevant(taken, line):
                a.hits.setdefault(("lock-not-held", line, name),
                                  (line, {"detail": detail, "call": name}, (taken, line)))
