"""Loose placement of a hunk on a base file the author's tree differs from (see
:mod:`reviewbot.engine.rebuild`), and the check that a placement landed in the function
git's ``@@`` header names."""

from __future__ import annotations

import re
from collections import Counter
from difflib import Match, SequenceMatcher
from functools import lru_cache

from reviewbot.diff import Hunk, Line, function_name

LOOSE_SHARE = 0.6  # pre-image lines that must be found, in order, for a loose placement
LOOSE_MIN = 4  # and at least this many distinctive ones (a few braces fit anywhere)
LOOSE_SLACK = 8  # base lines the stretch may have beyond the hunk's pre-image
_NEAR = 40  # base lines around the stretch where the added lines may already stand


def _norm(line: str) -> str:
    return " ".join(line.split())


def _distinctive(line: str) -> bool:
    """A line that says where it is: not blank, not a lone brace, label or return."""
    text = _norm(line)
    return len(text) > 6 and text not in ("return 0;", "return ret;", "} else {", "break;",
                                          "return;", "return err;", "goto out;", "rcu_read_lock();",
                                          "rcu_read_unlock();")


def loose_placement(base_text: str, hunk: Hunk, expected: int,
           start: int) -> tuple[int, int, list[Line]] | None:
    """(first base row, rows replaced, hunk lines to write) for a hunk whose pre-image is
    mostly in the base in order, nearest ``expected``; None when no stretch is close enough."""
    lines = list(hunk.lines)
    pre = [(i, _norm(ln.text)) for i, ln in enumerate(lines) if ln.kind in (" ", "-")]
    if len(pre) < LOOSE_MIN:
        return None
    key_rows = [k for k, (_, text) in enumerate(pre) if _distinctive(text)]
    if len(key_rows) < LOOSE_MIN:
        return None
    starts: set[int] = set()
    normed, norm_index = normalized_lines(base_text)
    for k in key_rows:
        for hit in norm_index.get(pre[k][1], ()):
            if hit >= start:
                starts.add(max(start, hit - k - LOOSE_SLACK // 2))
    want = [text for _, text in pre]
    # A stretch cannot match more lines than it shares with the hunk (the matching blocks
    # pair equal lines, each at most once): most stretches fail that bound, and counting
    # costs far less than the SequenceMatcher that would reject them the same way.
    wanted = Counter(want)
    best: tuple[int, int, int, int] | None = None  # (-matched, distance, first, end)
    for first in sorted(starts):
        window = normed[first:first + len(pre) + LOOSE_SLACK]
        have = Counter(window)
        shared = {x: min(n, have[x]) for x, n in wanted.items() if x in have}
        if sum(shared.values()) < LOOSE_SHARE * len(pre) or \
                sum(n for x, n in shared.items() if _distinctive(x)) < LOOSE_MIN:
            continue
        blocks = [b for b in SequenceMatcher(None, want, window, autojunk=False)
                  .get_matching_blocks() if b.size]
        matched = sum(b.size for b in blocks)
        keys = sum(1 for b in blocks for k in range(b.a, b.a + b.size) if _distinctive(want[k]))
        if matched < LOOSE_SHARE * len(pre) or keys < LOOSE_MIN:
            continue
        lo, hi = first + blocks[0].b, first + blocks[-1].b + blocks[-1].size
        score = (-matched, abs(lo - expected), lo, hi)
        if best is None or score < best:
            best = score
    if best is None:
        return None
    _, _, lo, hi = best
    # The hunk's lines from its first matched pre-image line to its last: what the base has
    # in between is replaced by what the author's tree had there (context) and the change.
    window = normed[lo:hi]
    blocks = [b for b in SequenceMatcher(None, want, window, autojunk=False)
              .get_matching_blocks() if b.size]
    if _locking_differs(want, window, blocks):
        return None
    # The change is there already, reworded around it (the base merged it, or a later
    # version of it): placing it again would write each added line twice, two calls where
    # the author has one (a lock helper then reads as taken twice). Read alone instead.
    added = [_norm(ln.text) for ln in lines if ln.kind == "+" and _distinctive(ln.text)]
    near = set(normed[max(0, lo - _NEAR):hi + _NEAR])
    if added and all(a in near for a in added):
        return None
    first_line = pre[blocks[0].a][0]
    last_line = pre[blocks[-1].a + blocks[-1].size - 1][0]
    # Added lines next to unmatched context at either end are the change itself: kept.
    while first_line > 0 and lines[first_line - 1].kind == "+":
        first_line -= 1
    while last_line + 1 < len(lines) and lines[last_line + 1].kind == "+":
        last_line += 1
    return lo, hi - lo, lines[first_line:last_line + 1]


_LABEL = re.compile(r"^[A-Za-z_]\w*:")
# Lock and unlock calls: spin/raw_spin/read/write/mutex/down/up, rcu_read_lock, guard()s.
_LOCKING = re.compile(r"\b(?:\w*_)?(?:un)?lock(?:_\w+)?\s*\(|\b(?:down|up)(?:_\w+)?\s*\(|"
                      r"\b(?:scoped_)?guard\s*\(")


def _locking_differs(want: list[str], window: list[str], blocks: list[Match]) -> bool:
    """Do the author's tree and the base lock differently in the stretch a loose placement
    joins? Placing the hunk replaces the stretch with the author's lines, while the rest of
    the function stays the base's: when an unmatched line on either side takes or drops a
    lock, the rebuilt function takes one version's lock and releases the other's (a 2020
    hunk with `pgdat->lru_lock` in 6.1's `lruvec->lru_lock` function read as an imbalance and
    a sleep under a spinlock). Refused: the hunk is read on its own instead."""
    seen_a: set[int] = set()
    seen_b: set[int] = set()
    for b in blocks:
        a0, b0, size = b.a, b.b, b.size
        seen_a.update(range(a0, a0 + size))
        seen_b.update(range(b0, b0 + size))
    lo_a, hi_a = blocks[0].a, blocks[-1].a + blocks[-1].size
    unmatched = [want[i] for i in range(lo_a, hi_a) if i not in seen_a]
    unmatched += [window[i] for i in range(len(window)) if i not in seen_b]
    return any(_LOCKING.search(text) for text in unmatched)


def _enclosing(rows: list[str], row: int) -> str | None:
    """The function whose body holds ``row`` of a kernel-style file: the name in the
    nearest column-0 line above that is neither a brace, a label nor a directive."""
    for i in range(min(row, len(rows) - 1), -1, -1):
        text = rows[i]
        if (text[:1].isalpha() or text[:1] == "_") and not _LABEL.match(text):
            return function_name(text)
    return None


def misplaced(base_text: str, rows: list[str], hunk: Hunk, at: int, added: str) -> bool:
    """A placement (fuzzy or loose) at base row ``at`` inside one function for a hunk git
    says is in another function that the base also defines. Few context lines are left to
    compare once fuzz drops two at each end (`rcu_read_lock();` and blank lines fit in
    many functions), and the change would be read in a function it was never made to: a
    2020 cgroup_sk_alloc() hunk landed in 6.1's cgroup_get_from_id() and "leaked" its kn.
    ``added`` is what the patch adds to the file: git names the pre-image's function, and a
    patch that splits one (the base already has the result) adds the other's name."""
    wanted = hunk.function
    if not wanted:
        return False
    found = _enclosing(rows, at)
    if not found or found == wanted or found in added:
        return False
    return _defines(base_text, wanted)


def _defines(text: str, name: str) -> bool:
    r"""``re.search(r"^[A-Za-z_][^;=\n]*\bNAME\s*\(", text, re.MULTILINE)``, without making
    the regex engine try every line of a large file: the literal ``NAME\s*\(`` is searched
    and each hit's line judged as the pattern would (a line that starts with a letter or
    ``_`` before the name, no ``;`` or ``=`` up to it, a word boundary in front of it)."""
    if not re.fullmatch(r"\w+", name):
        return re.search(rf"^[A-Za-z_][^;=\n]*\b{re.escape(name)}\s*\(", text, re.MULTILINE) is not None
    for hit in re.finditer(re.escape(name) + r"\s*\(", text):
        start = hit.start()
        begin = text.rfind("\n", 0, start) + 1
        if start == begin:
            continue  # the name starts the line: nothing before it for [A-Za-z_]
        before = text[start - 1]
        first = text[begin]
        if (before.isalnum() or before == "_") or \
                not (first == "_" or "A" <= first <= "Z" or "a" <= first <= "z"):
            continue
        prefix = text[begin + 1:start]
        if ";" not in prefix and "=" not in prefix:
            return True
    return False


@lru_cache(maxsize=32)
def normalized_lines(base_text: str) -> tuple[list[str], dict[str, list[int]]]:
    """The base's lines without their spacing (_norm()), and where each occurs: each
    stretch a loose placement compares is a slice, not a line-by-line rewrite."""
    normed = [_norm(line) for line in base_text.split("\n")]
    index: dict[str, list[int]] = {}
    for i, line in enumerate(normed):
        index.setdefault(line, []).append(i)
    return normed, index
