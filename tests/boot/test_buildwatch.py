"""Progress and the disk floor while a build runs (reviewbot/boot/buildwatch.py), and the
``watch`` hook of proc.run that drives them."""

from __future__ import annotations

import time
from pathlib import Path

from reviewbot import proc
from reviewbot.boot.buildwatch import OBJECTS_FILE, BuildWatch, expected_objects


def _log(n: int) -> str:
    return "".join(f"  CC      mm/f{i}.o\n" for i in range(n)) + "  LD      vmlinux.o\n"


def test_progress_counts_objects_against_a_complete_build(tmp_path: Path) -> None:
    root = tmp_path / "build"
    other = root / "612" / "base"
    other.mkdir(parents=True)
    (other / "reviewbot-build.log").write_text(_log(1999))  # a cold build: 2,000 objects
    out = root / "61" / "base"
    out.mkdir(parents=True)
    assert expected_objects(out) == 2000
    log = out / "reviewbot-build.log"
    said: list[str] = []
    watch = BuildWatch(log, out, min_free_mb=0, say=said.append, label="base")
    watch.start -= 60  # a minute in
    watch.last_said -= 60
    log.write_text(_log(499) + "  CC      mm/half-writ")  # the last line is still being written
    assert watch() is None
    assert said == ["base: 500/2000 objects (25%), 60 s so far, about 3 min left"]
    assert watch() is None and len(said) == 1  # at most a line every ten seconds
    watch.finish(ok=True)
    assert not (out / OBJECTS_FILE).exists()  # 500 of 2,000: not a complete build


def test_only_a_complete_build_sets_the_count(tmp_path: Path) -> None:
    out = tmp_path / "x" / "base"
    out.mkdir(parents=True)
    (out / OBJECTS_FILE).write_text("2000\n")
    log = out / "reviewbot-build.log"
    watch = BuildWatch(log, out, min_free_mb=0, say=None)
    log.write_text(_log(2))  # an incremental rebuild of three objects
    watch.finish(ok=True)
    assert (out / OBJECTS_FILE).read_text() == "2000\n"
    watch = BuildWatch(log, out, min_free_mb=0, say=None)
    log.write_text(_log(2099))
    watch.finish(ok=True)
    assert (out / OBJECTS_FILE).read_text() == "2100\n"


def test_without_a_reference_progress_still_counts(tmp_path: Path) -> None:
    out = tmp_path / "b" / "base"
    out.mkdir(parents=True)
    watch = BuildWatch(out / "reviewbot-build.log", out, min_free_mb=0, say=None, label="base")
    (out / "reviewbot-build.log").write_text(_log(9))
    watch()
    assert watch.line().startswith("base: 10 objects compiled, ")


def test_a_build_that_fills_the_disk_is_stopped(tmp_path: Path) -> None:
    watch = BuildWatch(tmp_path / "log", tmp_path, min_free_mb=1 << 40, say=None)
    start = time.monotonic()
    res = proc.run(["sleep", "30"], timeout=60, watch=watch, watch_every_s=0.1)
    assert time.monotonic() - start < 10
    assert not res.ok and res.stopped.startswith(f"stopped: the disk under {tmp_path} has ")
    assert "build.min_free_mb" in res.stopped


def test_watch_sees_the_command_finish_with_its_output() -> None:
    calls: list[float] = []

    def watch() -> str | None:
        calls.append(time.monotonic())
        return None

    res = proc.run(["sh", "-c", "echo start; sleep 0.5; echo end"], timeout=30, watch=watch,
                   watch_every_s=0.1)
    assert res.ok and res.stdout == "start\nend\n" and calls
    res = proc.run(["sleep", "30"], timeout=0.5, watch=watch, watch_every_s=0.1)
    assert res.timed_out and not res.ok


def test_the_console_is_followed_while_the_guest_runs(tmp_path: Path) -> None:
    from reviewbot.boot.vm import ConsoleFollower

    console = tmp_path / "console.log"
    said: list[str] = []
    follow = ConsoleFollower(console, said.append)
    assert follow() is None and said == []  # no file yet: QEMU has not started
    console.write_text("[    1.0] Linux version 6.12.118\r\n# reviewbot-run: memcg_charge\n"
                       "# start anon_charge\nok 1 anon_charge\nnot ok 2 v2_mig")
    follow()
    assert said == ["  running memcg_charge", "    memcg_charge: ok 1 anon_charge"]
    with console.open("a") as fh:
        fh.write("ration # FAIL\n# reviewbot-exit: memcg_charge 1\n")
    follow()
    assert said[-1] == "    memcg_charge: not ok 2 v2_migration # FAIL"


def test_a_quiet_program_gets_a_still_running_line_every_interval(tmp_path: Path) -> None:
    from reviewbot.boot.vm import ConsoleFollower

    console = tmp_path / "console.log"
    now = [100.0]
    said: list[str] = []
    follow = ConsoleFollower(console, said.append, quiet_s=30, clock=lambda: now[0])
    console.write_text("# reviewbot-run: test_memcontrol\nok 1 test_memcg_subtree_control\n")
    follow()
    now[0] += 29
    follow()
    assert said == ["  running test_memcontrol", "    test_memcontrol: ok 1 test_memcg_subtree_control"]
    now[0] += 1  # 30 s without a result: a test that hangs until its limit
    follow()
    assert said[-1] == "  still running test_memcontrol (30s; last result 30s ago)"
    now[0] += 10
    follow()
    assert len(said) == 3  # at most one such line per interval
    now[0] += 20
    follow()
    assert said[-1] == "  still running test_memcontrol (60s; last result 60s ago)"
    with console.open("a") as fh:
        fh.write("not ok 2 test_memcg_min\n")
    now[0] += 5
    follow()
    assert said[-1] == "    test_memcontrol: not ok 2 test_memcg_min" and len(said) == 5


def test_an_incremental_rebuild_gives_no_time_estimate(tmp_path: Path) -> None:
    out = tmp_path / "build" / "61" / "patched"
    out.mkdir(parents=True)
    (out / OBJECTS_FILE).write_text("1107\n")
    (out / "vmlinux").write_bytes(b"")  # a kernel from the previous series
    assert expected_objects(out) == 1107
    log = out / "reviewbot-build.log"
    said: list[str] = []
    watch = BuildWatch(log, out, min_free_mb=0, say=said.append, label="patched")
    watch.start -= 10
    watch.last_said -= 10
    log.write_text(_log(0))
    assert watch() is None
    assert said == ["patched: 1 objects recompiled (a complete build has 1107), 10 s so far"]
