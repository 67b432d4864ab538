"""Per-CPU work in preemptible code (the ``preempt-needed`` check of the context engine).

``__this_cpu_add()`` and its siblings, and functions that use them
for their caller (``__mod_memcg_state()``, ``__count_memcg_events()``: tree facts,
facts/preemptfacts.py) are only correct while the task cannot move to another CPU. A
caller's context is usually unknown, so a function is judged only when it shows it runs
preemptible: it calls something that may sleep (a sleeping primitive, blocking gfp flags,
a function the facts show sleeping) on a path where nothing keeps it on its CPU. A task
that may sleep there was preemptible there, and so is a per-CPU access reached the same
way: the counter update can land on another CPU's counter, or race with an interrupt on
this one (CONFIG_DEBUG_PREEMPT: "BUG: using __this_cpu_add() in preemptible [00000000]
code").

Only a per-CPU call the patch adds is reported. The walk knows spinlocks,
``preempt_disable()``/``get_cpu()``, ``local_irq_*()``, ``local_bh_disable()`` and guards;
a function that pins itself some other way (``local_lock()``, ``migrate_disable()``,
``get_cpu_ptr()``, ``preempt_disable_nested()``) or tests its context is left alone.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tree_sitter import Node

from reviewbot.engine.cfunc import FunctionView
from reviewbot.engine.cnodes import view_text
from reviewbot.engine.types import RawFinding
from reviewbot.facts.opsfacts import shown_chain
from reviewbot.facts.preemptfacts import NEEDS_OFF
from reviewbot.facts.tables import Facts

if TYPE_CHECKING:
    from reviewbot.engine.context import ContextAnalysis

__all__ = ["preempt_needed", "worth_a_look"]

# Ways to stay on a CPU that the walk does not model, tests of the context, and threads
# that bind themselves to a CPU (DEBUG_PREEMPT accepts a per-CPU thread).
_PINNED_OTHERWISE = re.compile(r"\b(?:local_(?:try)?lock\w*|migrate_disable|get_cpu_ptr|get_cpu_var|"
                               r"preempt_disable_nested|preempt_count|irqs_disabled|in_task|"
                               r"in_interrupt|in_atomic|preemptible|this_cpu_preempt_check|"
                               r"kthread_should_stop|kthread_bind\w*|set_cpus_allowed_ptr|"
                               r"smpboot_\w+|is_percpu_thread)\b")
# Functions that run pinned by how they are called: a work item's function (a bound
# workqueue runs it on a per-CPU kworker), a CPU hotplug callback (`int f(unsigned int
# cpu)`).
_PINNED_BY_CALLER = re.compile(r"\bstruct\s+work_struct\s*\*|\(\s*unsigned\s+int\s+cpu\s*\)")

# What shows a function runs preemptible: a call that sleeps for sure, close by. A
# voluntary preemption point (cond_resched()) or a might_sleep() annotation is also
# written into code that per-CPU workers run, and a long chain ends in a sleep its caller
# may never reach.
_WEAK_SLEEP = re.compile(r"cond_resched\w*|might_sleep\w*|schedule|__might_\w+")
_EVIDENCE_CHAIN = 3


def worth_a_look(view: FunctionView, facts: Facts, callees: frozenset[str]) -> bool:
    """Cheap test before any walk: the patch's function calls a per-CPU primitive or a
    function that needs preemption off, and pins itself no way the walk cannot see."""
    if not view.added:
        return False
    known = view.memo.get("preempt-look")  # asked by the walk and by the rule
    if isinstance(known, bool):
        return known
    view.memo["preempt-look"] = found = _worth_a_look(view, facts, callees)
    return found


def _worth_a_look(view: FunctionView, facts: Facts, callees: frozenset[str]) -> bool:
    if not any(NEEDS_OFF.fullmatch(n) for n in callees) and not (callees & facts.preempt_names()):
        return False
    text = view_text(view)
    body = view.node.child_by_field_name("body")
    head = text[: body.start_byte - view.node.start_byte] if body is not None else text[:200]
    if _PINNED_OTHERWISE.search(text) or _PINNED_BY_CALLER.search(head):
        return False
    return any(NEEDS_OFF.fullmatch(n) or facts.preempt_need(n, view.file) is not None
               for n in callees)


def preempt_needed(a: ContextAnalysis, unpinned: list[tuple[Node, str]]) -> list[RawFinding]:
    """Findings for the calls in ``unpinned`` (reached with nothing keeping the task on
    its CPU), when one of them may sleep."""
    sleeper: tuple[int, str, str] | None = None
    needs: list[tuple[Node, str, list[str]]] = []
    for call, name in unpinned:
        chain = [name] if NEEDS_OFF.fullmatch(name) else a.facts.preempt_need(name, a.view.file)
        if chain is not None:
            needs.append((call, name, chain))
        elif sleeper is None and not _WEAK_SLEEP.fullmatch(name):
            slept = a.sleep_chain(call, name)
            if slept is not None and len(slept) <= _EVIDENCE_CHAIN \
                    and not any(_WEAK_SLEEP.fullmatch(c.split("(")[0]) for c in slept):
                sleeper = (a.line(call) or 0, name, shown_chain(slept))
    if sleeper is None:
        return []
    out: list[RawFinding] = []
    seen: set[int] = set()
    for call, name, chain in needs:
        line = a.line(call) or 0
        if line in seen or not a.relevant(line, line):
            continue
        seen.add(line)
        via = "" if chain == [name] else f" (it calls {' -> '.join(f'{c}()' for c in chain)})"
        primitive = chain[-1]
        where = f"line {sleeper[0]}"
        detail = (f"{name}() at line {line} needs preemption disabled{via}, but nothing here "
                  f"keeps the task on its CPU, and {a.view.name}() runs preemptible: it may "
                  f"sleep in {sleeper[1]}() at {where} ({sleeper[2]}) on a path with nothing "
                  f"held either; with CONFIG_DEBUG_PREEMPT: \"BUG: using {primitive}() in "
                  f"preemptible [00000000] code\"")
        out.append(RawFinding(line, a.view.name, {"detail": detail, "call": name},
                              (line, sleeper[0])))
    return out
