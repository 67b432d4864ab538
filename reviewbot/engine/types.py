"""What the engines receive (a patch's files with their functions) and what they return."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from reviewbot.diff import FileDiff
from reviewbot.engine.cfunc import FunctionView
from reviewbot.facts.tables import EMPTY, Facts

if TYPE_CHECKING:  # rebuild.py builds on this module's types
    from reviewbot.engine.rebuild import RowMap


@dataclass(frozen=True)
class RawFinding:
    """An engine's hit before it becomes a :class:`reviewbot.model.Finding`."""

    line: int | None  # post-image line (base line when found in a base view)
    function: str | None
    captures: dict[str, str]  # fill the rule's message template; 'detail' by convention
    evidence: tuple[int, ...] = ()  # line numbers of the flagged lines, in order
    preexisting: bool = False  # the engine itself knows the problem predates the patch


@dataclass
class FileContext:
    diff: FileDiff
    post_views: list[FunctionView]  # functions touched by the patch, post-image
    # The same functions in the base (or the pre-image hunks), built on first use: only a
    # rule that fired needs them, and building them costs a parse (or a `git show`).
    base_loader: Callable[[], list[FunctionView]] = list
    post_text: str | None = None  # whole post-image file when the series applied
    # The file's other functions (tree mode): where the refcount engine looks for helpers
    # a touched function calls (see engine/helpers.py).
    untouched_views: list[FunctionView] = field(default_factory=list)
    # A patch that did not apply, rebuilt on the nearest base (engine/rebuild.py): the
    # text of its lines by post-image number, for quoting the lines that come from the base.
    line_text: dict[int, str] = field(default_factory=dict)
    rebuilt_text: str | None = None  # the whole post-image file so rebuilt (a later patch
    # of the series is placed on it)
    rebuilt_rows: RowMap | None = None  # its row -> post-image line
    # base_named() without loading every base function (a rule asks for the few it fired
    # on); it must answer what filtering base_loader()'s list would, with the same views.
    base_by_name: Callable[[str], list[FunctionView]] | None = None
    # The base this file was rebuilt on when it is not the series' nearest one (its hunks
    # fit another base better: engine/run.py build_file_context).
    read_on: str | None = None
    _base: list[FunctionView] | None = field(default=None, init=False, repr=False)
    _named: dict[str, list[FunctionView]] = field(default_factory=dict, init=False, repr=False)
    _quote: dict[int, str] | None = field(default=None, init=False, repr=False)
    _post_lines: list[tuple[int, str]] | None = field(default=None, init=False, repr=False)

    @property
    def path(self) -> str:
        return self.diff.path

    def quotable(self) -> dict[int, str]:
        """Post-image line number -> its text, for evidence: the whole file when the series
        applied, else the base's lines of a rebuilt function and the hunks' own lines.
        Built once per file (every finding quotes from it; per finding it made the rules
        quadratic in the length of a patched function)."""
        if self._quote is None:
            if self.post_text is not None:
                self._quote = dict(enumerate(self.post_text.split("\n"), start=1))
            else:
                self._quote = {**self.line_text,
                               **{ln.new_lineno: ln.text for h in self.diff.hunks
                                  for ln in h.lines if ln.new_lineno}}
        return self._quote

    def post_lines(self) -> list[tuple[int, str]]:
        """(line, text) of the post-image file as far as it is known: the whole file when
        the series applied, the rebuilt rows, else the hunks' context and added lines.
        Built once per file (the consistency rules each read it)."""
        if self._post_lines is None:
            self._post_lines = self._read_post_lines()
        return self._post_lines

    def post_lines_with(self, word: str) -> list[tuple[int, str]]:
        """The entries of :meth:`post_lines` whose text contains ``word``, in the same
        order (filtering a sorted list keeps its order). A rebuilt file is searched for the
        word instead: listing and sorting its thousands of rows to keep a few was most of
        the charge-pairs rule on a patch of mm/memcontrol.c."""
        if self._post_lines is not None or self.post_text is not None \
                or self.rebuilt_text is None or not self.rebuilt_rows or "\n" in word or not word:
            return [row for row in self.post_lines() if word in row[1]]
        text, rows = self.rebuilt_text, self.rebuilt_rows
        found: list[tuple[int, str]] = []
        row, counted = 0, 0  # ``row`` newlines before offset ``counted``
        at = text.find(word)
        while at >= 0:
            begin = text.rfind("\n", 0, at) + 1
            end = text.find("\n", at)
            end = len(text) if end < 0 else end
            row += text.count("\n", counted, begin)
            counted = begin
            line_text = text[begin:end]
            # What RowMap.items() lists for the row: its explicit line, and one per run.
            if row in rows.explicit:
                found.append((rows.explicit[row], line_text))
            found.extend((anchor_line + (row - anchor_row), line_text)
                         for first, stop, anchor_row, anchor_line in rows.runs if first <= row < stop)
            at = text.find(word, end)
        return sorted(found)

    def _read_post_lines(self) -> list[tuple[int, str]]:
        if self.post_text is not None:
            return list(enumerate(self.post_text.split("\n"), start=1))
        if self.rebuilt_text is not None and self.rebuilt_rows:
            text = self.rebuilt_text.split("\n")
            return sorted((line, text[row]) for row, line in self.rebuilt_rows.items() if row < len(text))
        return sorted((ln.new_lineno, ln.text) for h in self.diff.hunks for ln in h.lines
                      if ln.new_lineno and ln.kind != "-")

    @property
    def partial(self) -> bool:
        return self.post_text is None

    @property
    def base_views(self) -> list[FunctionView]:
        if self._base is None:
            self._base = self.base_loader()
        return self._base

    def base_named(self, name: str) -> list[FunctionView]:
        if self._base is not None or self.base_by_name is None:
            return [v for v in self.base_views if v.name == name]
        if name not in self._named:
            self._named[name] = self.base_by_name(name)
        return self._named[name]


@dataclass
class PatchContext:
    """One patch of a series, plus what the series as a whole removes and adds."""

    patch_index: int
    files: list[FileContext]
    worktree: Path | None = None
    series_removed: list[tuple[str, str]] = field(default_factory=list)  # (path, text)
    series_added: list[tuple[str, str]] = field(default_factory=list)
    is_last: bool = True  # series-scope rules run once, on the last patch
    memo: dict[str, object] = field(default_factory=dict)  # per-patch caches of the engines
    # What the base tree says about the functions the patch calls (may sleep, takes a lock,
    # drops a reference), with the patch's own functions on top; EMPTY without a tree.
    facts: Facts = field(default_factory=lambda: EMPTY)

    def all_post_views(self) -> list[FunctionView]:
        return [v for f in self.files for v in f.post_views]

    def all_untouched_views(self) -> list[FunctionView]:
        return [v for f in self.files for v in f.untouched_views]
