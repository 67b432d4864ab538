"""reviewbot.lock: the one inter-process lock (worktrees, builds, scans)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from reviewbot.errors import InfraError
from reviewbot.lock import holder_of, is_locked, try_lock, wait_lock

HOLD = """
import sys, time
from pathlib import Path
from reviewbot.lock import try_lock
lock = try_lock(Path(sys.argv[1]))
print("held" if lock else "busy", flush=True)
time.sleep(60)
"""


def _holder(path: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE,
                             text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_a_held_lock_names_its_holder_and_a_waiter_times_out_saying_who(tmp_path: Path) -> None:
    path = tmp_path / "build.lock"
    child = _holder(path)
    try:
        assert is_locked(path) and f"pid {child.pid}" in holder_of(path)
        assert try_lock(path) is None
        told: list[str] = []
        with pytest.raises(InfraError, match=rf"build directory lock .* still held .*pid {child.pid}"):
            wait_lock(path, 0.3, poll_s=0.05, what="build directory lock", on_wait=told.append)
        assert told and f"pid {child.pid}" in told[0]
    finally:
        child.kill()
        child.wait()


def test_the_next_holder_learns_that_the_last_one_was_killed(tmp_path: Path) -> None:
    path = tmp_path / "slot.lock"
    child = _holder(path)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    lock = wait_lock(path, 5)
    assert lock.stale_pid == child.pid
    lock.release()
    again = try_lock(path)  # released cleanly: nothing stale
    assert again is not None and again.stale_pid is None
    again.release()
    assert not is_locked(path)
