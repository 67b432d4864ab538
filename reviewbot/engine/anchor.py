"""What a hunk that starts inside a function is entered holding: the base function's state
at the hunk's first line.

A patch whose hunks fit no base closely enough to be placed (engine/rebuild.py) is read
from its hunks alone, and a hunk that starts inside a function is wrapped in a synthetic
definition (engine/cfunc.py) that the ``context`` walk enters holding nothing. A mutex
taken by a hunk that starts twenty lines below the function's ``spin_lock_irq()`` then
looks harmless. A reviewer does better: they open the function in the tree they know,
find the hunk's first lines in it, and read the hunk under what is held there.

This does the same. For each such fragment, the hunk's leading context lines are looked
for, in order, in the base function the ``@@`` header names (or in the whole base file
when it names none); where they are found once, the base function is walked
(:class:`~reviewbot.engine.context.ContextAnalysis`) and what every path holds on
reaching the first of those lines becomes the fragment's entry context. A lock whose
acquire the patch removes says nothing about the author's tree and is left out; so is
everything when the lines are found more than once or not in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from reviewbot.diff import FileDiff
from reviewbot.engine.callerctx import members_of
from reviewbot.engine.cfunc import FunctionView, views_from_text
from reviewbot.engine.entryctx import ENTRY_PREFIX, entry_hint, entry_reason
from reviewbot.engine.lockconfig import LOCK_WORDS
from reviewbot.engine.loose import normalized_lines
from reviewbot.engine.rebuild import NamedViews
from reviewbot.engine.refstate import Held, State
from reviewbot.facts.knowledge import load_knowledge
from reviewbot.facts.tables import EMPTY

MEMO_KEY = "anchor"
_LEAD = 3  # leading lines compared: a hunk's default context
_MIN_TEXT = 12  # a line shorter than this (`}`, `return 0;`) is too common to find alone


@dataclass
class Anchor:
    base: FunctionView  # the function in the nearest base
    line: int  # base file line the hunk's first shown line is at
    removed: frozenset[str]  # the file's removed lines (whitespace collapsed)
    held: tuple[Held, ...] | None = field(default=None, repr=False)  # computed on first use


def _is_code(normed: str) -> bool:
    """A line (whitespace collapsed) that is a statement: not blank, a comment, a brace or
    a preprocessor line."""
    return bool(normed) and not normed.startswith(("/*", "*", "//", "}", "#")) and normed != "{"


def anchor_views(fd: FileDiff, views: list[FunctionView], base: NamedViews) -> None:
    """Mark the fragments of ``views`` that start inside a function with the place their
    first lines hold in the base function (``view.memo[MEMO_KEY]``). The function is the
    one the ``@@`` header names; when it names none (git's default hunk header picks a
    label such as ``out_unlock:``, which says nothing) or the base has no function of that
    name, it is the base function whose lines hold the hunk's leading context."""
    removed = frozenset(_norm(ln.text) for h in fd.hunks for ln in h.lines if ln.kind == "-")
    for view in views:
        if not view.partial or view.shown or view.node.start_point[0] != 0 or 0 in view.rows:
            continue  # not a fragment wrapped in a synthetic head
        lead = _leading(view)
        if not lead:
            continue
        named = [] if view.name.startswith("__") else [b for b in base.of(view.name) if not b.partial]
        if len(named) > 1:
            continue  # two definitions (#ifdef alternatives): which one is unknown
        placed = _in_function(base, named[0], lead) if named else _in_file(base, lead)
        if placed is not None and (_locks_before(placed[0], placed[1]) or _entered_holding(placed[0])):
            view.memo[MEMO_KEY] = Anchor(placed[0], placed[1], removed)


def _locks_before(base: FunctionView, line: int) -> bool:
    """Whether the base function takes any lock or section (a name with a lock word)
    before the anchor line: one that takes none there holds nothing of its own at the
    anchor, and is not walked (a walk of a long base function costs milliseconds)."""
    start = base.node.start_point[0]
    end = next((row for row, ln in base.rows.items() if ln == line), base.node.end_point[0])
    text = "\n".join(base.text_lines[start:end])
    return any(word in text for word in LOCK_WORDS)


def _entered_holding(base: FunctionView) -> bool:
    """Whether the base function may hold something from its first line (read in its
    file: every caller holds a lock, it implements an ops member, it asserts a lock, its
    signature makes it a softirq callback): then it is walked even if it takes nothing."""
    text = "\n".join(base.text_lines[base.node.start_point[0]:base.node.end_point[0] + 1])
    return bool(members_of(base.text_lines).get(base.name)) or entry_hint(base, text, EMPTY, load_knowledge())


def _leading(view: FunctionView) -> list[str]:
    """The fragment's code lines before its first added line (its leading context)."""
    out: list[str] = []
    for row in sorted(view.rows):
        line = view.rows[row]
        if line in view.added or len(out) == _LEAD:
            break
        text = _norm(view.text_lines[row]) if row < len(view.text_lines) else ""
        if _is_code(text):
            out.append(text)
    return out


def _tails(lead: list[str]) -> list[list[str]]:
    """``lead``, then without its first lines: the base may have rewritten the farthest
    context line, and a later one is still before the change. A single short line
    (``return 0;``) is too common to tell a place."""
    return [lead[k:] for k in range(len(lead)) if len(lead) - k > 1 or len(lead[k]) >= _MIN_TEXT]


def _places(normed: list[str], index: dict[str, list[int]], lead: list[str], lo: int, hi: int) -> list[int]:
    """Rows in [lo, hi] where ``lead`` starts: its lines in order, up to two other
    statements between two of them."""
    out: list[int] = []
    for row in index.get(lead[0], ()):
        if not lo <= row <= hi:
            continue
        at, ok = row, True
        for want in lead[1:]:
            skipped, k = 0, at + 1
            while k <= hi and normed[k] != want:
                skipped += _is_code(normed[k])
                if skipped > 2:
                    break
                k += 1
            if k > hi or normed[k] != want:
                ok = False
                break
            at = k
        if ok:
            out.append(row)
    return out


def _in_function(base: NamedViews, fn: FunctionView, lead: list[str]) -> tuple[FunctionView, int] | None:
    normed, index = normalized_lines(base.text)
    lo, hi = fn.node.start_point[0] + 1, min(fn.node.end_point[0], len(normed) - 1)
    for tail in _tails(lead):
        places = _places(normed, index, tail, lo, hi)
        if len(places) == 1:
            line = fn.rows.get(places[0])
            return (fn, line) if line is not None else None
        if places:
            return None  # found more than once: the farther lines would not tell either
    return None


def _in_file(base: NamedViews, lead: list[str]) -> tuple[FunctionView, int] | None:
    """The base function whose lines hold ``lead`` once in the whole file."""
    normed, index = normalized_lines(base.text)
    for tail in _tails(lead):
        places = _places(normed, index, tail, 0, len(normed) - 1)
        if len(places) > 1:
            return None
        if places:
            row = places[0]
            window = base.braces().window(row)
            if window is None:
                return None
            first, last = window
            snippet = "\n" * first + "\n".join(base.rows()[first:last + 1])
            for fn in views_from_text(base.path, snippet):
                if fn.node.start_point[0] < row <= fn.node.end_point[0] and not fn.partial:
                    line = fn.rows.get(row)
                    return (fn, line) if line is not None else None
            return None
    return None


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


def _norm(text: str) -> str:
    return " ".join(text.split())


def _removed(anchor: Anchor, h: Held) -> bool:
    text = anchor.base.row_text(h.line)
    if text and _norm(text) in anchor.removed:
        return True
    if not h.call.startswith(ENTRY_PREFIX):
        return False
    # Held on entry, by the callers or by contract: a patch that removes a lock or unlock
    # of that lock in the file changes how it is held ("per memcg lru lock" replaced the
    # callers' pgdat->lru_lock by lruvec locks), and the base's answer is stale.
    expr = re.escape(h.key.rsplit("():", 1)[-1].lstrip("&").strip())
    call = re.compile(rf"\w*(lock|unlock)\w*\s*\(\s*&?\s*{expr}\s*[,)]")
    return bool(expr) and any(call.search(line) for line in anchor.removed)
