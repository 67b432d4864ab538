"""A lock the patch removes from a function while a call in it still needs that lock (the
``lock-not-held`` check, :mod:`contextrun`).

The context walk reports a call of a function that asserts a lock held (tree facts:
``lockdep_assert_held()``, directly or in what it calls unconditionally) only in a
function that takes the lock itself elsewhere: otherwise its callers may hold it. A patch
that deletes the lock/unlock pair around such a call leaves a function that takes the lock
nowhere, which that test cannot tell from a function called with the lock held. The base
version of the same function can: it took the lock, the patch took it away, and the call
that needs it stayed. lockdep then warns on the first run ("lockdep_assert_held").

Not reported: a function the patch moves to another lock (it takes a lock the base did
not: a conversion, whose callee contract the base facts may not show yet), and a view that
shows only a hunk (the rest of the function may still lock).
"""

from __future__ import annotations

from collections.abc import Callable

from reviewbot.engine.cfunc import FunctionView, node_text
from reviewbot.engine.cnodes import call_args, call_name, calls_in
from reviewbot.engine.refspec import normalize
from reviewbot.engine.types import RawFinding
from reviewbot.facts.knowledge import Knowledge
from reviewbot.facts.locksummary import caller_key
from reviewbot.facts.tables import Facts

__all__ = ["lock_removed_findings"]


def lock_removed_findings(view: FunctionView, facts: Facts, k: Knowledge,
                          base: Callable[[], list[FunctionView]],
                          taken: Callable[[FunctionView], dict[str, int]]) -> list[RawFinding]:
    """Calls in ``view`` that need a lock ``view`` no longer takes and its base version
    (``base()``) took. ``taken`` gives the locks a function takes (key -> first line)."""
    needing: list[tuple[int, str, str, list[str]]] = []
    for call in calls_in(view.node):
        name = call_name(call)
        needs = facts.locks_required(name) if name else {}
        if not needs:
            continue
        args = [node_text(a) for a in call_args(call)]
        for raw, via in needs.items():
            key = caller_key(raw, args)
            if key is not None:
                needing.append((view.line(call) or 0, name, normalize(key), via))
    if not needing:
        return []
    now = taken(view)
    before: dict[str, int] = {}
    for b in base():
        for key, line in taken(b).items():
            before.setdefault(key, line)
    if any(key not in before for key in now):
        # A lock the base function did not take: a conversion (cpuset_mutex to
        # cpuset_rwsem) whose new lock the callee's contract may already name.
        return []
    out: list[RawFinding] = []
    for line, name, key, via in needing:
        if key in now or key not in before:
            continue
        shown = " -> ".join(f"{c}()" for c in via)
        detail = (f"{name}() at line {line} expects {key} held ({shown}), but the patch removes "
                  f"the {key} locking from {view.name}() (taken at line {before[key]} before "
                  f"the patch) and nothing else takes it on this path")
        out.append(RawFinding(line, view.name, {"detail": detail, "call": name}, (line,)))
    return out
