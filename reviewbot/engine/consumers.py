"""Functions of a patch that take over a reference their caller passes in, on some paths
only: the seed thread's leak (a css_get() before task_update_memcg(), which returns early
when get_task_mm() fails and never stores or puts the reference it was given).

For each complete function of the patch and each pointer parameter, the path analysis
runs with a reference held on the parameter from the entry: where it is stored, released
or handed on, the function consumed it; where it is still held at a return, it did not.
A function that does both is a *partial consumer*; a caller that hands it a reference it
holds is told where the callee drops it on the floor.

The question only matters for a function that an analysed function calls, which few
patches have: :class:`Consumers` asks it per callee name on first use, so that a patch's
other functions do not each cost one path walk per pointer parameter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from reviewbot.engine.cfunc import FunctionView, node_text
from reviewbot.engine.refcount import Analysis, Held, State
from reviewbot.engine.refspec import Config
from reviewbot.facts.tables import Facts

_POINTER_PARAM = re.compile(r"\*\s*(?:const\s+)?([A-Za-z_]\w*)\s*$")
_PAIR = "handed"  # the synthetic reference a caller hands in


@dataclass(frozen=True)
class PartialConsumer:
    function: str
    index: int  # the parameter
    param: str
    keeps_at: tuple[int, ...]  # returns where the reference is neither stored nor released


def partial_consumers(config: Config, views: list[FunctionView], facts: Facts | None
                      ) -> dict[str, list[PartialConsumer]]:
    out: dict[str, list[PartialConsumer]] = {}
    for view in views:
        if view.partial:
            continue
        first: _HandedIn | None = None
        for index, param in _pointer_params(view):
            if param not in node_text(view.node.child_by_field_name("body") or view.node):
                continue
            analysis = _HandedIn(config, view, facts, param)
            if first is None:
                first = analysis
            else:
                analysis.share_effects(first)  # only the start differs
            analysis.run()
            end = view.lines()[-1] if view.lines() else 0  # falling off the end
            kept = sorted({line if line is not None else end
                           for line, (_, sets) in analysis.exits.items()
                           for held in sets if (param, _PAIR) in held})
            gone = any((param, _PAIR) not in held
                       for _, sets in analysis.exits.values() for held in sets)
            if kept and gone:
                out.setdefault(view.name, []).append(PartialConsumer(view.name, index, param, tuple(kept)))
    return out


class Consumers:
    """:func:`partial_consumers` of a patch's functions, by callee name, worked out when an
    analysis first meets a call of that name (the same answer as the eager dict: a name's
    functions are analysed together, in the patch's order)."""

    def __init__(self, config: Config, views: list[FunctionView], facts: Facts | None) -> None:
        self.config = config
        self.facts = facts
        self._views: dict[str, list[FunctionView]] = {}
        for view in views:
            if not view.partial:
                self._views.setdefault(view.name, []).append(view)
        self._found: dict[str, list[PartialConsumer]] = {}

    def get(self, name: str, default: Sequence[Any] = ()) -> Sequence[Any]:
        views = self._views.get(name)
        if views is None:
            return default  # not a complete function of the patch: nothing to ask
        found = self._found.get(name)
        if found is None:
            found = partial_consumers(self.config, views, self.facts).get(name, [])
            self._found[name] = found
        return found or default

    def __bool__(self) -> bool:
        return bool(self._views)


def _pointer_params(view: FunctionView) -> list[tuple[int, str]]:
    decl = view.node.child_by_field_name("declarator")
    while decl is not None and decl.type != "function_declarator":
        decl = decl.child_by_field_name("declarator")
    plist = decl.child_by_field_name("parameters") if decl is not None else None
    out: list[tuple[int, str]] = []
    if plist is None:
        return out
    for index, p in enumerate(c for c in plist.named_children if c.type == "parameter_declaration"):
        m = _POINTER_PARAM.search(node_text(p))
        if m:
            out.append((index, m.group(1)))
    return out


class _HandedIn(Analysis):
    """The path analysis with a reference on one parameter held from the entry."""

    def __init__(self, config: Config, view: FunctionView, facts: Facts | None, param: str) -> None:
        super().__init__(config, view, facts)
        self.param = param

    def initial(self) -> State:
        return replace(State(), held=(Held(self.alias.find(self.param), _PAIR, 0, "caller", True),))

    def exit(self, state: State, line: int | None) -> None:
        self.exits.setdefault(line, (self.exit_kind, []))[1].append(
            frozenset((h.key, h.pair) for h in state.held))
