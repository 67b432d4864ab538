"""Progress output (reviewbot.progress): a redrawn bar on a terminal, plain lines elsewhere,
phase lines with a heartbeat for long steps."""

from __future__ import annotations

import io
import time

import pytest

from reviewbot.progress import Progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_a_bar_redrawn_in_place() -> None:
    out = _Tty()
    bar = Progress(out, prefix="scan: ")
    assert bar.bar
    bar.start(200, "messages")
    bar.advance(100, 3, 1)
    assert out.getvalue().startswith("\r[###############")
    assert " 50.0% 100 messages, 3 series, 1 new findings" in out.getvalue()
    bar.finish()
    assert out.getvalue().endswith("\r\033[K")
    assert "\n" not in out.getvalue()


def test_a_pipe_gets_plain_lines_at_most_every_interval() -> None:
    out = io.StringIO()
    lines = Progress(out, prefix="scan: ", every_s=0.0)
    assert not lines.bar
    lines.start(None, "messages")
    lines.advance(10, 1, 0)
    lines.advance(20, 2, 0)
    assert out.getvalue().splitlines() == [
        "scan: reading messages",
        "scan: 10 messages, 1 series reviewed, 0 new findings",
        "scan: 20 messages, 2 series reviewed, 0 new findings",
    ]
    slow_out = io.StringIO()
    slow = Progress(slow_out, prefix="scan: ", every_s=3600)
    slow.start(5, "messages")
    slow.advance(1, 0, 0)
    assert slow_out.getvalue().splitlines() == ["scan: 5 messages to read"]


def test_a_long_phase_keeps_a_heartbeat_and_says_how_long_it_took() -> None:
    out = io.StringIO()
    shown = Progress(out, prefix="[boot] ", heartbeat_s=0.05)
    with shown.phase("base: building"):
        time.sleep(0.2)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("[boot] [") and lines[0].endswith("base: building ...")
    assert any("still base: building" in ln for ln in lines[1:-1])
    assert lines[-1].split("] ", 2)[-1].startswith("base: building: done in 0.")


def test_silent_progress_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    quiet = Progress.silent()
    quiet.say("x")
    with quiet.phase("y"):
        pass
    quiet.start(3, "messages")
    quiet.advance(3, 1, 0)
    quiet.finish()
    assert capsys.readouterr() == ("", "")
