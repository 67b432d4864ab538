"""Run one piece of work under a wall-clock and a memory limit, in a forked child.

The stages that run outside tools already bound themselves (``git am`` has
``tree.am_timeout_s``, the build ``build.timeout_s`` and ``build.memory_limit_mb``, QEMU
``vm.boot_timeout_s``). The rules stage is our own Python over hostile text: one huge
function or a pathological shape must not keep a worker (or the CLI) busy for hours or
take the machine's memory. So it runs in a forked child with ``RLIMIT_AS`` set, and the
parent waits at most the time limit, then kills it.

Fork, not spawn: the child inherits the loaded rules, tree-sitter and caches (a few ms
instead of a second of imports). A child never returns into the caller's code: it sends
its answer (pickled) through a pipe and leaves with ``os._exit``.
"""

from __future__ import annotations

import os
import pickle
import resource
import selectors
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from reviewbot.errors import BadInputError, InfraError, ReviewbotError


@dataclass(frozen=True)
class Bounded:
    """How a bounded run ended: ``ok`` with ``value``, or ``timeout`` | ``memory`` |
    ``crash`` with a message."""

    status: str
    value: Any = None
    message: str = ""
    seconds: float = 0.0


def _answer(fn: Callable[..., Any], args: tuple[Any, ...], memory_mb: int) -> bytes:
    """In the child: set the memory limit, run, and pickle what happened."""
    if memory_mb > 0:
        limit = memory_mb * 1024 * 1024
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        soft = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    try:
        answer: tuple[str, Any] = ("ok", fn(*args))
    except MemoryError:
        answer = ("memory", "")
    except BadInputError as exc:
        answer = ("bad-input", str(exc))
    except ReviewbotError as exc:
        answer = ("infra", str(exc))
    except Exception:  # the parent reports it like an in-process stage crash
        answer = ("crash", traceback.format_exc(limit=8))
    try:
        return pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:
        return pickle.dumps(("memory", ""))
    except Exception:  # an answer that does not pickle
        return pickle.dumps(("crash", traceback.format_exc(limit=8)))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def run_bounded(fn: Callable[..., Any], *args: Any, time_s: float, memory_mb: int) -> Bounded:
    """``fn(*args)`` in a forked child limited to ``time_s`` seconds and ``memory_mb`` of
    address space. A limit of 0 turns that limit off; both 0 runs ``fn`` in this process.

    A plain ``os.fork`` (not multiprocessing): the scan's pool workers are daemonic
    processes, which multiprocessing forbids to have children.

    Raises:
        BadInputError, InfraError: what ``fn`` raised of those (by message).
    """
    start = time.monotonic()
    if time_s <= 0 and memory_mb <= 0:
        return Bounded("ok", fn(*args))
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the caller's code
        code = 0
        try:
            os.close(read_fd)
            _write_all(write_fd, _answer(fn, args, memory_mb))
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    os.close(write_fd)
    chunks: list[bytes] = []
    timed_out = False
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(read_fd, selectors.EVENT_READ)
            while True:
                left = None if time_s <= 0 else time_s - (time.monotonic() - start)
                if left is not None and left <= 0:
                    timed_out = True
                    break
                if not sel.select(left):
                    continue
                chunk = os.read(read_fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
    finally:
        os.close(read_fd)
        if timed_out:
            _kill(pid)
        _, status = os.waitpid(pid, 0)
    seconds = time.monotonic() - start
    if timed_out:
        return Bounded("timeout", message=f"stopped after {time_s:g} s", seconds=seconds)
    try:
        kind, payload = pickle.loads(b"".join(chunks))
    except Exception:
        # No answer: the kernel's OOM killer, or an allocation that failed in C code, ended
        # the child; with a memory limit set that is most likely it.
        what = (f"killed by signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                else f"exit code {os.waitstatus_to_exitcode(status)}")
        return Bounded("memory" if memory_mb > 0 else "crash",
                       message=f"the child ended without an answer ({what})", seconds=seconds)
    if kind == "ok":
        return Bounded("ok", payload, seconds=seconds)
    if kind == "bad-input":
        raise BadInputError(payload)
    if kind == "infra":
        raise InfraError(payload)
    if kind == "memory":
        return Bounded("memory", message=f"over {memory_mb} MiB", seconds=seconds)
    return Bounded("crash", message=str(payload), seconds=seconds)


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
