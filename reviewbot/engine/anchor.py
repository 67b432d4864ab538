"""What a hunk that starts inside a function is entered holding: the base function's state
at the hunk's first line.

A patch whose hunks fit no base closely enough to be placed (engine/rebuild.py) is read
from its hunks alone, and a hunk that starts inside a function is wrapped in a synthetic
definition (engine/cfunc.py) that the ``context`` walk enters holding nothing. A mutex
taken by a hunk that starts twenty lines below the function's ``spin_lock_irq()`` then
looks harmless. A reviewer does better: they open the function in the tree they know,
find the hunk's first lines in it, and read the hunk under what is held there.

This does the same. For each such fragment whose function the nearest base has (by the
``@@`` header's name), the hunk's leading context lines are looked for, in order, in the
base function; where they are found once, the base function is walked
(:class:`~reviewbot.engine.context.ContextAnalysis`) and what every path holds on
reaching the first of those lines becomes the fragment's entry context. A lock whose
acquire the patch removes says nothing about the author's tree and is left out; so is
everything when the lines are found more than once or not in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reviewbot.diff import FileDiff
from reviewbot.engine.cfunc import FunctionView
from reviewbot.engine.entryctx import ENTRY_PREFIX, entry_reason
from reviewbot.engine.lockconfig import LOCK_WORDS
from reviewbot.engine.rebuild import NamedViews
from reviewbot.engine.refstate import Held, State

MEMO_KEY = "anchor"
_LEAD = 3  # leading lines compared: a hunk's default context
_MIN_TEXT = 12  # a line shorter than this (`}`, `return 0;`) is too common to find alone
_SPACE = re.compile(r"\s+")


@dataclass
class Anchor:
    base: FunctionView  # the function in the nearest base
    line: int  # base file line the hunk's first shown line is at
    removed: frozenset[str]  # the file's removed lines (whitespace collapsed)
    held: tuple[Held, ...] | None = field(default=None, repr=False)  # computed on first use


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text.strip())


def _is_code(text: str) -> bool:
    t = text.strip()
    return bool(t) and not t.startswith(("/*", "*", "//", "}", "#")) and t != "{"


def anchor_views(fd: FileDiff, views: list[FunctionView], base: NamedViews) -> None:
    """Mark the fragments of ``views`` that start inside a function with the place their
    first lines hold in the base function (``view.memo[MEMO_KEY]``)."""
    removed = frozenset(_norm(ln.text) for h in fd.hunks for ln in h.lines if ln.kind == "-")
    for view in views:
        if not view.partial or view.shown or view.node.start_point[0] != 0 or 0 in view.rows \
                or view.name.startswith("__"):
            continue  # not a fragment wrapped in a synthetic head
        lead = _leading(view)
        if not lead:
            continue
        found = [b for b in base.of(view.name) if not b.partial]
        if len(found) != 1 or not _locks_somewhere(found[0]):
            continue
        line = _find(found[0], lead)
        if line is not None:
            view.memo[MEMO_KEY] = Anchor(found[0], line, removed)


def _locks_somewhere(base: FunctionView) -> bool:
    """Whether the base function takes any lock or section (a name with a lock word): one
    that takes none holds nothing of its own at the anchor, and is not walked."""
    start, end = base.node.start_point[0], base.node.end_point[0]
    text = "\n".join(base.text_lines[start:end + 1])
    return any(word in text for word in LOCK_WORDS)


def _leading(view: FunctionView) -> list[str]:
    """The fragment's code lines before its first added line (its leading context)."""
    out: list[str] = []
    for row in sorted(view.rows):
        line = view.rows[row]
        if line in view.added or len(out) == _LEAD:
            break
        text = view.text_lines[row] if row < len(view.text_lines) else ""
        if _is_code(text):
            out.append(_norm(text))
    return out


def _find(base: FunctionView, lead: list[str]) -> int | None:
    """The base line where ``lead`` starts (its lines in order, other lines between them
    allowed up to a few), when that place is the only one; None otherwise."""
    start, end = base.node.start_point[0], base.node.end_point[0]
    rows = [(row, _norm(base.text_lines[row])) for row in range(start + 1, min(end, len(base.text_lines)))
            if _is_code(base.text_lines[row])]
    places: list[int] = []
    for i, (row, text) in enumerate(rows):
        if text != lead[0]:
            continue
        j, ok = i, True
        for want in lead[1:]:
            nxt = next((k for k in range(j + 1, min(j + 3, len(rows))) if rows[k][1] == want), None)
            if nxt is None:
                ok = False
                break
            j = nxt
        if ok:
            places.append(row)
    if len(places) != 1 or (len(lead) < 2 and len(lead[0]) < _MIN_TEXT):
        return None
    return base.rows.get(places[0])


def anchor_holds(anchor: Anchor, first: int) -> tuple[Held, ...]:
    """The fragment's entry holds: what the base function holds at the anchor (walked by
    engine/context.py into ``anchor.held``), relabelled as its caller's (never a leak of
    the fragment) and dated at its first line."""
    out: list[Held] = []
    for h in anchor.held or ():
        taken = entry_reason(h)
        how = taken if taken is not None else \
            f"{h.call}() at line {h.line} of the base's {anchor.base.name}()"
        what = h.key.lstrip("&") or "section"
        out.append(Held(h.key, h.pair, first,
                        f"{ENTRY_PREFIX}{what}, held where this hunk starts in the nearest base ({how})",
                        False))
    return tuple(out)


def common_held(anchor: Anchor, states: list[tuple[int, State]]) -> tuple[Held, ...]:
    """What every path state that first reaches the anchor holds (``states``: the line of
    each walk node at or after the anchor, and the state it was reached with), less the
    locks whose acquire line the patch removes: the author's function may not take them."""
    if not states:
        return ()
    at = min(line for line, _ in states)
    reached = [s for line, s in states if line == at]
    common = set.intersection(*({(h.key, h.pair) for h in s.held} for s in reached))
    kept: dict[tuple[str, str], Held] = {}
    for h in reached[0].held:
        if (h.key, h.pair) in common and not _removed(anchor, h):
            kept.setdefault((h.key, h.pair), h)
    return tuple(kept.values())


def _removed(anchor: Anchor, h: Held) -> bool:
    text = anchor.base.row_text(h.line)
    return bool(text) and _norm(text) in anchor.removed
