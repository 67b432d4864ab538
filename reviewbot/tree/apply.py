"""Apply the patches of one series on one base with ``git am --3way`` semantics.

One ``git am --3way`` session gets the whole series as an mboxrd (exactly what a maintainer
runs by hand, so the cost is the same), and its output is cut at each ``Applying:`` line to
give every patch its own result:

- applied: a commit was made (ids from ``git rev-list base..HEAD``, in order);
- already-present: git said "No changes -- Patch already applied." (git 2.39 goes on);
- conflict: the session stopped at this patch; the conflicted files come from the index
  (3-way) or from git's "patch failed: FILE:LINE" lines (no 3-way possible), and the failed
  hunks are those whose pre-image is not in the file as it was before this patch;
- skipped: after a conflict, or a slot with no patch or no diff.

Commits use the mail's author and date and a fixed committer with
``--committer-date-is-author-date``, so the same series on the same base gives the same
commit ids on every machine.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

from reviewbot.diff import parse_diff
from reviewbot.errors import BadInputError
from reviewbot.gitcmd import git, git_dir, git_ok
from reviewbot.results import (
    ALREADY_PRESENT,
    APPLIED,
    CONFLICT,
    REFUSED,
    SKIPPED,
    Conflict,
    PatchResult,
)

_ALREADY = "No changes -- Patch already applied."
_PATCH_FAILED = re.compile(r"^error: patch failed: (?P<file>.+):(?P<line>\d+)$", re.M)
_NOT_IN_INDEX = re.compile(r"^error: (?P<file>.+): (?:does not exist in index|"
                           r"already exists in (?:index|working directory))$", re.M)
_LACKING = re.compile(r"^error: sha1 information is lacking or useless \((?P<file>.+)\)\.$",
                      re.M)
_CONFLICT_IN = re.compile(r"^CONFLICT \([^)]*\): .*? in (?P<file>\S+)$", re.M)
_FROM_LINE = re.compile(rb"^(>*From )", re.M)


@dataclass(frozen=True)
class PatchItem:
    """What the apply step needs of one slot: its number, mail bytes and diff text."""

    index: int
    mail: bytes | None  # None: the slot is empty (patch never arrived) or carries no diff
    diff: str | None
    subject: str = ""
    message_id: str = ""
    skip_reason: str = ""


@dataclass
class ApplyRun:
    """The result of one ``git am`` session on one base."""

    results: list[PatchResult]
    output: str  # git am's full output (stdout + stderr)
    seconds: float
    head: str  # HEAD after the session (base when nothing applied)

    @property
    def ok(self) -> bool:
        return not any(r.status in (CONFLICT, REFUSED) for r in self.results)

    @property
    def n_applied(self) -> int:
        return sum(r.status in (APPLIED, ALREADY_PRESENT) for r in self.results)

    def first_failure(self) -> PatchResult | None:
        return next((r for r in self.results if r.status == CONFLICT), None)


def to_mboxrd(mails: list[bytes]) -> bytes:
    """Join mails into an mboxrd: one "From " separator each, body "From " lines quoted."""
    out = bytearray()
    for mail in mails:
        lines = mail.replace(b"\r\n", b"\n")
        if lines.startswith(b"From "):
            sep, _, rest = lines.partition(b"\n")
        else:
            sep, rest = b"From reviewbot Mon Sep 17 00:00:00 2001", lines
        out += sep + b"\n" + _FROM_LINE.sub(rb">\1", rest)
        if not out.endswith(b"\n"):
            out += b"\n"
        out += b"\n"
    return bytes(out)


def apply_series(worktree: Path, base_commit: str, items: list[PatchItem],
                 timeout_s: float = 1800) -> ApplyRun:
    """Run one ``git am --3way`` session on a worktree already reset to ``base_commit``.

    The worktree is left with the applied commits on HEAD (on success) or back at the base
    (``git am --quit`` and ``reset --hard`` after a conflict), never with an am session in
    progress.
    """
    start = time.monotonic()
    results = {it.index: PatchResult(it.index, SKIPPED, message=it.skip_reason or
                                     "no patch in this slot", subject=it.subject,
                                     message_id=it.message_id) for it in items}
    present = [it for it in items if it.mail is not None]
    if not present:
        return ApplyRun(list(results.values()), "", 0.0, base_commit)
    res = git(["am", "--3way", "--committer-date-is-author-date", "--patch-format=mboxrd"],
              cwd=worktree, input_bytes=to_mboxrd([it.mail for it in present if it.mail]),
              timeout=timeout_s)
    output = (res.stdout + ("\n" if res.stdout and res.stderr else "") + res.stderr).strip()
    segments = _segments(res.stdout)
    head = git_ok(["rev-parse", "HEAD"], cwd=worktree).strip()
    commits = git_ok(["rev-list", "--reverse", f"{base_commit}..HEAD"], cwd=worktree).split()
    commit_iter = iter(commits)
    stopped_at = None if res.ok else _current_mail(worktree, len(segments))
    unmerged: list[str] = []
    if stopped_at is not None:
        # Read the conflict from the index, then leave the am session with HEAD on the last
        # applied patch, so the failed one can be checked against exactly what it met.
        unmerged = git(["diff", "--name-only", "--diff-filter=U"], cwd=worktree).stdout.split()
        git(["am", "--quit"], cwd=worktree)
        git_ok(["reset", "-q", "--hard", "HEAD"], cwd=worktree)
    for number, item in enumerate(present, start=1):
        r = results[item.index]
        if stopped_at is not None and number > stopped_at:
            first = present[stopped_at - 1].index
            r.status, r.message = SKIPPED, f"not tried: patch {first} did not apply"
            continue
        seg = segments[number - 1] if number - 1 < len(segments) else ""
        if stopped_at == number:
            check = _apply_check(worktree, item.diff or "")
            r.status = CONFLICT
            r.message = _conflict_message(seg, res.stderr + "\n" + check, res.timed_out)
            r.conflicts = _conflicts(worktree, item.diff or "", unmerged,
                                     seg + "\n" + res.stderr + "\n" + check)
        elif _ALREADY in seg:
            r.status, r.message = ALREADY_PRESENT, _ALREADY
        else:
            r.status, r.commit, r.message = APPLIED, next(commit_iter, None), ""
    if stopped_at is not None:
        if (git_dir(worktree) / "rebase-apply").exists():
            git_ok(["am", "--quit"], cwd=worktree)
        git_ok(["reset", "-q", "--hard", base_commit], cwd=worktree)
        head = base_commit
    ordered = [results[it.index] for it in items]
    return ApplyRun(ordered, output, round(time.monotonic() - start, 3), head)


def reverse_applies(worktree: Path, base_commit: str, diffs: list[str],
                    timeout_s: float = 300) -> bool:
    """True when the whole series is already in the worktree's base: each patch, last
    first, reverse-applies on what the previous reversals left (a series whose later
    patches rework an earlier one's lines reverses only in this order). The worktree is put
    back at ``base_commit`` (``--index``, so that files a reversal creates are removed by
    the reset)."""
    if not diffs:
        return False
    try:
        for diff in reversed(diffs):
            res = git(["apply", "--reverse", "--index", "-"], cwd=worktree,
                      input_bytes=diff.encode("utf-8", errors="surrogateescape"),
                      timeout=timeout_s)
            if not res.ok:
                return False
        return True
    finally:
        git_ok(["reset", "-q", "--hard", base_commit], cwd=worktree)


def _segments(stdout: str) -> list[str]:
    """git am's stdout cut at each "Applying: " line (one segment per mail processed)."""
    parts = re.split(r"^(?=Applying: )", stdout, flags=re.M)
    return [p for p in parts if p.startswith("Applying: ")]


def _current_mail(worktree: Path, processed: int) -> int:
    """1-based number of the mail git am stopped at (rebase-apply/next)."""
    try:
        return int((git_dir(worktree) / "rebase-apply" / "next").read_text().strip())
    except (OSError, ValueError):
        return max(processed, 1)  # killed by the timeout before writing state


_GIT_HINTS = ("hint:", "Applying: ", "When you have resolved", "If you prefer to skip",
              "To restore the original branch", "To record the empty patch", "Checking patch ")


def _apply_check(worktree: Path, diff: str) -> str:
    """git apply's own verdict on one patch at HEAD ("error: patch failed: FILE:LINE")."""
    if not diff:
        return ""
    res = git(["apply", "--check", "--verbose", "-"], cwd=worktree,
              input_bytes=diff.encode("utf-8", errors="surrogateescape"), timeout=300)
    return "" if res.ok else res.stderr


def _conflict_message(segment: str, stderr: str, timed_out: bool) -> str:
    """git's words about the failed patch, without its "what to do next" instructions."""
    if timed_out:
        return "git am timed out"
    lines: list[str] = []
    skipping = False
    for ln in (segment + "\n" + stderr).splitlines():
        # git apply -v quotes the context it could not find after "while searching for:";
        # the hunk list in "conflicts" says the same in fewer lines.
        if ln.startswith("error: while searching for:"):
            skipping = True
            continue
        if skipping and not ln.startswith("error: "):
            continue
        skipping = False
        if ln.strip() and not ln.startswith(_GIT_HINTS):
            lines.append(ln)
    return "\n".join(dict.fromkeys(lines))


def _conflicts(
    worktree: Path, diff: str, unmerged: list[str], text: str
) -> list[Conflict]:
    """Files git could not patch, each with the hunks whose pre-image is not in the file."""
    files = list(dict.fromkeys(
        unmerged
        + [m.group("file") for m in _CONFLICT_IN.finditer(text)]
        + [m.group("file") for m in _LACKING.finditer(text)]
        + [m.group("file") for m in _PATCH_FAILED.finditer(text)]
        + [m.group("file") for m in _NOT_IN_INDEX.finditer(text)]
    ))
    try:
        parsed = {f.path: f for f in parse_diff(diff, source="patch")} if diff else {}
    except BadInputError:
        parsed = {}
    out: list[Conflict] = []
    for name in files:
        fd = parsed.get(name)
        before = git(["show", f"HEAD:{name}"], cwd=worktree)
        hunks: list[str] = []
        if fd is not None:
            text_lines = before.stdout.splitlines() if before.ok else []
            for h in fd.hunks:
                pre = [ln.text for ln in h.lines if ln.kind in (" ", "-")]
                if not _contains(text_lines, pre):
                    hunks.append(f"@@ -{h.old_start},{h.old_len} +{h.new_start},{h.new_len} @@"
                                 + (f" {h.section}" if h.section else ""))
        lacking = {m.group("file") for m in _LACKING.finditer(text)}
        if name in unmerged:
            reason = "content conflict (3-way merge)"
        elif name in lacking:
            reason = ("patch does not apply, and no 3-way merge: its pre-image blob is "
                      "not in this tree")
        else:
            reason = "patch does not apply"
        if not before.ok and fd is not None and not fd.is_new:
            reason = "file does not exist in the base"
        out.append(Conflict(name, tuple(hunks), reason))
    return out


def _contains(haystack: list[str], needle: list[str]) -> bool:
    """True when ``needle`` occurs as consecutive lines of ``haystack`` (git apply, no fuzz)."""
    if not needle:
        return True
    first, n = needle[0], len(needle)
    return any(haystack[i:i + n] == needle
               for i in range(len(haystack) - n + 1) if haystack[i] == first)
