"""The ``lock-not-held`` check of the context walk (:mod:`context`): a call of a function
whose locking contract (facts/contracts.py: ``lockdep_assert_held()``,
``lockdep_assert_cpus_held()``, ``rcu_dereference_protected(..., lockdep_is_held())``...)
says its caller holds a lock, on a path where the function, which takes that lock
elsewhere, does not hold it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tree_sitter import Node

from reviewbot.engine.cfunc import node_text
from reviewbot.engine.refcount import State
from reviewbot.engine.refspec import normalize
from reviewbot.facts.derive import caller_key

if TYPE_CHECKING:
    from reviewbot.engine.context import ContextAnalysis


def required_locks(a: ContextAnalysis, ast: Node, state: State) -> None:
    """A call of a function that asserts a lock held (lockdep_assert_held() in its
    body, per the facts), on a path where this function, which takes that lock
    elsewhere, does not hold it."""
    for call in a.calls_of(ast):
        name = a.name_of(call)
        needs = a.needs_of.get(name)
        if needs is None:
            needs = a.needs_of[name] = a.facts.locks_required(name)
        if not needs:
            continue
        args = [node_text(arg) for arg in a.args_of(call)]
        for raw, via in needs.items():
            key = caller_key(raw, args)
            if key is None:
                continue
            key = a.alias.find(normalize(key))
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
