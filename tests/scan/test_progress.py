"""Progress output: a redrawn bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from reviewbot.commands.scan import BarProgress, LineProgress, make_progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_a_bar_redrawn_in_place() -> None:
    out = _Tty()
    bar = make_progress(out)
    assert isinstance(bar, BarProgress)
    bar.start(200, "messages")
    bar.advance(100, 3, 1)
    assert out.getvalue().startswith("\r[###############")
    assert " 50.0% 100 messages, 3 series, 1 new findings" in out.getvalue()
    bar.finish()
    assert out.getvalue().endswith("\r\033[K")
    assert "\n" not in out.getvalue()


def test_a_pipe_gets_plain_lines_at_most_every_interval() -> None:
    out = io.StringIO()
    lines = make_progress(out)
    assert isinstance(lines, LineProgress)
    lines.every_s = 0.0
    lines.start(None, "messages")
    lines.advance(10, 1, 0)
    lines.advance(20, 2, 0)
    assert out.getvalue().splitlines() == [
        "scan: reading messages",
        "scan: 10 messages, 1 series reviewed, 0 new findings",
        "scan: 20 messages, 2 series reviewed, 0 new findings",
    ]
    slow = LineProgress(io.StringIO(), every_s=3600)
    slow.start(5, "messages")
    slow.advance(1, 0, 0)
    assert slow.out.getvalue().splitlines() == ["scan: 5 messages to read"]  # type: ignore[attr-defined]
