"""Checks on untrusted diffs before git sees them.

Refused (the series is not applied at all): a path that is absolute, climbs with ``..``,
names ``.git`` (any case), creates a submodule link, goes through a symbolic link of the base
tree or of an earlier patch of the series, or creates a symbolic link that points outside
the tree. Reported but still applied: binary patches (nothing to review in them).
git refuses most of these itself ("beyond a symbolic link"), but only half-way through a
series and with a message that does not say why; checking first gives a clear reason.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass

from reviewbot.diff import split_raw
from reviewbot.results import SafetyIssue

SYMLINK_MODE = "120000"
GITLINK_MODE = "160000"

_DIFF_GIT = re.compile(r'^diff --git (?P<a>"(?:[^"\\]|\\.)*"|\S+) (?P<b>"(?:[^"\\]|\\.)*"|\S+)$')
_HEADER = re.compile(
    r"^(?P<kind>--- |\+\+\+ |rename from |rename to |copy from |copy to )(?P<path>.*)$"
)
_MODE = re.compile(r"^(?:new file mode|new mode|deleted file mode|old mode) (?P<mode>\d{6})$")
_ESCAPES = {"a": "\a", "b": "\b", "t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r",
            '"': '"', "\\": "\\"}


def unquote(name: str) -> str:
    """git's C-style quoting of unusual path names ("a/tab\\there", octal bytes)."""
    if not (len(name) >= 2 and name[0] == '"' and name[-1] == '"'):
        return name
    body, out, i = name[1:-1], bytearray(), 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if nxt in "01234567" and re.match(r"[0-7]{3}", body[i + 1:i + 4]):
                out.append(int(body[i + 1:i + 4], 8))
                i += 4
                continue
            out += _ESCAPES.get(nxt, nxt).encode()
            i += 2
            continue
        out += ch.encode()
        i += 1
    return out.decode("utf-8", errors="replace")


def _strip_p1(name: str) -> str | None:
    name = unquote(name.split("\t")[0].rstrip())
    if name == "/dev/null":
        return None
    # `git am` applies with -p1: the first component (a/, b/, or anything) is dropped.
    return name.split("/", 1)[1] if "/" in name else name


def path_problem(path: str) -> tuple[str, str] | None:
    """(kind, message) when ``path`` may not be written by a patch, else None."""
    if "\0" in path or not path.strip():
        return "outside-tree", f"invalid path {path!r}"
    if path.startswith("/"):
        return "outside-tree", f"absolute path {path!r} writes outside the tree"
    parts = path.split("/")
    if ".." in parts:
        return "outside-tree", f"path {path!r} climbs out of the tree with '..'"
    for part in parts:
        # ".GIT", ".git." and ".git " all reach the git directory on some file systems.
        if part.lower().rstrip(". ") == ".git":
            return "git-dir", f"path {path!r} writes into the git directory (.git)"
    return None


@dataclass
class _FileHeader:
    paths: list[str]
    new_mode: str | None = None
    new_path: str | None = None
    symlink_target: str | None = None


def _split_files(diff: str) -> list[tuple[_FileHeader, list[str]]]:
    """Per-file (header, body lines) of a diff, from the raw split of :mod:`reviewbot.diff`
    (which follows hunk line counts): the paths, the new mode and the new path come from
    git's own header lines, which the diff model does not keep."""
    files: list[tuple[_FileHeader, list[str]]] = []
    for raw in split_raw(diff):
        head = _FileHeader([])
        for _, line in raw.header:
            m = _DIFF_GIT.match(line)
            if m:
                for key in ("a", "b"):
                    p = _strip_p1(m.group(key))
                    if p is not None:
                        head.paths.append(p)
                continue
            h = _HEADER.match(line)
            if h:
                kind, name = h.group("kind"), h.group("path")
                p = _strip_p1(name) if kind in ("--- ", "+++ ") else unquote(name)
                if p is not None:
                    head.paths.append(p)
                    if kind in ("+++ ", "rename to ", "copy to "):
                        head.new_path = p
                continue
            mm = _MODE.match(line)
            if mm and not line.startswith(("deleted", "old")):
                head.new_mode = mm.group("mode")
        files.append((head, [line for _, line in raw.body]))
    return files


def check_patch(
    index: int,
    diff: str,
    is_symlink_in_base: Callable[[str], bool],
    created_symlinks: set[str],
) -> list[SafetyIssue]:
    """Check one patch's diff; ``created_symlinks`` collects links added by the series.

    Args:
        index: the patch's number, for messages.
        diff: the unified diff text of the mail.
        is_symlink_in_base: True when a path is a symbolic link in the base commit.
        created_symlinks: links made by earlier patches (updated with this patch's).
    """
    issues: list[SafetyIssue] = []
    for head, body in _split_files(diff):
        if any(ln.startswith("GIT binary patch") or
               (ln.startswith("Binary files ") and ln.endswith(" differ")) for ln in body):
            issues.append(SafetyIssue(index, "binary", head.new_path or _first(head),
                                      f"binary patch for {head.new_path or _first(head)}: "
                                      "applied, but nothing in it can be reviewed"))
        for path in dict.fromkeys(head.paths):
            problem = path_problem(path)
            if problem:
                issues.append(SafetyIssue(index, problem[0], path, problem[1]))
                continue
            link = _through_link(path, is_symlink_in_base, created_symlinks)
            if link:
                issues.append(SafetyIssue(
                    index, "symlink", path,
                    f"path {path!r} goes through the symbolic link {link!r}"))
        if head.new_mode == GITLINK_MODE:
            issues.append(SafetyIssue(index, "submodule", _first(head),
                                      f"{_first(head)!r}: submodule links are refused"))
        if head.new_mode == SYMLINK_MODE and head.new_path:
            target = next((ln[1:] for ln in body if ln.startswith("+") and
                           not ln.startswith("+++")), "")
            where = posixpath.normpath(posixpath.join(posixpath.dirname(head.new_path), target))
            if target.startswith("/") or where == ".." or where.startswith("../"):
                issues.append(SafetyIssue(
                    index, "symlink", head.new_path,
                    f"{head.new_path!r} becomes a symbolic link to {target!r}, "
                    "outside the tree"))
            created_symlinks.add(head.new_path)
    return issues


def _first(head: _FileHeader) -> str:
    return head.paths[0] if head.paths else "?"


def _through_link(
    path: str, is_symlink_in_base: Callable[[str], bool], created: set[str]
) -> str | None:
    """The symbolic link that a write to ``path`` would follow (a parent directory)."""
    parts = path.split("/")
    for i in range(1, len(parts)):
        prefix = "/".join(parts[:i])
        if prefix in created or is_symlink_in_base(prefix):
            return prefix
    return None
