"""Callbacks and the context they run in: a function that calls one of its function-pointer
parameters while holding a spinlock, an RCU read section, or with interrupts or preemption
disabled runs every function passed as that argument in that context.

``blkcg_print_blkgs()`` takes ``spin_lock_irq(&blkg->q->queue_lock)`` and calls its
``prfill`` parameter inside: every prfill callback runs with that lock held and interrupts
off, so sleeping there, or a ``spin_lock_irq()`` pair re-enabling interrupts, is a bug the
callback's own body cannot show.

Kept precise: a hold counts only when taken by a plain lock primitive at the start of a
statement and not released or left (a line less indented than the lock call closes its
block) before the indirect call; a callback counts only when passed by name as that very
argument. Two tables: ``indirect`` (function -> parameter index -> [parameter, "lock-call
key"...]) and ``callbacks`` (function passed -> [caller, parameter, path of a static
callback or "", "lock-call key"...]).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from reviewbot.facts.extract import Definition, fp_params
from reviewbot.facts.heldlines import calls_with_holds
from reviewbot.facts.knowledge import Knowledge

_NAME_ARG = re.compile(r"&?\s*([A-Za-z_]\w*)")


def callback_params(d: Definition, k: Knowledge) -> dict[str, list[str]]:
    """Parameter index -> [parameter name, "spin_lock_irq blkg->q->queue_lock", ...]: the
    atomic sections held around a call of a function-pointer parameter."""
    pointers = fp_params(d.params) if d.fp_body else {}
    if not pointers:
        return {}
    out: dict[str, list[str]] = {}
    for site in calls_with_holds(d.fp_body, k):
        atomic = [h.item for h in site.held if h.kind in k.atomic_kinds]
        if site.name in pointers and atomic and not site.through_pointer:
            out.setdefault(str(pointers[site.name]), [site.name, *atomic])
    return out


def callback_table(defs: list[Definition], indirect: dict[int, dict[str, list[str]]],
                   resolve: Callable[[str, str], list[int]],
                   base_params: Callable[[str], dict[str, list[str]]] | None) -> dict[str, list[str]]:
    """Function passed by name as a callback argument -> [caller, parameter, path of a
    static callback or "", held...]; the first caller (by name) where several are."""
    out: dict[str, list[str]] = {}
    for d in sorted(defs, key=lambda x: (x.path, x.line)):
        for c in d.calls:
            targets = resolve(c.name, d.path)
            params = indirect.get(targets[0], {}) if targets else \
                (base_params(c.name) if base_params is not None else {})
            if not params:
                continue
            args = c.arg_list
            for index, held in params.items():
                if int(index) >= len(args):
                    continue
                m = _NAME_ARG.fullmatch(args[int(index)])
                if m is None:
                    continue
                fn = m.group(1)
                if not resolve(fn, d.path):
                    continue  # not a function these facts know (a pointer variable)
                local = [defs[t] for t in resolve(fn, d.path) if defs[t].local]
                where = local[0].path if local else ""
                out.setdefault(fn, [c.name, held[0], where, *held[1:]])
    return out


def indirect_calls(defs: Iterable[Definition], k: Knowledge) -> dict[int, dict[str, list[str]]]:
    """Definition index -> callback_params(), for those that have any."""
    return {i: got for i, d in enumerate(defs) if (got := callback_params(d, k))}
