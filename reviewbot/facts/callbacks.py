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

from reviewbot.engine.refspec import normalize
from reviewbot.facts.extract import CALL, Definition, fp_params, split_top
from reviewbot.facts.knowledge import Knowledge

_NAME_ARG = re.compile(r"&?\s*([A-Za-z_]\w*)")


def _first_arg(line: str, start: int) -> str:
    depth, i = 1, start
    while i < len(line) and depth:
        depth += line[i] == "("
        depth -= line[i] == ")"
        i += 1
    args = split_top(line[start:i - 1] if not depth else line[start:])
    return args[0] if args else ""


def callback_params(d: Definition, k: Knowledge) -> dict[str, list[str]]:
    """Parameter index -> [parameter name, "spin_lock_irq blkg->q->queue_lock", ...]: the
    atomic sections held around a call of a function-pointer parameter."""
    pointers = fp_params(d.params) if d.fp_body else {}
    if not pointers:
        return {}
    held: list[tuple[str, str, int, str]] = []  # (lock call, key, indent, kind)
    out: dict[str, list[str]] = {}
    for line in d.fp_body.split("\n"):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip("\t"))
        # A line less indented than a lock call closes the block it was taken in.
        held = [h for h in held if indent >= h[2]]
        for m in CALL.finditer(line):
            name = m.group(1)
            before = line[: m.start()].rstrip()
            if before.endswith(("->", ".")):
                continue
            if name in pointers:
                if held:
                    out.setdefault(str(pointers[name]), [name, *(f"{c} {key}" for c, key, _, _ in held)])
                continue
            found = k.lock_for(name)
            if found is None:
                continue
            spec, role = found
            key = "" if spec.keyless else normalize(_first_arg(line, m.end()))
            if role == "release":
                held = [h for h in held if not (h[1] == key and (key or h[3] == spec.kind))]
            elif not spec.conditional and spec.kind in k.atomic_kinds and stripped.startswith(name):
                held.append((name, key, indent, spec.kind))
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
