"""The path states of the ``refcount`` and ``context`` walks (:mod:`refcount`): the
references or locks held, what this path released, how it got here; and the events a walk
reports."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["FAILED", "Event", "Held", "Ops", "State"]

# Marks, in State.released, an object whose tryget failed on this path, as
# (key, FAILED + pair): not released (the caller's pointer is still good to use) and not
# held (a put here is one too many).
FAILED = "failed:"


@dataclass(frozen=True)
class Held:
    key: str
    pair: str
    line: int  # where it was acquired
    call: str
    owned: bool = True  # the function is responsible for releasing it (see _owned)
    out: int = 0  # stored through an out-parameter at this line: the caller's if it succeeds


@dataclass(frozen=True)
class State:
    held: tuple[Held, ...] = ()
    released: frozenset[tuple[str, str]] = frozenset()
    via: str = ""  # last jump on this path ("goto unlock at line 412")
    escaped: frozenset[str] = frozenset()  # stored/handed on before any get on this path
    # Branch conditions this path decided, for conditions the function tests twice
    # (`if (flags & X) lock(); ... if (!(flags & X)) return;` never leaves without it).
    decided: frozenset[tuple[str, bool]] = frozenset()

    def add(self, h: Held) -> State:
        if h.key and h.key in self.escaped:
            # `nrg->css = rg->css; css_get(rg->css);`: the get is for the stored copy.
            return self
        if sum(1 for x in self.held if x.key == h.key and x.pair == h.pair) >= 3:
            return self  # enough to prove a leak; keeps the state space finite in loops
        released = self.released - {(h.key, h.pair), (h.key, FAILED + h.pair)}
        held = tuple(sorted((*self.held, h), key=_held_order))
        return State(held, released, self.via, self.escaped, self.decided)

    def drop(self, key: str, pair: str | None = None) -> tuple[State, Held | None]:
        for i, h in enumerate(self.held):
            if h.key == key and (pair is None or h.pair == pair):
                rest = self.held[:i] + self.held[i + 1 :]
                return State(rest, self.released | {(h.key, h.pair)}, self.via, self.escaped,
                             self.decided), h
        return self, None

    def escape(self, key: str) -> State:
        return State(self.held, self.released, self.via, self.escaped | {key}, self.decided)

    def jumped(self, via: str) -> State:
        return State(self.held, self.released, via, self.escaped, self.decided)

    # The walk makes a state per step: built field by field, as dataclasses.replace()
    # (which looks the fields up by name each time) cost a tenth of a walk.
    def with_held(self, held: tuple[Held, ...]) -> State:
        return State(held, self.released, self.via, self.escaped, self.decided)

    def with_released(self, released: frozenset[tuple[str, str]]) -> State:
        return State(self.held, released, self.via, self.escaped, self.decided)

    def with_decided(self, decided: frozenset[tuple[str, bool]]) -> State:
        return State(self.held, self.released, self.via, self.escaped, decided)


def _held_order(h: Held) -> tuple[str, str, int]:
    return (h.key, h.pair, h.line)


@dataclass(frozen=True)
class Event:
    kind: str  # leak | double-release
    held: Held | None
    key: str
    pair: str
    line: int | None
    exit_line: int | None
    via: str


Ops = list[tuple[str, Any]]  # ("acquire", Held) | ("release", (key, pair, line)) | ("drop"|"transfer", key)
