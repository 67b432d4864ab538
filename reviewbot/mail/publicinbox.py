"""Read a public-inbox v2 inbox (or one epoch of it) as a stream of raw messages.

Layout (public-inbox-v2-format(5)): ``INBOX/git/0.git``, ``INBOX/git/1.git``... are bare
git repositories ("epochs"), each commit adds, replaces or removes one message stored as the
file ``m`` at the root of the tree; lore.kernel.org mirrors are exactly this. A commit that
removes ``m`` is a deletion (public-inbox-learn/purge) and yields nothing.

Reading is streamed: ``git log --reverse --format=%H`` lists the commits after the last one
scanned and one long-lived ``git cat-file --batch`` returns each blob, so memory does not
depend on the size of the archive.
"""

from __future__ import annotations

import logging
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from reviewbot import proc
from reviewbot.errors import BadInputError, InfraError
from reviewbot.gitcmd import cat_file_answer, git_argv, git_env

log = logging.getLogger(__name__)

_EPOCH_NAME = re.compile(r"^(\d+)\.git$")
_GIT_TIMEOUT_S = 600.0
# Requests written to `git cat-file --batch` before reading the answers: one round trip
# per message costs a context switch each (measured: 2 s of 16 s for a year of cgroups@).
# 64 requests (~2.6 KB) always fit in the pipe, so git never blocks on a full stdin while
# we have not started reading its stdout.
_BATCH = 64
# git maps pack files in windows of up to 1 GiB (core.packedGitWindowSize on 64-bit) and
# keeps up to 8 GiB mapped: reading a whole lore epoch would leave cat-file's resident
# size as large as the pack. Small windows keep it flat; they cost nothing measurable
# when reading commits in order.
# Measured (bench/scan.py, 3x cgroups-2020, 27 MB pack): git RSS 95 MB by default, 26 MB
# with these limits, the same as for the 1x archive.
_PACK_LIMITS = ("-c", "core.packedGitWindowSize=1m", "-c", "core.packedGitLimit=8m",
                "-c", "core.deltaBaseCacheLimit=4m")


@dataclass(frozen=True)
class Epoch:
    """One bare git repository of an inbox; ``number`` is N of ``git/N.git`` (0 if alone)."""

    path: Path
    number: int

    @property
    def name(self) -> str:
        return f"{self.number}.git"


@dataclass(frozen=True)
class InboxMessage:
    """A message as stored: the raw bytes and where they came from."""

    epoch: Epoch
    commit: str
    raw: bytes

    @property
    def locator(self) -> str:
        return f"{self.epoch.path}@{self.commit}"


def is_bare_epoch(path: Path) -> bool:
    """A bare git directory (HEAD, objects/, refs/) - what one lore epoch clone is."""
    return (path / "HEAD").is_file() and (path / "objects").is_dir() and (path / "refs").is_dir()


def is_public_inbox(path: Path) -> bool:
    """True for a v2 inbox folder (``git/N.git`` inside) or a single bare epoch."""
    return path.is_dir() and (bool(_epoch_dirs(path / "git")) or is_bare_epoch(path))


def find_epochs(source: Path) -> list[Epoch]:
    """The epochs of an inbox folder in order, or the bare epoch itself.

    Raises:
        BadInputError: SOURCE is neither a v2 inbox nor a bare git directory.
    """
    epochs = _epoch_dirs(source / "git")
    if epochs:
        return epochs
    if is_bare_epoch(source):
        match = _EPOCH_NAME.match(source.name)
        return [Epoch(source, int(match.group(1)) if match else 0)]
    raise BadInputError(
        "not a public-inbox v2 inbox (no git/N.git inside) nor a bare git epoch",
        source=str(source),
    )


def _epoch_dirs(git_dir: Path) -> list[Epoch]:
    if not git_dir.is_dir():
        return []
    found = []
    for child in git_dir.iterdir():
        match = _EPOCH_NAME.match(child.name)
        if match and is_bare_epoch(child):
            found.append(Epoch(child, int(match.group(1))))
    # Numeric order: "10.git" comes after "9.git", not after "1.git".
    return sorted(found, key=lambda e: e.number)


def _git(epoch: Epoch, *args: str) -> list[str]:
    return git_argv([*_PACK_LIMITS, f"--git-dir={epoch.path}", *args])


def _run(epoch: Epoch, *args: str, timeout: float) -> proc.ProcResult:
    return proc.run(_git(epoch, *args), env=git_env(), timeout=timeout)


def head_commit(epoch: Epoch) -> str | None:
    """The newest commit of the epoch, None for an empty repository."""
    res = _run(epoch, "rev-parse", "--verify", "-q", "HEAD^{commit}", timeout=60)
    if res.timed_out:
        raise InfraError(f"git rev-parse timed out in {epoch.path}", output=res.stderr)
    return res.stdout.strip() or None if res.ok else None


def resolve(epoch: Epoch, ref: str) -> str:
    """Resolve a user-given commit-ish (``--since``) in this epoch.

    Raises:
        BadInputError: the ref does not name a commit there.
    """
    res = _run(epoch, "rev-parse", "--verify", "-q", f"{ref}^{{commit}}", timeout=60)
    if not res.ok or not res.stdout.strip():
        raise BadInputError(f"--since {ref!r} is not a commit of {epoch.path}")
    return res.stdout.strip()


def is_ancestor(epoch: Epoch, older: str, newer: str) -> bool:
    """False when history was rewritten (public-inbox-purge) or the commit is gone."""
    res = _run(epoch, "merge-base", "--is-ancestor", older, newer, timeout=120)
    return res.returncode == 0


def count_commits(epoch: Epoch, after: str | None, head: str) -> int:
    rev = f"{after}..{head}" if after else head
    res = _run(epoch, "rev-list", "--count", rev, timeout=_GIT_TIMEOUT_S)
    if not res.ok:
        raise InfraError(f"git rev-list failed in {epoch.path}", output=res.stderr)
    return int(res.stdout.strip() or 0)


def iter_messages(epoch: Epoch, after: str | None, head: str) -> Iterator[InboxMessage]:
    """Yield the messages of commits ``after..head`` oldest first (all when ``after`` is None).

    Two long-lived git processes, read line by line: ``proc.run`` captures the whole output,
    which is what streaming must avoid for an epoch of several hundred thousand commits.

    Raises:
        InfraError: git failed or died mid-stream.
    """
    rev = f"{after}..{head}" if after else head
    log_cmd = _git(epoch, "log", "--reverse", "--format=%H", rev)
    cat_cmd = _git(epoch, "cat-file", "--batch")
    with subprocess.Popen(
        log_cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
        env=git_env(),
    ) as lister, subprocess.Popen(
        cat_cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=git_env(),
    ) as cat:
        assert lister.stdout is not None and cat.stdin is not None and cat.stdout is not None
        try:
            batch: list[str] = []
            for line in lister.stdout:
                commit = line.decode("ascii").strip()
                if commit:
                    batch.append(commit)
                if len(batch) >= _BATCH:
                    yield from _cat_batch(epoch, batch, cat.stdin, cat.stdout)
                    batch = []
            yield from _cat_batch(epoch, batch, cat.stdin, cat.stdout)
        finally:
            # Close our ends first so that an early stop (consumer broke the loop) ends both.
            cat.stdin.close()
            if lister.poll() is None:
                lister.kill()
        err = lister.stderr.read().decode(errors="replace") if lister.stderr else ""
        if lister.wait() not in (0, -9):
            raise InfraError(f"git log failed in {epoch.path}", command=log_cmd, output=err)


def _cat_batch(epoch: Epoch, commits: list[str], stdin: IO[bytes],
               stdout: IO[bytes]) -> Iterator[InboxMessage]:
    if not commits:
        return
    try:
        stdin.write(b"".join(f"{c}:m\n".encode() for c in commits))
        stdin.flush()
    except BrokenPipeError as exc:
        raise InfraError(f"git cat-file died in {epoch.path}") from exc
    for commit in commits:
        raw = _read_answer(stdout, f"{commit}:m")
        if raw is not None:  # None: a deletion commit, `m` was removed (spam purge)
            yield InboxMessage(epoch, commit, raw)


def read_blob_batch(epoch: Epoch, specs: list[str]) -> dict[str, bytes]:
    """Read several ``<rev>:<path>`` objects in one git call (pending threads on resume)."""
    out: dict[str, bytes] = {}
    if not specs:
        return out
    with subprocess.Popen(
        _git(epoch, "cat-file", "--batch"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=git_env(),
    ) as cat:
        assert cat.stdin is not None and cat.stdout is not None
        for spec in specs:
            raw = _cat_blob(cat.stdin, cat.stdout, spec)
            if raw is not None:
                out[spec] = raw
        cat.stdin.close()
    return out


def _cat_blob(stdin: IO[bytes], stdout: IO[bytes], spec: str) -> bytes | None:
    """One request/answer of ``git cat-file --batch``: ``<oid> <type> <size>\\n<data>\\n``."""
    try:
        stdin.write(spec.encode() + b"\n")
        stdin.flush()
    except BrokenPipeError as exc:
        raise InfraError(f"git cat-file died while reading {spec}") from exc
    return _read_answer(stdout, spec)


def _read_answer(stdout: IO[bytes], spec: str) -> bytes | None:
    answer = cat_file_answer(stdout, spec)
    if answer is None or answer[0] != b"blob":
        return None  # `m` is missing, or a tree or similar: not a public-inbox message
    return answer[1]
