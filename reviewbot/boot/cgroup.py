"""A cgroup around one sandboxed build: a ceiling on processes and on memory in total.

bubblewrap takes the network, the file system and the other processes away from a build,
and ``prlimit`` bounds each process's address space and file size; neither stops a patch
whose Makefile fork-bombs (RLIMIT_NPROC is not enforced for root, and the build runs as the
invoking user) or whose many processes together take the machine's memory. A cgroup does:
``pids.max`` and the memory limit of a group made for this one command, which the command
enters before it executes bubblewrap, and which is emptied (SIGKILL) and removed after it.

Where: the cgroup v2 unified hierarchy when it has the ``pids`` controller, else the v1
``pids`` and ``memory`` hierarchies under /sys/fs/cgroup (this machine has v1 pids and
memory writable by root). Where neither is writable (a container without delegation),
:func:`build_group` returns None and the build runs with prlimit and the timeout only
(:meth:`reviewbot.boot.kbuild.Sandbox.containment` says which applies).
"""

from __future__ import annotations

import itertools
import logging
import os
import shlex
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
_counter = itertools.count()


@dataclass
class BuildGroup:
    """One cgroup (v2) or a pair of them (v1 pids + memory) for one command."""

    dirs: list[Path]
    description: str
    created: list[Path] = field(default_factory=list)

    def enter_command(self, argv: list[str]) -> list[str]:
        """``argv`` prefixed by a shell that moves itself into the group, then execs it."""
        moves = "; ".join(f"echo $$ > {shlex.quote(str(d / 'cgroup.procs'))}" for d in self.dirs)
        return ["sh", "-c", f'{moves} && exec "$@"', "reviewbot-build", *argv]

    def pids(self) -> set[int]:
        out: set[int] = set()
        for d in self.dirs:
            try:
                out |= {int(x) for x in (d / "cgroup.procs").read_text().split()}
            except (OSError, ValueError):
                continue
        return out

    def close(self, timeout_s: float = 10.0, grace_s: float = 2.0) -> list[str]:
        """Kill whatever is still inside (a fork bomb's leftovers, a daemon the Makefile
        started), then remove the group. Returns "name[pid]" of each process killed.

        Processes get ``grace_s`` to leave by themselves first: the sandbox's own helper
        (bubblewrap's namespace init) is still exiting when the command's status arrives,
        and killing it is not news worth a warning on every build."""
        names: dict[int, str] = {}
        settle = time.monotonic() + grace_s
        while self.pids() and time.monotonic() < settle:
            time.sleep(0.05)
        deadline = time.monotonic() + timeout_s
        while (left := self.pids()) and time.monotonic() < deadline:
            for pid in left:
                names.setdefault(pid, _comm(pid))
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    names.pop(pid, None)
            time.sleep(0.05)
        for d in reversed(self.created):
            try:
                d.rmdir()
            except OSError as exc:  # still busy: it is empty soon, the next close removes it
                log.warning("could not remove %s: %s", d, exc)
        return [f"{name}[{pid}]" for pid, name in sorted(names.items())]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() or "?"
    except OSError:
        return "?"


def _make(path: Path, settings: dict[str, str]) -> bool:
    try:
        path.mkdir()
    except FileExistsError:
        pass
    except OSError:
        return False
    try:
        for name, value in settings.items():
            (path / name).write_text(value)
    except OSError:
        try:
            path.rmdir()
        except OSError:
            pass
        return False
    return True


def build_group(max_pids: int, memory_mb: int, root: Path = CGROUP_ROOT) -> BuildGroup | None:
    """A fresh group for one build with ``pids.max`` and the memory limit set (none when
    ``memory_mb`` is 0), or None when this machine does not let us make one. The caller
    closes it (:meth:`BuildGroup.close`)."""
    name = f"reviewbot-build-{os.getpid()}-{next(_counter)}"
    memory = str(memory_mb * 1024 * 1024)
    unified = root / "unified" if (root / "unified" / "cgroup.controllers").exists() else root
    controllers = (unified / "cgroup.controllers")
    if controllers.exists() and "pids" in controllers.read_text().split():
        path = unified / name
        wanted = {"pids.max": str(max_pids)}
        if memory_mb > 0 and "memory" in controllers.read_text().split():
            wanted["memory.max"] = memory
        if _make(path, wanted):
            return BuildGroup([path], f"cgroup v2 {path}: pids.max={max_pids}"
                              + (f", memory.max={memory_mb} MiB" if "memory.max" in wanted
                                 else ""), [path])
    pids_dir, mem_dir = root / "pids" / name, root / "memory" / name
    if (root / "pids" / "cgroup.procs").exists() and _make(pids_dir, {"pids.max": str(max_pids)}):
        group = BuildGroup([pids_dir], f"cgroup v1 {pids_dir}: pids.max={max_pids}", [pids_dir])
        if memory_mb > 0 and (root / "memory" / "cgroup.procs").exists() and _make(
                mem_dir, {"memory.limit_in_bytes": memory}):
            group.dirs.append(mem_dir)
            group.created.append(mem_dir)
            group.description += f"; {mem_dir}: memory.limit_in_bytes={memory_mb} MiB"
        return group
    return None


def cgroups_writable(root: Path = CGROUP_ROOT) -> bool:
    """Can this process make build groups here? (Makes one and removes it.)"""
    group = build_group(8, 0, root)
    if group is None:
        return False
    group.close()
    return True
