"""An RCU read section the patch removes while a read that needs it stays (the
``rcu-unprotected`` check, :mod:`contextrun`).

The path walk reports an RCU read outside the section only in a function that takes
``rcu_read_lock()`` itself elsewhere: otherwise its callers may hold it. A patch that
deletes the ``rcu_read_lock()`` / ``rcu_read_unlock()`` pair around ``task_css()`` or
``mem_cgroup_from_task()`` leaves a function that takes no section at all, which that
test cannot tell from one called under RCU. The function before the patch can: it took
the section, the patch took it away, and the read stayed. With CONFIG_PROVE_RCU lockdep
warns on the first run ("suspicious rcu_dereference_check() usage"); without it, the
css_set or memcg read may be freed under the reader.

Not reported: a read whose lockdep condition accepts a lock the function takes now
(``task_css()`` under ``css_set_lock``) or asserts its caller holds
(``lockdep_assert_held(&cgroup_mutex)`` before ``css_for_each_child()``), or preemption disabled when the function holds
a spinlock or a preempt or interrupt section anywhere; a function the patch moves to
another lock (a conversion); a view that shows only a hunk (the rest may still lock).
"""

from __future__ import annotations

from collections.abc import Callable

from reviewbot.engine.cfunc import FunctionView, node_text
from reviewbot.engine.cnodes import call_args, call_name, calls_in
from reviewbot.engine.refspec import normalize
from reviewbot.engine.types import RawFinding
from reviewbot.facts.contracts import asserted_lock
from reviewbot.facts.rcuneeds import SCHED, call_need, describe_need
from reviewbot.facts.tables import Facts

__all__ = ["rcu_removed_findings"]

# Sections that disable preemption (an RCU-sched reader: rcu_read_lock_sched_held()).
NON_PREEMPTIBLE = frozenset({"spinlock", "raw_spinlock", "rwlock", "preempt", "irq", "bh", "local_lock"})

Taken = tuple[dict[str, int], set[str]]  # (lock key -> first line, kinds of what is taken)


def rcu_removed_findings(view: FunctionView, facts: Facts,
                         base: Callable[[], list[FunctionView]],
                         taken: Callable[[FunctionView], Taken]) -> list[RawFinding]:
    """Reads in ``view`` that need the RCU read section ``view`` no longer takes and its
    base version (``base()``) took. ``taken`` gives what a function takes."""
    needing = []
    asserted: set[str] = set()  # locks the function says its caller holds
    for call in calls_in(view.node):
        name = call_name(call)
        if not name:
            continue
        args = [node_text(a) for a in call_args(call)]
        held = asserted_lock(name, args)
        if held is not None:
            asserted.add(normalize(held[0]))
        if not (name.startswith("rcu_dereference") or facts.rcu_need(name)):
            continue
        need = call_need(name, args, (), facts.rcu_need)
        if need is not None:
            needing.append((view.line(call) or 0, name, need))
    if not needing or any(facts.opens_rcu(call_name(c) or "") for c in calls_in(view.node)):
        return []  # (a helper that returns inside a section it opened: the section moved there)
    now, kinds = taken(view)
    if "rcu" in now:
        return []  # the path walk judges a function that still takes the section
    before: dict[str, int] = {}
    for b in base():
        for key, line in taken(b)[0].items():
            before.setdefault(key, line)
    if "rcu" not in before or any(key not in before for key in now):
        return []  # no section before, or a new lock now (a conversion)
    out: list[RawFinding] = []
    for line, name, (alts, via) in needing:
        if any(normalize(alt) in now or normalize(alt) in asserted for alt in alts if alt != SCHED) \
                or (SCHED in alts and kinds & NON_PREEMPTIBLE):
            continue
        detail = (f"{name}() at line {line} reads an RCU-protected pointer "
                  f"({describe_need(name, (alts, via))}), but the patch removes the "
                  f"rcu_read_lock() section from {view.name}() (taken at line {before['rcu']} "
                  f"before the patch) and nothing else protects the read here")
        out.append(RawFinding(line, view.name, {"detail": detail, "call": name}, (line,)))
    return out
