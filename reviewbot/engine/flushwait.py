"""Waiting for a work item while holding a lock that work takes (the ``flush-deadlock``
check of the context walk, :mod:`context`).

``flush_work()``, ``cancel_work_sync()`` and their delayed and RCU forms wait until the
work function has finished. If the caller holds a lock the work function takes, the work
blocks on the lock and the caller on the work: a deadlock lockdep reports through the work
item's lockdep map ("possible circular locking dependency", with ``(work_completion)`` in
the chain; Documentation/core-api/workqueue.rst). The functions a work item runs come from
the tree facts (``INIT_WORK(&css->destroy_work, css_killed_work_fn)``, facts/works.py),
by member name (preferring those bound in the flushing file's folder); every function
bound to that name must take the lock, so that a generic name shared by unrelated
structures does not count.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tree_sitter import Node

from reviewbot.engine.cfunc import node_text
from reviewbot.engine.entryctx import taken_by
from reviewbot.engine.refstate import State
from reviewbot.facts.works import work_member

if TYPE_CHECKING:
    from reviewbot.engine.context import ContextAnalysis

__all__ = ["WAITS_FOR_WORK", "flush_under_lock"]

# Every function a work item may run must take the lock; past this many, the member name
# is too generic for that to mean one structure.
_MAX_FUNCTIONS = 4

WAITS_FOR_WORK = re.compile(r"flush_work|flush_delayed_work|flush_rcu_work|cancel_work_sync|"
                            r"cancel_delayed_work_sync")


def flush_under_lock(a: ContextAnalysis, call: Node, name: str, state: State) -> None:
    args = a.args_of(call)
    member = work_member(node_text(args[0])) if args else None
    if member is None:
        return
    bound = a.facts.work_functions(member)
    # The binders in the flushing file's folder first: the same subsystem's structure.
    folder = a.view.file.rsplit("/", 1)[0]
    near = [fn for fn, path in bound if path.rsplit("/", 1)[0] == folder]
    functions = sorted(set(near or [fn for fn, _ in bound]))
    if not functions or len(functions) > _MAX_FUNCTIONS:
        return
    for h in reversed(state.held):
        lock = h.key or a.kinds[h.pair].lock
        if not lock or "->" in lock or "." in lock or lock.startswith("$"):
            continue  # only a global names the same lock in the work function
        chains = [a.locks_taken_by(fn).get(lock) for fn in functions]
        if not all(chains):
            continue
        fn, via = functions[0], chains[0] or []
        shown = " -> ".join(f"{c}()" for c in [fn, *via])
        line = a.line(call) or 0
        a.hit("flush-deadlock", call, h, {
            "detail": f"{name}() at line {line} waits for the work `{member}` runs "
                      f"({', '.join(f + '()' for f in functions)}), which takes {lock} "
                      f"({shown}), while {taken_by(h)} holds {lock}: the work "
                      f"blocks on the lock and this function on the work",
            "call": name, "outer": h.call})
        return
