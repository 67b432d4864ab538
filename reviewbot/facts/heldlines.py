"""What a kernel-style body holds at each of its calls, read line by line without a parser.

Shared by the tables of what a callback, a static function's callers and an ops member's
callers run under (facts/callbacks.py, engine/callerctx.py, facts/opscontext.py). Kept
precise the same way for all three: a hold counts only when a plain lock primitive (no
trylock, no task-state scope) starts a statement; a line indented less than the lock
call closes the block it was taken in; a release of the same lock (or, for a section
without a key, of the same kind) ends it, whatever path the release is on, so the scan
errs towards "not held".
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from reviewbot.engine.refspec import normalize
from reviewbot.facts.extract import CALL, args_at
from reviewbot.facts.knowledge import Knowledge

__all__ = ["Helpers", "Hold", "Site", "calls_with_holds"]

# A helper's effect on its caller's locks: lock -> chain (facts/locksummary.py keeps/drops).
Helpers = Callable[[str], dict[str, list[str]]]


@dataclass(frozen=True)
class Hold:
    call: str  # the primitive ("spin_lock_irq")
    key: str  # the lock as key_of() names it ("" for a section such as rcu_read_lock)
    indent: int  # tabs before the lock call
    kind: str  # kernel.yaml kind (spinlock, mutex, rcu, ...)

    @property
    def item(self) -> str:
        return f"{self.call} {self.key}"


@dataclass(frozen=True)
class Site:
    """A call that is no lock primitive, with what is held around it."""

    row: int  # 0-based line of the body
    line: str
    match: re.Match[str]  # CALL's match in ``line``
    held: tuple[Hold, ...]
    released: frozenset[str]  # keys (``#kind`` for a section) released on an earlier line

    @property
    def name(self) -> str:
        return self.match.group(1)

    @property
    def through_pointer(self) -> bool:
        """``x->member(...)`` or ``x.member(...)``: a call through a pointer."""
        return self.line[: self.match.start()].rstrip().endswith(("->", "."))


def calls_with_holds(body: str, k: Knowledge, key_of: Callable[[str], str] = normalize,
                     kept: Helpers | None = None, dropped: Helpers | None = None) -> Iterator[Site]:
    """Every call of ``body`` that is no lock primitive, in order, with the locks held
    around it. ``key_of`` names a lock from its argument text; ``kept`` and ``dropped``
    give what a called helper leaves held (a global lock: ``cgroup_lock()``) or releases."""
    held: list[Hold] = []
    released: set[str] = set()
    for row, line in enumerate(body.split("\n")):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip("\t"))
        held = [h for h in held if indent >= h.indent]
        for m in CALL.finditer(line):
            name = m.group(1)
            if line[: m.start()].rstrip().endswith(("->", ".")):
                yield Site(row, line, m, tuple(held), frozenset(released))  # (through a pointer)
                continue
            got = k.lock_for(name)
            if got is None:
                yield Site(row, line, m, tuple(held), frozenset(released))
                for lock, chain in (kept(name) if kept is not None else {}).items():
                    prim = k.lock_for(chain[-1]) if chain else None
                    if not lock.startswith(("$", "<")) and prim is not None and stripped.startswith(name):
                        held.append(Hold(chain[-1], lock, indent, prim[0].kind))
                for lock in (dropped(name) if dropped is not None else {}):
                    held = [h for h in held if h.key != lock]
                    released.add(lock)
                continue
            spec, role = got
            args = args_at(line, m.end())
            key = "" if spec.keyless else key_of(args[0] if args else "")
            if role == "release":
                held = [h for h in held if not (h.key == key and (key or h.kind == spec.kind))]
                released.add(key or f"#{spec.kind}")
            elif not spec.conditional and spec.kind != "scope" and stripped.startswith(name):
                held.append(Hold(name, key, indent, spec.kind))
