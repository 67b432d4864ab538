"""The base a series that applied nowhere is read against: the one its hunks fit best.

A reviewer who gets a patch for a tree they do not have reads it against the tree they
know that looks most like the author's. Here: for each candidate base, the hunks whose
pre-image (context and removed lines, in order) is found verbatim in that base's file,
counted over the first patch that touches each file (later patches' pre-images are the
earlier patches' results). The base with most hunks found wins; a tie goes to the earlier
candidate the base released nearest the mail's date (context that both bases share says
nothing; a 2021 patch is closer to 6.1 than to 6.12), else to the earlier candidate (the
caller lists newest first). Reading is one ``git cat-file --batch`` per
repository (tree/blobs.py), about a millisecond per file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from reviewbot.diff import FileDiff

MAX_FILES = 50  # a treewide series: the first 50 files decide
@dataclass(frozen=True)
class Placement:
    base: str  # the ref chosen
    found: int  # hunks whose pre-image is in the base's file
    hunks: int  # hunks looked at
    scores: tuple[tuple[str, int], ...]  # every candidate and its count, in order
    # Candidates released after the mail was sent: a tree its author could not have had,
    # which may hold the series and the fixes to it (engine/stage.py reads no file there
    # unless it is the closest base).
    later: frozenset[str] = frozenset()

    def describe(self) -> str:
        if len(self.scores) == 1:
            return f"{self.found} of {self.hunks} hunks' context found in {self.base}"
        others = ", ".join(f"{ref} {n}" for ref, n in self.scores if ref != self.base)
        return (f"closest of {len(self.scores)} bases: {self.found} of {self.hunks} hunks' "
                f"context found in {self.base} ({others})")


def first_touches(patches: Iterable[Sequence[FileDiff]]) -> list[FileDiff]:
    """The first diff of each existing file the series touches, in series order."""
    seen: set[str] = set()
    out: list[FileDiff] = []
    for files in patches:
        for fd in files:
            if fd.is_new or not fd.old_path or fd.is_binary:
                seen.add(fd.path)
                continue
            if fd.old_path not in seen:
                out.append(fd)
            seen.add(fd.old_path)
            seen.add(fd.path)
            if len(out) >= MAX_FILES:
                return out
    return out


def _pre_image(lines: Iterable[tuple[str, str]]) -> str:
    return "\n".join(text for kind, text in lines if kind != "+") + "\n"


def closest_base(bases: Sequence[str], patches: Iterable[Sequence[FileDiff]],
                 read: Callable[[str, str], str | None],
                 when: datetime | None = None,
                 dates: Mapping[str, datetime | None] | None = None) -> Placement | None:
    """The base among ``bases`` (best first on a tie) whose files hold most of the hunks'
    pre-images; None without bases, without a hunk to look at, or when no base holds any."""
    files = first_touches(patches)
    blocks = [(fd.old_path or fd.path, _pre_image((ln.kind, ln.text) for ln in h.lines))
              for fd in files for h in fd.hunks]
    if not bases or not blocks:
        return None
    scores: list[tuple[str, int]] = []
    for base in bases:
        # A block starts a line: at the top of the file or after a newline (a copy of the
        # whole file per hunk, or with a newline in front, was most of the cost of placing
        # a series).
        texts: dict[str, str | None] = {}
        found = 0
        for path, block in blocks:
            if path not in texts:
                texts[path] = read(base, path)
            text = texts[path]
            if text is not None and (text.startswith(block) or "\n" + block in text):
                found += 1
        scores.append((base, found))
    top = max(n for _, n in scores)
    if top == 0:
        return None  # placed nowhere: no base is closer than another (the caller's default)
    tied = [s for s in scores if s[1] == top]
    best = tied[0]
    if len(tied) > 1 and when is not None and dates:
        dated = [(abs((d - when).total_seconds()), i) for i, (ref, _) in enumerate(tied)
                 if (d := dates.get(ref)) is not None]
        if dated:
            best = tied[min(dated)[1]]
    later = frozenset(ref for ref, _ in scores
                      if when is not None and dates and (d := dates.get(ref)) is not None and d > when)
    return Placement(best[0], best[1], len(blocks), tuple(scores), later)
