"""Watching a kernel build while it runs: progress a person can read, and a disk floor.

A cold kernel build is ten minutes of silence otherwise. kbuild prints one ``  CC`` line
per object into the live log (``O=/reviewbot-build.log``); counting them against the
number the last complete build of the same configuration compiled gives a fraction and,
from the rate so far, the time left. That count is kept in the build folder
(``.reviewbot-objects``) and, for a base that was never built, taken from another base's
build folder (6.1 and 6.12 compile about the same number of objects for our fragment).

The same watcher stops a build whose disk fills: each file is limited by RLIMIT_FSIZE, but
many files could still fill the disk under the build folder; below ``build.min_free_mb``
free the build is killed and reported as such.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

OBJECTS_FILE = ".reviewbot-objects"  # objects the last complete build here compiled
_OBJECT_LINE = re.compile(rb"^\s+(CC|AS|LD|AR|CC \[M\])\s+\S", re.M)
SAY_EVERY_S = 10.0


def count_objects(log_text: bytes) -> int:
    return len(_OBJECT_LINE.findall(log_text))


MIN_COMPLETE = 1000  # a log with fewer objects is an incremental rebuild


def expected_objects(out_dir: Path, log_name: str = "reviewbot-build.log") -> int | None:
    """Objects a complete build compiles: this folder's last full build, else another
    base's (a sibling ``<sha>/base`` under the same build root); from the count kept after
    a build, else from a base's build log when that was a cold build."""
    folders = [out_dir, *sorted(out_dir.parent.parent.glob("*/base"))]
    for folder in folders:
        try:
            return int((folder / OBJECTS_FILE).read_text().strip())
        except (OSError, ValueError):
            pass
    for folder in folders:
        try:
            n = count_objects((folder / log_name).read_bytes())
        except OSError:
            continue
        if n >= MIN_COMPLETE:
            return n
    return None


def record_objects(out_dir: Path, compiled: int, expected: int | None) -> None:
    """Keep the count of a complete build (more than half of what one compiles): an
    incremental rebuild of three files says nothing about a cold one."""
    if expected is None or compiled > expected // 2:
        (out_dir / OBJECTS_FILE).write_text(f"{compiled}\n")


class BuildWatch:
    """The ``watch`` callback of :func:`reviewbot.proc.run` for one ``make``."""

    def __init__(self, log_path: Path, out_dir: Path, min_free_mb: int,
                 say: Callable[[str], None] | None, label: str = "build") -> None:
        self.log_path, self.out_dir, self.min_free_mb = log_path, out_dir, min_free_mb
        self.say, self.label = say, label
        self.expected = expected_objects(out_dir)
        # A directory that holds a kernel already rebuilds only what changed: the count of a
        # complete build is an upper bound there, and a time estimate from it is nonsense
        # ("about 185 min left" after one object of a 7-object rebuild).
        self.incremental = (out_dir / "vmlinux").is_file()
        self.start = time.monotonic()
        self.last_said = self.start
        self.compiled = 0
        self._offset = 0

    def _read(self) -> None:
        try:
            with self.log_path.open("rb") as fh:
                fh.seek(self._offset)
                chunk = fh.read()
        except OSError:
            return
        # Count whole lines only: the last one may be half written.
        end = chunk.rfind(b"\n") + 1
        self.compiled += count_objects(chunk[:end])
        self._offset += end

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        if self.expected and self.compiled and self.incremental:
            return (f"{self.label}: {self.compiled} objects recompiled (a complete build has "
                    f"{self.expected}), {elapsed:.0f} s so far")
        if self.expected and self.compiled:
            share = min(self.compiled / self.expected, 0.99)
            left = elapsed * (1 - share) / share
            return (f"{self.label}: {self.compiled}/{self.expected} objects ({share:.0%}), "
                    f"{elapsed:.0f} s so far, about {left / 60:.0f} min left")
        return f"{self.label}: {self.compiled} objects compiled, {elapsed:.0f} s so far"

    def __call__(self) -> str | None:
        self._read()
        free = shutil.disk_usage(self.out_dir).free // (1024 * 1024)
        if self.min_free_mb and free < self.min_free_mb:
            return (f"stopped: the disk under {self.out_dir} has {free} MiB free, less than "
                    f"build.min_free_mb ({self.min_free_mb})")
        now = time.monotonic()
        if self.say is not None and now - self.last_said >= SAY_EVERY_S:
            self.last_said = now
            self.say(self.line())
        return None

    def finish(self, ok: bool) -> None:
        self._read()
        if ok:
            record_objects(self.out_dir, self.compiled, self.expected)
