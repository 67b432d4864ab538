"""The diff model every stage shares: files, hunks and lines with both line numbers.

Two views of one diff text, both here: :func:`parse_diff`, the model (files, hunks, lines
with both line numbers), and :func:`split_raw`, the raw text cut into files, each with its
header lines and its body lines and their positions in the text, for the readers that need
git's own header lines (the apply stage's safety checks: modes, renames, binary patches)
or the exact lines to quote (the reply mail), even when the model refuses the diff.

:func:`parse_diff` is built on :mod:`unidiff`, with the checks a bot that reads untrusted mail needs: a size
limit (lines and bytes) and path safety (no absolute paths, no ``..`` components, no NUL),
so that nothing downstream ever writes or reads outside a worktree because of a diff.
All failures are :class:`~reviewbot.errors.BadInputError` naming the offending input.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from unidiff.constants import RE_DIFF_GIT_HEADER, RE_DIFF_GIT_INDEX, RE_HUNK_HEADER
from unidiff.errors import UnidiffParseError
from unidiff.patch import PatchedFile, PatchSet

from reviewbot.config import MailSettings
from reviewbot.errors import BadInputError

DEV_NULL = "/dev/null"
_SIGNATURE = re.compile(r"^-- \n(?:.*\n?){0,4}\Z", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Line:
    kind: str  # '+', '-' or ' '
    text: str  # without the trailing newline
    old_lineno: int | None  # pre-image line number (None for '+')
    new_lineno: int | None  # post-image line number (None for '-')


@dataclass(frozen=True, slots=True)
class Hunk:
    old_start: int
    old_len: int
    new_start: int
    new_len: int
    section: str  # text after the second @@: usually the enclosing function's signature
    lines: tuple[Line, ...]

    @property
    def added(self) -> tuple[Line, ...]:
        return tuple(ln for ln in self.lines if ln.kind == "+")

    @property
    def removed(self) -> tuple[Line, ...]:
        return tuple(ln for ln in self.lines if ln.kind == "-")

    @property
    def function(self) -> str | None:
        """The function named in the ``@@`` header, when the header names one."""
        return function_name(self.section)


@dataclass(frozen=True, slots=True)
class FileDiff:
    old_path: str | None  # None for a new file
    new_path: str | None  # None for a deleted file
    is_new: bool
    is_deleted: bool
    is_rename: bool
    old_mode: str | None
    new_mode: str | None
    is_binary: bool
    hunks: tuple[Hunk, ...]

    @property
    def path(self) -> str:
        """The path the change is about: the post-image path, else the pre-image one."""
        return self.new_path or self.old_path or ""

    @property
    def mode_changed(self) -> bool:
        return bool(self.old_mode and self.new_mode and self.old_mode != self.new_mode)


HUNK_HEADER = re.compile(r"^@@ -\d+(?:,(?P<old>\d+))? \+(?P<new_start>\d+)(?:,(?P<new>\d+))? @@")
_GIT_HEADER = re.compile(r"^diff --git ")
_CONTENT = ("@@", "GIT binary patch", "Binary files ")


@dataclass
class RawFile:
    """One file of a diff as written: header lines, then body lines (hunk headers, hunk
    lines, a binary patch), each as (position in the text, line)."""

    header: list[tuple[int, str]]
    body: list[tuple[int, str]]

    @property
    def has_content(self) -> bool:
        return any(text.startswith(_CONTENT) for _, text in self.body)


def split_raw(text: str) -> list[RawFile]:
    """Cut a diff into files without judging it (no limits, no path checks: callers do).

    A file starts at ``diff --git``, or at ``--- `` once the current file had content
    (diffs without git headers). Hunk line counts are followed, so that a removed line
    reading "-- x" ("--- x" in the diff) is never taken for the next file's header.
    """
    files: list[RawFile] = []
    old_left = new_left = 0
    for i, line in enumerate(text.splitlines()):
        if old_left > 0 or new_left > 0:
            files[-1].body.append((i, line))
            tag = line[:1]
            if tag in (" ", ""):
                old_left, new_left = old_left - 1, new_left - 1
            elif tag == "-":
                old_left -= 1
            elif tag == "+":
                new_left -= 1
            continue
        if _GIT_HEADER.match(line) or (line.startswith("--- ")
                                       and (not files or files[-1].has_content)):
            files.append(RawFile([], []))
        if not files:
            continue
        current = files[-1]
        hunk = HUNK_HEADER.match(line)
        if hunk:
            current.body.append((i, line))
            old_left = int(hunk.group("old") or 1)
            new_left = int(hunk.group("new") or 1)
        elif current.has_content or line.startswith(_CONTENT):
            current.body.append((i, line))
        else:
            current.header.append((i, line))
    return files


# (Possessive: a shorter prefix of a word is followed by a word character, never "(".)
_IDENT_BEFORE_PAREN = re.compile(r"([A-Za-z_]\w*+)\s*\(")
_NOT_FUNCTIONS = frozenset({"if", "for", "while", "switch", "return", "sizeof", "defined"})


# Asked through Hunk.function by every engine for every hunk (a pure function of a short
# string; bounded).
@functools.lru_cache(maxsize=4096)
def function_name(section: str) -> str | None:
    """Name of the function in a hunk header section such as ``static int foo(void)``.

    The last identifier followed by ``(`` before the first ``(`` of the parameter list wins;
    macros such as ``SYSCALL_DEFINE3(name, ...)`` keep their macro name, which is what git
    shows too.
    """
    text = section.strip()
    if not text or text.startswith(("#", "struct ", "union ", "enum ")) and "(" not in text:
        return None
    match = _IDENT_BEFORE_PAREN.search(text)
    if match is None or match.group(1) in _NOT_FUNCTIONS:
        return None
    return match.group(1)


def check_path(path: str, source: str = "diff") -> str:
    """Return ``path`` when it is a safe relative path inside a tree, else raise."""
    if "\0" in path:
        raise BadInputError(f"path {path!r} contains a NUL byte", source=source)
    if path.startswith("/"):
        raise BadInputError(f"absolute path {path!r} refused", source=source)
    parts = PurePosixPath(path).parts
    if ".." in parts:
        raise BadInputError(f"path {path!r} contains '..'", source=source)
    if not parts:
        raise BadInputError("empty path in diff", source=source)
    return path


_QUILT_BACKUP = re.compile(r"~[\w.-]+$")


def _strip_prefix(name: str) -> str | None:
    """Strip one leading component, as ``git am`` and ``patch -p1`` do.

    git's ``a/`` ``b/`` are the common case; 2008-era mails carry tree names instead
    (``--- linux-2.6.25-rc8/fs/exec.c~memory-controller-add-mm-owner``, akpm's quilt
    backup suffix included), and both must land on ``fs/exec.c``.
    """
    if name == DEV_NULL:
        return None
    if name.startswith("/"):
        return name  # refused by check_path, never silently made relative
    if "/" in name:
        name = name.split("/", 1)[1]
    return _QUILT_BACKUP.sub("", name)


def parse_diff(
    text: str, settings: MailSettings | None = None, *, source: str = "diff"
) -> tuple[FileDiff, ...]:
    """Parse a unified (git) diff into :class:`FileDiff` objects.

    Args:
        text: the diff, e.g. ``Message.diff``; a trailing mail signature (``-- ``) is ignored.
        settings: limits (``max_patch_lines``, ``max_message_bytes``); defaults when None.
        source: named in error messages (file or Message-ID).
    Raises:
        BadInputError: the diff is too large, malformed, or names an unsafe path.
    """
    limits = settings or MailSettings()
    if len(text.encode("utf-8", errors="replace")) > limits.max_message_bytes:
        raise BadInputError(
            f"diff is larger than mail.max_message_bytes ({limits.max_message_bytes})",
            source=source,
        )
    nlines = text.count("\n")
    if nlines > limits.max_patch_lines:
        raise BadInputError(
            f"diff has {nlines} lines, more than mail.max_patch_lines ({limits.max_patch_lines})",
            source=source,
        )
    text = _SIGNATURE.sub("", text)
    if text and not text.endswith("\n"):
        text += "\n"
    parsed = _git_diff(text)
    if parsed is None:  # not plain git output: unidiff, with all its cases and errors
        try:
            parsed = [_from_unidiff(pf) for pf in PatchSet(text)]
        except UnidiffParseError as exc:
            # unidiff says e.g. "Hunk diff line expected: <line>": in mail this is almost
            # always a whitespace-damaged patch (a mailer re-wrapped or stripped lines).
            hint = " (whitespace-damaged or wrapped by a mailer?)" if "Hunk" in str(exc) else ""
            raise BadInputError(f"malformed diff{hint}: {exc}", source=source) from exc
    files: list[FileDiff] = []
    for source_file, target_file, source_mode, target_mode, rename, binary, hunks in parsed:
        old = _strip_prefix(source_file or DEV_NULL)
        new = _strip_prefix(target_file or DEV_NULL)
        for p in (old, new):
            if p is not None:
                check_path(p, source)
        files.append(
            FileDiff(
                old_path=old,
                new_path=new,
                is_new=old is None,
                is_deleted=new is None,
                is_rename=rename,
                old_mode=source_mode,
                new_mode=target_mode,
                is_binary=binary,
                hunks=hunks,
            )
        )
    if text.strip() and not files:
        raise BadInputError("no file changes found in diff", source=source)
    return tuple(files)


# (source file, target file, source mode, target mode, rename, binary, hunks): what
# parse_diff() reads of a unidiff PatchedFile.
_Parsed = tuple[str, str, str | None, str | None, bool, bool, tuple[Hunk, ...]]


def _from_unidiff(pf: PatchedFile) -> _Parsed:
    hunks = tuple(
        Hunk(
            old_start=h.source_start,
            old_len=h.source_length,
            new_start=h.target_start,
            new_len=h.target_length,
            section=(h.section_header or "").strip(),
            lines=tuple(
                Line(
                    kind=ln.line_type,
                    text=ln.value.rstrip("\n").rstrip("\r"),
                    old_lineno=ln.source_line_no,
                    new_lineno=ln.target_line_no,
                )
                for ln in h
                if ln.line_type in ("+", "-", " ")
            ),
        )
        for h in pf
    )
    return (pf.source_file, pf.target_file, pf.source_mode, pf.target_mode,
            bool(pf.is_rename), bool(pf.is_binary_file), hunks)


# Header lines of a `diff --git` file that unidiff keeps as patch info and that say
# nothing parse_diff() reads (the mode lines are read below).
_INFO = ("index ", "similarity index ", "dissimilarity index ", "rename from ", "rename to ",
         "copy from ", "copy to ")
_MODES = (("new file mode ", "new"), ("deleted file mode ", "deleted"), ("old mode ", "old"),
          ("new mode ", "mode"))


def _git_diff(text: str) -> list[_Parsed] | None:
    """What unidiff makes of a diff as ``git format-patch`` writes it, read in one pass
    (unidiff matched up to a dozen regexes per line and built an object per line: most of
    parse_diff(), which every review runs). Only that plain shape is read here: one
    ``diff --git a/.. b/..`` per file, its mode and index lines, ``---``/``+++``, hunks
    whose lengths match their headers, ``\\ No newline`` markers and blank lines after a
    hunk. Anything else (no git header, quoted or CR-ended names, binary patches, a
    rename without hunks, a hunk that is short, long or damaged, text after the last
    hunk) returns None, and unidiff reads the whole diff as before, errors included."""
    if "\r" in text or not text.startswith("diff --git "):
        return None
    rows = text.split("\n")
    rows.pop()  # (the text ends with a newline: an empty last row)
    out: list[_Parsed] = []
    i, n = 0, len(rows)
    while i < n:
        head = RE_DIFF_GIT_HEADER.match(rows[i])
        if head is None or '"' in rows[i]:
            return None
        source, target = head.group("source"), head.group("target")
        modes: dict[str, str] = {}
        i += 1
        while i < n and not rows[i].startswith("--- "):
            row = rows[i]
            mode = next(((k, row[len(prefix):]) for prefix, k in _MODES if row.startswith(prefix)), None)
            if mode is not None:
                if not mode[1].isdigit() or not mode[1].isascii():
                    return None  # (unidiff's `\d+$`: then not a mode line)
                modes[mode[0]] = mode[1]
            elif row.startswith(_INFO):
                index = RE_DIFF_GIT_INDEX.match(row)
                if index is not None:  # an unchanged mode: both sides, unless known
                    modes.setdefault("index", index.group("mode"))
            else:
                return None
            i += 1
        if i + 1 >= n or not rows[i + 1].startswith("+++ "):
            return None
        if ("old" in modes and "deleted" in modes) or ("mode" in modes and "new" in modes):
            return None  # two lines for one side: which wins depends on their order
        if "new" in modes:
            source = DEV_NULL
        if "deleted" in modes:
            target = DEV_NULL
        if rows[i + 1][4:] != target or "\t" in rows[i][4:] or "\t" in target:
            return None  # unidiff: a timestamp, or "Target without source"
        i += 2
        hunks: list[Hunk] = []
        while i < n and not rows[i].startswith("diff --git "):
            row = rows[i]
            if not row or row.startswith("\\ No newline at end of file"):
                if not hunks:
                    return None
                i += 1
                continue
            found = _git_hunk(rows, i)
            if found is None:
                return None
            hunk, i = found
            hunks.append(hunk)
        if not hunks:
            return None
        out.append((source, target, *_git_modes(modes), source[2:] != target[2:] and
                    DEV_NULL not in (source, target), False, tuple(hunks)))
    return out


def _git_modes(modes: dict[str, str]) -> tuple[str | None, str | None]:
    """unidiff's source and target modes: the header lines, each setting its side
    (``new file mode`` the target, ``deleted file mode`` the source, then ``old mode``
    and ``new mode``), and a mode on the ``index`` line for a side still unknown. (git
    writes them in that order; one of each at most.)"""
    source = modes.get("old", modes.get("deleted"))
    target = modes.get("mode", modes.get("new"))
    index = modes.get("index")
    return (source if source is not None else index), (target if target is not None else index)


def _git_hunk(rows: list[str], i: int) -> tuple[Hunk, int] | None:
    """The hunk whose header is ``rows[i]`` and the row after it; None when its lines do
    not add up to its header's lengths exactly (unidiff then says why)."""
    header = RE_HUNK_HEADER.match(rows[i])
    if header is None:
        return None
    old_start, old_len, new_start, new_len, section = header.groups()
    old_no, new_no = int(old_start), int(new_start)
    old_end = old_no + (int(old_len) if old_len is not None else 1)
    new_end = new_no + (int(new_len) if new_len is not None else 1)
    if old_no == old_end and new_no == new_end:
        return None
    lines: list[Line] = []
    add = lines.append
    i += 1
    n = len(rows)
    while old_no < old_end or new_no < new_end:
        if i >= n:
            return None
        row = rows[i]
        i += 1
        kind = row[:1]
        if kind == " " or kind == "":
            add(Line(" ", row[1:], old_no, new_no))
            old_no += 1
            new_no += 1
        elif kind == "+":
            add(Line("+", row[1:], None, new_no))
            new_no += 1
        elif kind == "-":
            add(Line("-", row[1:], old_no, None))
            old_no += 1
        elif kind != "\\":
            return None
        if old_no > old_end or new_no > new_end:
            return None
    hunk = Hunk(old_start=int(old_start), old_len=old_end - int(old_start),
                new_start=int(new_start), new_len=new_end - int(new_start),
                section=section.strip(), lines=tuple(lines))
    return hunk, i
