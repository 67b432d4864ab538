"""Functions that need their caller to have preemption (or interrupts) disabled.

The kernel's per-CPU accessors with two underscores (``__this_cpu_add()``,
``__this_cpu_inc()``, ...) and ``smp_processor_id()`` are only correct while the task cannot
move to another CPU: with CONFIG_DEBUG_PREEMPT each checks it and prints "BUG: using
__this_cpu_add() in preemptible [00000000] code" (lib/smp_processor_id.c,
Documentation/core-api/this_cpu_ops.rst); ``lockdep_assert_irqs_disabled()``,
``lockdep_assert_preemption_disabled()`` and ``VM_WARN_ON_IRQS_ENABLED()`` state the same
contract for a whole function. memcg's statistics are the textbook case:
``__mod_memcg_state()`` and ``__count_memcg_events()`` update per-CPU counters with
``__this_cpu_add()`` and leave disabling interrupts to the caller, while
``mod_memcg_state()`` and ``count_memcg_events()`` do it themselves.

A function needs it when its body does one of those at its top level (not under a
condition: ``if (in_task())``), and takes no section of its own that would provide it
(a spinlock, ``preempt_disable()``, ``local_irq_save()``, ``local_lock()``,
``get_cpu()``, ``migrate_disable()``, which DEBUG_PREEMPT also accepts), and does not
test the context itself; and so, through at most ``DEPTH`` calls, does a function that
calls such a function at its top level the same way. The table is name -> chain down to
the primitive; a ``static`` function is keyed ``path:name``. Only updates and assertions
make a helper (a per-CPU read is often a hint any CPU may answer), and one call deep.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from reviewbot.facts.extract import Definition

__all__ = ["DEPTH", "NEEDS_OFF", "preempt_needs"]

DEPTH = 2
# What needs preemption (or interrupts) off in the caller: the checked per-CPU accessors
# and the assertions (this_cpu_*() without underscores is preempt-safe and not here).
NEEDS_OFF = re.compile(r"__this_cpu_(?:add|sub|inc|dec|read|write|and|or|xchg|cmpxchg|"
                       r"add_return|sub_return|inc_return|dec_return|ptr)|"
                       r"lockdep_assert_irqs_disabled|lockdep_assert_preemption_disabled|"
                       r"VM_WARN_ON_IRQS_ENABLED")
# (smp_processor_id() is left out: boot, hotplug and stop-machine code call it where the
# context pins the task in ways a function does not show; of the base code's hits on it,
# none was a bug.)
# What makes a helper need it for its callers: an update of a per-CPU counter, or an
# assertion. A per-CPU read or smp_processor_id() in a helper is often a hint that any CPU
# answers (cpumask_any_and_distribute()), and chains through such helpers reached a
# quarter of the scheduler; they count only when a patch writes them itself.
_HELPER_NEEDS = re.compile(r"__this_cpu_(?:add|sub|inc|dec|write|and|or|xchg|cmpxchg|"
                           r"add_return|sub_return|inc_return|dec_return)|"
                           r"lockdep_assert_irqs_disabled|lockdep_assert_preemption_disabled|"
                           r"VM_WARN_ON_IRQS_ENABLED")
# A body that takes its own section, or asks which context it runs in, decides for itself.
_OWN = re.compile(r"\w*spin_(?:try)?lock\w*|(?:read|write)_(?:try)?lock\w*|preempt_disable\w*|"
                  r"get_cpu\w*|put_cpu\w*|local_irq_\w+|local_(?:try)?lock\w*|local_bh_disable|"
                  r"rcu_read_lock_sched\w*|migrate_disable|irqs_disabled|in_task|in_interrupt|"
                  r"in_irq|in_softirq|in_atomic|preemptible|guard|scoped_guard|"
                  r"__this_cpu_preempt_check|raw_smp_processor_id")


def preempt_needs(defs: Iterable[Definition]) -> dict[str, list[str]]:
    """name (``path:name`` for a static) -> [callee, ..., primitive] for every function
    that needs its caller to have disabled preemption."""
    candidates: list[Definition] = []
    found: dict[str, list[str]] = {}
    for d in defs:
        if any(_OWN.fullmatch(c.name) for c in d.calls):
            continue
        candidates.append(d)
        hit = next((c.name for c in d.calls if c.top_level and _HELPER_NEEDS.fullmatch(c.name)), None)
        if hit is not None:
            found[_key(d)] = [hit]
    for _ in range(DEPTH - 1):
        added = False
        for d in candidates:
            key = _key(d)
            if key in found:
                continue
            for c in d.calls:
                chain = found.get(f"{d.path}:{c.name}") or found.get(c.name)
                if c.top_level and chain is not None:
                    found[key] = [c.name, *chain]
                    added = True
                    break
        if not added:
            break
    return found


def _key(d: Definition) -> str:
    return f"{d.path}:{d.name}" if d.local else d.name
