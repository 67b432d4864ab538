"""kmemleak reports as findings: a leaked object allocated in code the series touches.

The guest of a debug kernel scans for leaks after the suite (reviewbot/boot/guest/init.sh)
and each "unreferenced object" record is a splat of kind ``kmemleak`` (boot/console.py),
compared base against patched by the fingerprint of its allocation site. A record the base
runs did not have is a finding only when a function of its backtrace (after the
allocator's own frames) is defined in a file the series touches: kmemleak has false
positives (an object whose only pointer is stored in a form it does not scan, one still on
its way through RCU), and a leak allocated elsewhere is not the series' doing.

The backtrace names functions, not files (the guest kernel has no debug info), so the
touched files of the patched tree are searched for the definitions of those functions. A
function defined by a macro (``SYSCALL_DEFINE3(...)``) is not found.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reviewbot.boot.console import leak_frames
from reviewbot.model import Finding
from reviewbot.results import SplatSummary

SOURCE_SUFFIXES = (".c", ".h")


def definition_line(source: str, function: str) -> int | None:
    """The 1-based line where ``source`` defines ``function``, or None.

    A definition in kernel style: the name at the start of a line or after the return type
    on the same line, its parameter list (which may span lines), then ``{`` rather than
    ``;`` (a prototype) - "static void css_release(struct percpu_ref *ref)\\n{".
    """
    pattern = re.compile(
        rf"^(?:[A-Za-z_][\w \t*]*[\s*])?(?P<name>{re.escape(function)})\s*\([^;{{}}]*\)\s*(?:__\w+\s*)*\{{",
        re.M,
    )
    match = pattern.search(source)
    return source.count("\n", 0, match.start("name")) + 1 if match else None


@dataclass(frozen=True)
class LeakSite:
    file: str
    line: int
    function: str


@dataclass
class LeakSites:
    """The series' touched files and a reader of their patched text (None: no such file)."""

    touched: Sequence[str]
    read: Callable[[str], str | None]

    def site(self, frames: Sequence[str]) -> LeakSite | None:
        """The first backtrace function defined in a touched source file."""
        sources = {path: self.read(path) for path in self.touched if path.endswith(SOURCE_SUFFIXES)}
        for function in frames:
            for path, text in sources.items():
                if text is None:
                    continue
                line = definition_line(text, function)
                if line is not None:
                    return LeakSite(path, line, function)
        return None

    def findings(self, new_leaks: Sequence[SplatSummary]) -> list[Finding]:
        """One finding per kmemleak record (new on the patched kernel) whose backtrace runs
        through a touched file."""
        out = []
        for leak in new_leaks:
            lines = leak.excerpt.splitlines()
            frames = leak_frames(lines)
            site = self.site(frames)
            if site is None:
                continue
            backtrace = [line.strip() for line in lines
                         if line.strip().startswith(("unreferenced object", "comm ", "backtrace"))
                         or any(f"{fn}+0x" in line for fn in frames)]
            out.append(Finding(
                rule="boot-kmemleak",
                severity="error",
                # kmemleak is a conservative scanner: an object reachable only through a
                # pointer it cannot see is reported too.
                confidence="medium",
                file=site.file,
                line=site.line,
                function=site.function,
                message=(f"{leak.title}: allocated through {site.function}() in {site.file}, which "
                         f"this series touches, and never freed; no base run reported it"
                         + (f" ({leak.count} objects)" if leak.count > 1 else "")),
                fingerprint=hashlib.sha256(
                    f"boot-kmemleak|{site.file}|{leak.fingerprint}".encode()).hexdigest()[:16],
                evidence=tuple(backtrace[:12]),
                category="boot",
            ))
        return out
