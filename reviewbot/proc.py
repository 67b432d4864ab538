"""The one subprocess helper: explicit cwd and env, a timeout, never ``os.chdir``."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcResult:
    argv: tuple[str, ...]
    returncode: int  # -1 when the process was killed by the timeout
    stdout: str
    stderr: str
    timed_out: bool = False
    stopped: str = ""  # why ``watch`` stopped it (the process group was killed)

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out and not self.stopped

    def excerpt(self, lines: int = 20) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return "\n".join(text[-lines:])


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = 600,
    input_bytes: bytes | None = None,
    watch: Callable[[], str | None] | None = None,
    watch_every_s: float = 5.0,
) -> ProcResult:
    """Run a command and capture its output; on timeout kill its whole process group.

    Args:
        argv: the command; never passed through a shell.
        cwd: working directory of the child.
        env: complete environment of the child (None: inherit ours).
        timeout: seconds before the process group is killed.
        input_bytes: bytes written to the child's stdin.
        watch: called every ``watch_every_s`` while the command runs (progress lines, a
            disk-space floor); a non-empty answer kills the process group and is the
            result's ``stopped``.
    Returns:
        ProcResult with decoded output (undecodable bytes replaced).
    """
    args = tuple(str(a) for a in argv)
    proc = subprocess.Popen(
        args,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.PIPE if input_bytes is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # so that a timeout kills grandchildren (make, cc1) too
    )
    try:
        if watch is None:
            out, err = proc.communicate(input=input_bytes, timeout=timeout)
            return ProcResult(args, proc.returncode, _text(out), _text(err))
        deadline = None if timeout is None else time.monotonic() + timeout
        data = input_bytes
        while True:
            step = watch_every_s if deadline is None else \
                max(0.01, min(watch_every_s, deadline - time.monotonic()))
            try:
                out, err = proc.communicate(input=data, timeout=step)
                return ProcResult(args, proc.returncode, _text(out), _text(err))
            except subprocess.TimeoutExpired:
                data = None  # communicate() keeps what it read and wrote so far
                if deadline is not None and time.monotonic() >= deadline:
                    raise
            reason = watch()
            if reason:
                _kill_group(proc)
                out, err = proc.communicate()
                return ProcResult(args, -1, _text(out), _text(err), stopped=reason)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        out, err = proc.communicate()
        return ProcResult(args, -1, _text(out), _text(err), timed_out=True)
    except BaseException:
        _kill_group(proc)  # Ctrl-C: never leave children behind
        proc.wait()
        raise


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")
