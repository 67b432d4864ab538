"""The one lock: an ``flock`` on a file that names its holder.

Every lock reviewbot takes between processes is one of these: a worktree slot, the
repository's ``git worktree`` administration, a kernel build directory, a scan's state. The
kernel drops an ``flock`` when its holder dies, even by SIGKILL, so a lock is never stuck.
While held the file reads ``pid host start-time``; a clean release empties it. A new holder
that finds the file still naming someone knows that holder died mid-work
(:attr:`FileLock.stale_pid`), which is what the worktree uses to repair a half-done
``git am``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reviewbot.errors import InfraError


@dataclass
class FileLock:
    """An exclusive lock held on ``path``; ``stale_pid`` is set when its last holder died."""

    path: Path
    fd: int
    stale_pid: int | None = None
    stale_host: str | None = None
    released: bool = field(default=False)

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        try:
            os.ftruncate(self.fd, 0)  # an empty file means "released cleanly"
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)

    def __enter__(self) -> FileLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def try_lock(path: Path) -> FileLock | None:
    """Take the lock at ``path`` without waiting; None when another process holds it.

    Raises:
        InfraError: the lock file cannot be created.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise InfraError(f"cannot create the lock file {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return None
        raise
    previous = os.pread(fd, 256, 0).decode("utf-8", errors="replace").split()
    lock = FileLock(path, fd)
    if previous:
        # We hold the flock, yet the file still names a holder: that holder died (killed,
        # power loss) without releasing, so what it guarded may be half-way through a change.
        try:
            lock.stale_pid = int(previous[0])
        except ValueError:
            lock.stale_pid = -1
        lock.stale_host = previous[1] if len(previous) > 1 else ""
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()} {socket.gethostname()} {int(time.time())}\n".encode(), 0)
    return lock


def wait_lock(path: Path, timeout_s: float, *, poll_s: float = 0.2, what: str = "",
              on_wait: Callable[[str], None] | None = None) -> FileLock:
    """Take the lock at ``path``, waiting up to ``timeout_s`` for its holder.

    Args:
        what: names the lock in the time-out message ("worktree", "build directory").
        on_wait: told once, with the holder, when the lock is not free at first.
    Raises:
        InfraError: still held after ``timeout_s`` (names the holder).
    """
    deadline = time.monotonic() + timeout_s
    told = False
    while True:
        lock = try_lock(path)
        if lock is not None:
            return lock
        if time.monotonic() >= deadline:
            raise InfraError(f"{what or 'lock'} {path} still held after {timeout_s:.0f}s "
                             f"({holder_of(path) or 'holder unknown'})")
        if on_wait is not None and not told:
            on_wait(holder_of(path))
            told = True
        time.sleep(poll_s)


def holder_of(path: Path) -> str:
    """Who holds a lock file, as written in it (for messages and `tree status`)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").split()
    except OSError:
        return ""
    return f"pid {text[0]} on {text[1]}" if len(text) >= 2 else ""


def is_locked(path: Path) -> bool:
    """True when some live process holds the lock file (probe without keeping it)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False
