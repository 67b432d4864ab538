"""The one progress type: what a person watching a long step sees on stderr.

A :class:`Progress` prints phase lines with the time since it started (``say``), keeps a
heartbeat during a long phase (``phase``: "still building (120s)" every ``heartbeat_s``, so
a 15-minute kernel build is never a silent terminal), and counts items (``start``,
``advance``, ``finish``): a bar redrawn in place on a terminal, a plain line at most every
``every_s`` seconds elsewhere (cron mail, journald). ``tree init``, the boot stage and the
scanner all use it; :meth:`Progress.silent` is the one that prints nothing.
"""

from __future__ import annotations

import io
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    def __init__(self, out: TextIO | None = None, *, prefix: str = "",
                 heartbeat_s: float = 10.0, every_s: float = 10.0, bar: bool | None = None
                 ) -> None:
        self.out = out if out is not None else sys.stderr
        self.prefix = prefix  # "[boot] ", "scan: ": whose line this is
        self.heartbeat_s = heartbeat_s
        self.every_s = every_s
        self.bar = self.out.isatty() if bar is None else bar
        self.began = time.monotonic()
        self.total: int | None = None
        self.what = ""
        self.last = 0.0 if self.bar else time.monotonic()

    @classmethod
    def silent(cls) -> Progress:
        sink: TextIO = _Discard()  # type: ignore[assignment]  # a TextIOBase that keeps nothing
        return cls(sink, heartbeat_s=3600.0, every_s=3600.0, bar=False)

    # -- phases ---------------------------------------------------------------------------

    def say(self, text: str) -> None:
        print(f"{self.prefix}[{time.monotonic() - self.began:6.1f}s] {text}", file=self.out,
              flush=True)

    @contextmanager
    def phase(self, text: str) -> Iterator[None]:
        """``text ...``, a heartbeat while the block runs, then ``text: done in Ns``."""
        self.say(f"{text} ...")
        t0 = time.monotonic()
        done = threading.Event()

        def beat() -> None:
            while not done.wait(self.heartbeat_s):
                self.say(f"  still {text} ({time.monotonic() - t0:.0f}s)")

        ticker = threading.Thread(target=beat, daemon=True)
        ticker.start()
        try:
            yield
        finally:
            done.set()
            ticker.join()
        self.say(f"{text}: done in {time.monotonic() - t0:.1f}s")

    # -- counting -------------------------------------------------------------------------

    def start(self, total: int | None, what: str) -> None:
        self.total, self.what = total, what
        if not self.bar:
            known = f"{total} {what} to read" if total is not None else f"reading {what}"
            print(f"{self.prefix}{known}", file=self.out, flush=True)

    def advance(self, done: int, series: int, findings: int) -> None:
        now = time.monotonic()
        if now - self.last < (0.1 if self.bar else self.every_s):
            return
        self.last = now
        if self.bar:
            tail = f"{done} {self.what}, {series} series, {findings} new findings"
            if self.total:
                frac = min(1.0, done / self.total)
                line = f"\r[{'#' * int(frac * 30):<30}] {frac * 100:5.1f}% {tail}"
            else:
                line = f"\r{tail}"
            self.out.write(line[:120])
            self.out.flush()
            return
        of = f"/{self.total}" if self.total else ""
        print(f"{self.prefix}{done}{of} {self.what}, {series} series reviewed, "
              f"{findings} new findings", file=self.out, flush=True)

    def finish(self) -> None:
        if self.bar:
            self.last = 0.0
            self.out.write("\r\033[K")
            self.out.flush()


class _Discard(io.TextIOBase):
    """Where a silent Progress writes: nothing is kept (a scan may run for hours)."""

    def write(self, text: str) -> int:
        return len(text)

    def isatty(self) -> bool:
        return False
