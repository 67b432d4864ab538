"""Whole functions for a patch that does not apply: its hunks placed on the nearest base.

Most list mail does not apply to any base reviewbot has (the cgroups list of 2025: 9% on
6.1, 25% on 6.12). A reviewer still reads such a patch against the tree they know: they
find each hunk's context in their copy of the file and read the whole function around
it. This does the same: every hunk's pre-image (its context and removed lines) is looked
for in the base file, nearest to where the hunk says it starts (shifted by the hunks
placed before it); a hunk placed exactly (or with up to two context lines at each end
differing, GNU patch's fuzz; or found already applied) is applied, and the functions
around the placed hunks are read whole from the result. A hunk whose context the base
rewrote in places (a renamed local, a reflowed call, a line added since) is placed
loosely, as a reviewer lines a patch up with the code they know: where most of its
pre-image lines (at least LOOSE_SHARE, compared without whitespace) occur in order within
a short stretch of the base, the hunk's own lines replace that stretch. Line numbers stay the patch's own: lines from a
hunk keep theirs, lines from the base are numbered by their distance to the nearest hunk.

A function is rebuilt only when every hunk inside it was placed; otherwise it stays what
the hunks show. Findings on rebuilt functions are marked partial (the base is not the
author's), and name the base they were read on.
"""

from __future__ import annotations

import bisect
import dataclasses
import re
from dataclasses import dataclass
from functools import lru_cache

from reviewbot.diff import FileDiff, Hunk, Line
from reviewbot.engine.cfunc import FunctionView, views_from_text
from reviewbot.engine.loose import loose_placement, misplaced


@dataclass
class Rebuilt:
    text: str  # the post-image file: base lines with the placed hunks applied
    line_of_row: RowMap  # 0-based row of ``text`` -> the patch's post-image line
    placed: list[Hunk]
    missed: list[Hunk]
    line_text: dict[int, str]  # patch post-image line -> its text (for quoting evidence)
    lines: list[str]  # text.split("\n"), kept from building it
    # Rows of ``lines`` that start with "{" and "}" (Braces), carried over from the base's
    # while building; None when a hunk line held a newline (then found in the text).
    brace_rows: tuple[list[int], list[int]] | None = None
    # Hunks of ``placed`` found already applied (the base holds their post-image).
    applied: int = 0

    @property
    def fresh(self) -> int:
        """Hunks placed on their pre-image: the base is a tree the change applies to."""
        return len(self.placed) - self.applied


def _pre_image(hunk: Hunk) -> list[str]:
    return [ln.text for ln in hunk.lines if ln.kind in (" ", "-")]


# Memo key of a rebuilt view: the text of every line of the file's hunks (context, added
# and removed), what the author's tree is known to hold around the change.
PATCH_TEXT = "patch-text"

MAX_FUZZ = 2  # context lines that may differ at each end of a hunk, as GNU patch's default


def _placements(hunk: Hunk) -> list[tuple[list[Line], str]]:
    """The ways to look for a hunk in the base, in order: its lines as they are; with up to
    MAX_FUZZ context lines dropped at each end (the base changed just around the hunk,
    what ``patch`` calls fuzz); and as already applied (the base has the post-image: the
    series, or an equivalent change, is in it). Each: the hunk lines kept, and the kinds
    that must match the base (" -" before the change, " +" after it)."""
    lines = list(hunk.lines)
    lead = next((i for i, ln in enumerate(lines) if ln.kind != " "), len(lines))
    trail = next((i for i, ln in enumerate(reversed(lines)) if ln.kind != " "), len(lines))
    changes = any(ln.kind != " " for ln in lines)
    out: list[tuple[list[Line], str]] = []
    for kinds in (" -", " +") if changes else (" -",):
        for fuzz in range(MAX_FUZZ + 1):
            cut_lead, cut_trail = min(fuzz, lead), min(fuzz, trail)
            if fuzz and cut_lead + cut_trail == 0:
                break
            kept = lines[cut_lead:len(lines) - cut_trail]
            if sum(ln.kind in kinds for ln in kept) >= 2:  # one "}" alone would fit anywhere
                out.append((kept, kinds))
    return out


def _find(base: list[str], index: dict[str, list[int]], want: list[str], expected: int,
          start: int) -> int | None:
    """Index where ``want`` occurs in ``base`` at or after ``start``, nearest ``expected``.
    ``index`` lists where each line occurs; the rarest line of ``want`` anchors the search."""
    if not want:
        return None
    get = index.get
    counts = [len(get(line, ())) for line in want]
    anchor = counts.index(min(counts))  # (the first of the rarest, as min() picks)
    best: int | None = None
    for hit in index.get(want[anchor], ()):
        i = hit - anchor
        if i < start or base[i : i + len(want)] != want:
            continue
        if best is None or abs(i - expected) < abs(best - expected):
            best = i
    return best


@lru_cache(maxsize=32)
def _base_braces(base_text: str) -> tuple[list[int], list[int]]:
    """Rows of a base file that start with "{" and with "}" (see Braces), once per file:
    a rebuilt file's rows are the base's, shifted, plus the hunks' lines."""
    return _rows_starting(base_text, "{"), _rows_starting(base_text, "}")


def _copied_rows(rows: list[int], lo: int, hi: int, to: int, out: list[int]) -> None:
    """Append the rows of ``rows`` in [lo, hi), moved to start at row ``to``."""
    shift = to - lo
    found = rows[bisect.bisect_left(rows, lo):bisect.bisect_left(rows, hi)]
    out.extend([r + shift for r in found] if shift else found)


@lru_cache(maxsize=32)
def _lines(text: str) -> list[str]:
    """``text.split("\n")`` of a base file, once: placing the hunks and reading the base
    functions (NamedViews) both split it (callers never change the list)."""
    return text.split("\n")


@lru_cache(maxsize=32)
def _prepared(base_text: str) -> tuple[list[str], dict[str, list[int]]]:
    """Lines of a base file and where each occurs; cached, since a scan places the hunks
    of patch after patch on the same big files (str hashes are cached by Python)."""
    base = _lines(base_text)
    index: dict[str, list[int]] = {}
    for i, line in enumerate(base):
        index.setdefault(line, []).append(i)
    return base, index


class RowMap:
    """Row of the rebuilt file -> the patch's post-image line: explicit for hunk lines,
    by distance to the nearest hunk line for runs of base lines (a run is a slice, not
    thousands of entries: a whole mm/memcontrol.c is rebuilt for every patch touching it)."""

    def __init__(self) -> None:
        self.explicit: dict[int, int] = {}
        self.runs: list[tuple[int, int, int, int]] = []  # (first row, end row, anchor row, anchor line)

    def get(self, row: int, default: int | None = None) -> int | None:
        if row in self.explicit:
            return self.explicit[row]
        for first, end, anchor_row, anchor_line in self.runs:
            if first <= row < end:
                return anchor_line + (row - anchor_row)
        return default

    def __contains__(self, row: object) -> bool:
        return isinstance(row, int) and self.get(row) is not None

    def __getitem__(self, row: int) -> int:
        line = self.get(row)
        if line is None:
            raise KeyError(row)
        return line

    def __bool__(self) -> bool:
        return bool(self.explicit or self.runs)

    def items(self) -> list[tuple[int, int]]:
        out = list(self.explicit.items())
        for first, end, anchor_row, anchor_line in self.runs:
            out.extend((row, anchor_line + (row - anchor_row)) for row in range(first, end))
        return out


def rebuild(fd: FileDiff, base_text: str) -> Rebuilt:
    base, index = _prepared(base_text)
    out: list[str] = []
    rows = RowMap()
    line_text: dict[int, str] = {}
    placed: list[Hunk] = []
    missed: list[Hunk] = []
    applied = 0
    pos = 0  # next base line not yet copied
    shift = 0  # where the base puts hunks, relative to where the patch says
    last: tuple[int, int] | None = None  # (row, patch line) of the last hunk line
    whole_lines = True  # ``out`` holds lines (base lines do; a hunk's line should)
    added = "\n".join(ln.text for h in fd.hunks for ln in h.lines if ln.kind == "+")
    base_opens, base_closes = _base_braces(base_text)
    opens: list[int] = []  # rows of ``out`` starting with "{" / "}"
    closes: list[int] = []

    for hunk in fd.hunks:
        at = None
        kinds = " -"
        for kept, kinds in _placements(hunk):
            want = [ln.text for ln in kept if ln.kind in kinds]
            at = _find(base, index, want, hunk.old_start - 1 + shift, pos)
            if at is not None and len(kept) < len(hunk.lines) and misplaced(base_text, base, hunk, at, added):
                at = None  # fuzz left too little context to tell the place
            if at is not None:
                break
        consumed = len(want) if at is not None else 0
        if at is None and (loose := loose_placement(base_text, hunk, hunk.old_start - 1 + shift, pos)):
            at, consumed, kept = loose
            kinds = " -"  # found loosely on its pre-image
            if misplaced(base_text, base, hunk, at, added):
                at = None
        if at is None:
            missed.append(hunk)
            continue
        shift = at - (hunk.old_start - 1)
        run = (len(out), len(out) + (at - pos))
        _copied_rows(base_opens, pos, at, len(out), opens)
        _copied_rows(base_closes, pos, at, len(out), closes)
        out.extend(base[pos:at])
        first_row = len(out)
        first_line = next((ln.new_lineno for ln in hunk.lines if ln.new_lineno), hunk.new_start)
        if run[1] > run[0]:
            # Before the first hunk: count back from it; after one: forward from it.
            anchor = last if last is not None else (first_row, first_line)
            rows.runs.append((run[0], run[1], anchor[0], anchor[1]))
        for ln in kept:
            if ln.kind == "-":
                continue
            row = len(out)
            out.append(ln.text)
            whole_lines = whole_lines and "\n" not in ln.text
            if ln.text[:1] == "{":
                opens.append(row)
            elif ln.text[:1] == "}":
                closes.append(row)
            if ln.new_lineno:
                rows.explicit[row] = ln.new_lineno
                line_text[ln.new_lineno] = ln.text
                last = (row, ln.new_lineno)
        pos = at + consumed
        placed.append(hunk)
        applied += kinds == " +"
    if last is not None and pos < len(base):
        rows.runs.append((len(out), len(out) + len(base) - pos, last[0], last[1]))
    _copied_rows(base_opens, pos, len(base), len(out), opens)
    _copied_rows(base_closes, pos, len(base), len(out), closes)
    out.extend(base[pos:])
    text = "\n".join(out)
    # Unless a hunk line held a newline, ``out`` is the text's lines: not split again.
    lines = out if whole_lines else text.split("\n")
    return Rebuilt(text, rows, placed, missed, line_text, lines,
                   (opens, closes) if whole_lines else None, applied)


def rebuilt_views(fd: FileDiff, base_text: str, result: Rebuilt | None = None,
                  ) -> tuple[list[FunctionView], list[FunctionView], Rebuilt] | None:
    """(touched functions, the file's other functions) rebuilt whole on the base, or None
    when no hunk could be placed. Only the functions around the placed hunks are parsed
    (a whole mm/memcontrol.c costs tree-sitter 80 ms; its functions a few each)."""
    result = result or rebuild(fd, base_text)  # (the caller may have placed it already)
    if not result.placed:
        return None
    added = frozenset(ln.new_lineno for h in fd.hunks for ln in h.lines if ln.kind == "+" and ln.new_lineno)
    missed_lines = {ln.new_lineno for h in result.missed for ln in h.lines if ln.new_lineno}
    rows = result.lines
    braces = Braces(result.text, rows, result.brace_rows)
    patch_text = "\n".join(ln.text for h in fd.hunks for ln in h.lines)
    touched: list[FunctionView] = []
    seen: set[tuple[int, int]] = set()
    for row in sorted(_hunk_rows(result)):
        window = braces.window(row)
        if window is None or window in seen:
            continue
        seen.add(window)
        first, last = window
        # Rows before the window are blank: line numbers and columns stay those of the file.
        snippet = "\n" * first + "\n".join(rows[first : last + 1])
        for view in views_from_text(fd.path, snippet, added=frozenset()):
            start, end = view.node.start_point[0], view.node.end_point[0]
            if not start <= row <= end:
                continue
            row_line = result.line_of_row.get  # (one look-up per row, not `in` and `[]`)
            mapped_rows = {r: line for r in range(start, end + 1) if (line := row_line(r)) is not None}
            if set(mapped_rows.values()) & missed_lines:
                continue
            rebuilt = FunctionView(view.file, view.name, view.node, view.first_row, mapped_rows,
                                   added, partial=False, parse_errors=view.parse_errors,
                                   text_lines=rows, shown=frozenset(result.line_text))
            rebuilt.memo[PATCH_TEXT] = patch_text
            touched.append(rebuilt)
    return touched, [], result


def named_views(path: str, text: str, names: set[str]) -> list[FunctionView]:
    """The functions called ``names`` in a whole file, parsing only their own lines.

    A base file is read for a few touched functions (is this one new? what did it look
    like before?); parsing all of mm/memcontrol.c for that was the largest cost of a
    rules run. Each name's kernel-style definition (an unindented line with ``name(``,
    then ``{`` alone in column 0 before any ``;``) is parsed alone, on its own rows. A name
    that has such a line but no window found that way falls back to the whole file.
    """
    return NamedViews(path, text, names).all()


class NamedViews:
    """:func:`named_views` a name at a time: a rule asks for the base of the functions it
    fired on, often a few of a patch's many; only their windows are parsed. ``of(name)``
    is ``all()`` filtered by the name, the same view objects in the same order."""

    def __init__(self, path: str, text: str, names: set[str]) -> None:
        self.path, self.text, self.names = path, text, names
        self._rows: list[str] | None = None
        self._plans: dict[str, tuple[list[tuple[int, int]], bool]] = {}
        self._views: dict[str, list[FunctionView]] = {}
        self._extra: list[FunctionView] | None = None  # from the whole file, when needed
        self._brace_rows: Braces | None = None

    def rows(self) -> list[str]:
        """The file's lines (split once, shared with the placement of its hunks, and the
        same list for every patch read on this base file: what is worked out once per
        source, the callers' contexts of engine/callerctx.py, is then kept)."""
        if self._rows is None:
            self._rows = _prepared(self.text)[0]
        return self._rows

    def braces(self) -> Braces:
        return self._braces()

    def _braces(self) -> Braces:
        if self._brace_rows is None:
            self._brace_rows = Braces(self.text, self.rows(), _base_braces(self.text))
        return self._brace_rows

    def all(self) -> list[FunctionView]:
        out = [v for name in sorted(self.names) for v in self._windows_of(name)]
        return out + self._whole()

    def of(self, name: str) -> list[FunctionView]:
        if name not in self.names:
            return []
        return self._windows_of(name) + [v for v in self._whole() if v.name == name]

    def _plan(self, name: str) -> tuple[list[tuple[int, int]], bool]:
        """The windows of a name's definitions, and whether a definition line had none."""
        if name not in self._plans:
            rows = self.rows()
            windows: list[tuple[int, int]] = []
            unsure = False
            for row in _definition_rows(self.text, name):
                brace = next((r for r in range(row, min(row + 12, len(rows)))
                              if rows[r].startswith("{")
                              or (r > row and rows[r - 1].rstrip().endswith(";"))), None)
                if brace is not None and not rows[brace].startswith("{"):
                    continue  # a prototype or a declaration: ";" came first
                window = self._braces().window(brace) if brace is not None else None
                if window is None:
                    unsure = True
                else:
                    windows.append(window)
            self._plans[name] = windows, unsure
        return self._plans[name]

    def _windows_of(self, name: str) -> list[FunctionView]:
        if name not in self._views:
            windows, _ = self._plan(name)
            rows = self.rows()
            out: list[FunctionView] = []
            for first, last in windows:
                # Rows before the window are blank: line numbers stay those of the file.
                snippet = "\n" * first + "\n".join(rows[first:last + 1])
                # Its source is the whole file: the ops initializers, callers and comments
                # the rules read around a function (the same rows as the snippet's).
                out += [dataclasses.replace(v, text_lines=rows)
                        for v in views_from_text(self.path, snippet) if v.name == name]
            self._views[name] = out
        return self._views[name]

    def _whole(self) -> list[FunctionView]:
        """A definition this window search does not understand (a name with a definition
        line and no window, and no view from its windows): the whole file is read, for
        every name. Only such a name needs its windows parsed to know."""
        if self._extra is None:
            self._extra = []
            if any(self._plan(n)[1] and not self._windows_of(n) for n in sorted(self.names)):
                got = {(v.name, v.first_row) for n in sorted(self.names) for v in self._windows_of(n)}
                self._extra = [v for v in views_from_text(self.path, self.text)
                               if v.name in self.names and (v.name, v.first_row) not in got]
        return self._extra


def _definition_rows(text: str, name: str) -> list[int]:
    """Rows where ``^[A-Za-z_].*\\bNAME\\s*\\(`` (multiline) matches, as ``finditer``
    finds them, without running that pattern: its ``.*`` made the regex engine try every
    line of the file (a few ms per name on mm/memcontrol.c). The literal ``NAME\\s*\\(`` is
    searched instead, and each hit's line is judged as the pattern would judge it: the
    line starts with a letter or ``_`` and the name does not start it; the greedy ``.*``
    ends the match after the line's last such hit, where the next search starts."""
    rows: list[int] = []
    pos = 0  # where finditer would search next
    row, counted = 0, 0  # ``row`` newlines before offset ``counted``
    line_end = -1  # end of the last matched line
    # A leading \b would cost the regex engine its literal search (40 times slower):
    # an identifier's word boundary is checked by hand.
    word = re.fullmatch(r"\w+", name) is not None
    literal = re.escape(name) + r"\s*\("
    for hit in re.finditer(literal if word else r"\b" + literal, text):
        start = hit.start()
        if word and start and (text[start - 1].isalnum() or text[start - 1] == "_"):
            continue  # inside a longer identifier
        if start < line_end:
            pos = hit.end()  # a later hit on the matched line: the greedy match ends here
            continue
        begin = text.rfind("\n", 0, start) + 1
        first = text[begin]
        if begin < pos or begin == start or \
                not (first == "_" or "A" <= first <= "Z" or "a" <= first <= "z"):
            continue
        row += text.count("\n", counted, begin)
        counted = begin
        end = text.find("\n", start)
        line_end = len(text) if end < 0 else end
        rows.append(row)
        pos = hit.end()
    return rows


class Braces:
    """The rows of a text that start with ``{`` or ``}`` (column 0), found once: a window
    is asked for every changed row of a patch and every definition of a base function,
    and scanning the rows up and down each time was a tenth of a rules run."""

    def __init__(self, text: str, rows: list[str],
                 found: tuple[list[int], list[int]] | None = None) -> None:
        self.rows = rows  # text.split("\n")
        # (``found``: the two lists, when the caller knows them: rebuild() does)
        self.opens, self.closes = found or (_rows_starting(text, "{"), _rows_starting(text, "}"))

    def window(self, row: int) -> tuple[int, int] | None:
        """First and last row of the kernel-style function around ``row``: its ``{`` and
        ``}`` alone in column 0 (coding-style.rst), and the signature lines above the brace:
        the nearest ``{`` at or above ``row`` with no ``}`` between, and the nearest ``}`` at
        or below it."""
        i = bisect.bisect_right(self.opens, row) - 1
        if i < 0:
            return None
        open_row = self.opens[i]
        j = bisect.bisect_left(self.closes, open_row)
        if j < len(self.closes) and self.closes[j] < row:
            return None  # the function above ended before ``row``
        k = bisect.bisect_left(self.closes, row)
        if k == len(self.closes):
            return None
        return _signature_start(self.rows, open_row), self.closes[k]


def _rows_starting(text: str, ch: str) -> list[int]:
    """Rows (of text.split("\n")) whose first character is ``ch``, in order, found by
    searching for newline + ``ch`` rather than looking at every row."""
    out = [0] if text.startswith(ch) else []
    row, counted = 0, 0
    at = text.find("\n" + ch)
    while at >= 0:
        row += text.count("\n", counted, at + 1)
        counted = at + 1
        out.append(row)
        at = text.find("\n" + ch, at + 1)
    return out


def _signature_start(rows: list[str], open_row: int) -> int:
    """The first row of the signature above a function's opening brace."""
    first = open_row
    while first > 0 and rows[first - 1].strip() and not rows[first - 1].rstrip().endswith((";", "}", "*/")) \
            and not rows[first - 1].startswith("#"):
        first -= 1
    return first


def _hunk_rows(result: Rebuilt) -> set[int]:
    """Rows of the rebuilt text that a placed hunk changed (added lines, or the line after
    a removal)."""
    changed = {ln.new_lineno for h in result.placed for ln in h.lines if ln.kind == "+" and ln.new_lineno}
    for h in result.placed:
        prev = h.new_start
        for ln in h.lines:
            if ln.kind == "-":
                changed.add(max(1, prev))
            if ln.new_lineno:
                prev = ln.new_lineno
    return {row for row, line in result.line_of_row.explicit.items() if line in changed}
