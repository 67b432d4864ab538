"""The walk of a base function up to a fragment's anchor (engine/anchor.py): what every
path holds on reaching it. Apart from engine/context.py, whose walk of the fragment reads
the result, because it is a context walk itself."""

from __future__ import annotations

from reviewbot.engine import cfg
from reviewbot.engine.anchor import Anchor, common_held
from reviewbot.engine.context import ContextAnalysis
from reviewbot.engine.refstate import Held, State
from reviewbot.facts.knowledge import Knowledge
from reviewbot.facts.tables import Facts

__all__ = ["held_at"]


class _AnchorProbe(ContextAnalysis):
    """The walk of a base function with no checks, recording the states that reach an
    anchor line (engine/anchor.py)."""

    def __init__(self, anchor: Anchor, facts: Facts, k: Knowledge) -> None:
        super().__init__({"checks": []}, anchor.base, facts, k)
        self.anchor_line = anchor.line
        self.states: list[tuple[int, State]] = []

    def step(self, node: cfg.CNode, state: State, graph: cfg.Graph) -> list[tuple[cfg.CNode, State]]:
        if node.ast is not None and (line := self.line(node.ast)) is not None and line >= self.anchor_line:
            self.states.append((line, state))
            if line == self.anchor_line:
                return []  # what follows the anchor on this path does not matter
        return super().step(node, state, graph)


def held_at(anchor: Anchor, facts: Facts, k: Knowledge) -> tuple[Held, ...]:
    probe = _AnchorProbe(anchor, facts, k)
    probe.run()
    return () if probe.truncated else common_held(anchor, probe.states)
