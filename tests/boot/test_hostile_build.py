"""Hostile patches at build time: a Makefile that reaches the network, writes outside its
tree and build folder, fork-bombs, fills the disk or never ends - run by real make inside
the real sandbox (bubblewrap, prlimit, a cgroup where this machine allows one), the way
the build stage runs a patched kernel's Makefile. Each is contained and the next build on
the same machine works."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from reviewbot.boot.cgroup import cgroups_writable
from reviewbot.boot.kbuild import SANDBOX_SRC, Sandbox

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None or shutil.which("make") is None,
                                reason="needs bubblewrap and make (scripts/setup.sh)")

MAKEFILE = """\
ok:
\t@echo built > ok.txt
network:
\tbash -c 'echo hello > /dev/tcp/127.0.0.1/$(PORT)'
outside:
\t-touch $(VICTIM)
\t-touch /src/written-into-the-tree
\t-touch /usr/written-into-usr
\t@echo done > outside.txt
forkbomb:
\tbash -c 'bomb() { bomb | bomb & }; bomb; sleep 30'
disk:
\tdd if=/dev/zero of=big bs=1M count=64
forever:
\tsleep 3600
daemon:
\tsetsid sleep 3600 < /dev/null > /dev/null 2>&1 &
\t@echo started
"""


@pytest.fixture()
def box(tmp_path: Path) -> Sandbox:
    src, build, ccache = tmp_path / "src", tmp_path / "build", tmp_path / "ccache"
    for d in (src, build, ccache):
        d.mkdir()
    (src / "Makefile").write_text(MAKEFILE)
    return Sandbox(src=src, build=build, ccache=ccache, memory_limit_mb=2048, max_pids=64,
                   total_memory_mb=1024, max_file_mb=16)


def make(box: Sandbox, target: str, *extra: str, timeout: float = 60):  # type: ignore[no-untyped-def]
    # cwd is the build folder (the O= directory of a kernel build); the sources read-only
    return box.run(["make", "-f", f"{SANDBOX_SRC}/Makefile", target, *extra],
                   timeout=timeout)


def test_a_clean_build_runs(box: Sandbox) -> None:
    res = make(box, "ok")
    assert res.ok, res.stderr
    assert (box.build / "ok.txt").read_text() == "built\n"


def test_no_network(box: Sandbox) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.5)
        port = server.getsockname()[1]
        res = make(box, "network", f"PORT={port}")
        assert not res.ok  # the sandbox's own loopback has nothing listening
        with pytest.raises(TimeoutError):
            server.accept()  # and nothing reached the host's


def test_no_writes_outside_the_build_folder(box: Sandbox, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    res = make(box, "outside", f"VICTIM={victim}")
    assert res.ok and (box.build / "outside.txt").exists()
    assert not victim.exists()
    assert not (box.src / "written-into-the-tree").exists()
    assert not Path("/usr/written-into-usr").exists()


@pytest.mark.skipif(not cgroups_writable(), reason="no writable cgroup on this machine")
def test_a_fork_bomb_stops_at_the_cgroup_and_leaves_nothing(box: Sandbox) -> None:
    start = time.monotonic()
    res = make(box, "forkbomb", timeout=20)
    assert time.monotonic() - start < 60
    assert "Resource temporarily unavailable" in res.stderr or res.timed_out or not res.ok
    # No survivor: the group was emptied and removed.
    left = subprocess.run(["pgrep", "-f", "bomb"], capture_output=True, text=True).stdout.split()
    assert left == []
    # Only this process's groups: another build (a developer's, a parallel test run) may
    # legitimately be running in its own group.
    mine = list(Path("/sys/fs/cgroup/pids").glob(f"reviewbot-build-{os.getpid()}-*/cgroup.procs"))
    assert all(not p.read_text().strip() for p in mine)
    assert make(box, "ok").ok  # the next build is unaffected


def test_a_file_past_the_size_limit_is_refused(box: Sandbox) -> None:
    res = make(box, "disk")
    assert not res.ok and "File size limit exceeded" in res.stderr  # SIGXFSZ
    assert (box.build / "big").stat().st_size <= 16 * 1024 * 1024


def test_a_build_that_never_ends_is_killed(box: Sandbox) -> None:
    start = time.monotonic()
    res = make(box, "forever", timeout=2)
    assert res.timed_out and time.monotonic() - start < 30
    assert subprocess.run(["pgrep", "-f", "sleep 3600"], capture_output=True).returncode == 1


@pytest.mark.skipif(not cgroups_writable(), reason="no writable cgroup on this machine")
def test_a_daemon_the_makefile_starts_is_killed_with_the_group(box: Sandbox) -> None:
    res = make(box, "daemon")
    assert res.ok
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and subprocess.run(
            ["pgrep", "-f", "sleep 3600"], capture_output=True).returncode == 0:
        time.sleep(0.1)
    assert subprocess.run(["pgrep", "-f", "sleep 3600"], capture_output=True).returncode == 1


@pytest.mark.skipif(not cgroups_writable(), reason="no writable cgroup on this machine")
def test_a_build_that_leaves_nothing_behind_warns_about_nothing(
        box: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    # the sandbox's own helper exits a moment after the build: no warning on every build
    with caplog.at_level(logging.WARNING, logger="reviewbot.boot.kbuild"):
        assert make(box, "ok").ok
    assert not [r for r in caplog.records if "left in the build's cgroup" in r.getMessage()]


def test_containment_says_what_applies(box: Sandbox) -> None:
    text = box.containment()
    assert "bubblewrap" in text and "files up to 16 MiB" in text
    if cgroups_writable():
        assert "pids.max=64" in text and "memory.limit_in_bytes=1024 MiB" in text
    # every group this process made is removed again
    assert not list(Path("/sys/fs/cgroup/pids").glob(f"reviewbot-build-{os.getpid()}-*"))




@pytest.mark.skipif(not cgroups_writable(), reason="no writable cgroup on this machine")
def test_a_group_names_what_it_had_to_kill() -> None:
    from reviewbot.boot.cgroup import build_group

    group = build_group(16, 0)
    assert group is not None
    proc = subprocess.Popen(group.enter_command(["sleep", "3600"]))
    try:
        deadline = time.monotonic() + 10
        while not group.pids() and time.monotonic() < deadline:
            time.sleep(0.05)
        killed = group.close(grace_s=0.2)
    finally:
        proc.kill()
        proc.wait()
    assert killed == [f"sleep[{proc.pid}]"]
