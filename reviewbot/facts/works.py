"""Work items and the functions they run: ``INIT_WORK(&css->destroy_work,
css_killed_work_fn)`` makes ``destroy_work`` run css_killed_work_fn(). Keyed by the member
name (the text a later ``flush_work(&css->destroy_work)`` shows), because a reviewer reads a
flush by the work it waits for. Each function is kept with the file that binds it: a
member name several subsystems use (``destroy_work`` in cgroup, fs and net) is read by
the binders in the flushing file's own folder first; a name bound to very many functions
says nothing and is dropped."""

from __future__ import annotations

import re
from collections.abc import Iterable

from reviewbot.facts.extract import Definition

__all__ = ["MAX_WORK_FUNCTIONS", "work_functions", "work_member"]

# The initialisers of workqueue.h that bind a work item to its function.
_INIT_WORK = re.compile(r"(__)?INIT_(WORK|WORK_ONSTACK|DELAYED_WORK|DELAYED_WORK_ONSTACK|"
                        r"DEFERRABLE_WORK|RCU_WORK|RCU_WORK_ONSTACK)")
# More bindings than this under one member name: too generic a name to judge a flush by.
MAX_WORK_FUNCTIONS = 12


def work_member(arg: str) -> str | None:
    """``&css->destroy_work`` -> ``destroy_work`` (``&x->dwork.work`` -> ``dwork``)."""
    text = arg.strip().lstrip("&").strip()
    parts = [p for p in re.split(r"->|\.", text) if p]
    if len(parts) >= 2 and parts[-1] == "work":
        parts = parts[:-1]  # the work_struct inside a delayed_work or rcu_work
    if not parts or not re.fullmatch(r"\w+", parts[-1]):
        return None
    return parts[-1]


def work_functions(defs: Iterable[Definition]) -> dict[str, list[list[str]]]:
    """Member name -> [function, path of the binding] pairs (sorted; an empty list when
    more than MAX_WORK_FUNCTIONS share the name)."""
    found: dict[str, set[tuple[str, str]]] = {}
    for d in defs:
        for c in d.calls:
            if not _INIT_WORK.fullmatch(c.name):
                continue
            args = c.arg_list
            if len(args) < 2 or not re.fullmatch(r"\w+", args[1].strip()):
                continue
            member = work_member(args[0])
            if member is not None:
                found.setdefault(member, set()).add((args[1].strip(), d.path))
    return {m: [list(b) for b in sorted(bound)] if len(bound) <= MAX_WORK_FUNCTIONS else []
            for m, bound in found.items()}
