"""Read the gcov counters the guest prints on its serial console.

After each program, the guest's init prints every ``.gcda`` file of /sys/kernel/debug/gcov
(the objects the patched build compiled with gcov, reviewbot.boot.coverage) as::

    # reviewbot-gcov: begin PROGRAM /build/mm/memcontrol.gcda MD5
    H4sIAAAAAAAAA+3...   (gzip, then base64, 76 characters a line)
    # reviewbot-gcov: end

The console is hostile ground for binary data: kernel messages interleave with it (their
printk timestamp tells them apart, and the scanner never hands them here), a guest that
crashes cuts a dump short, and a printk can land in the middle of a base64 line. A dump is
kept only when it decodes, stays within the size bounds and matches the MD5 of the raw
file that the guest computed; anything else is recorded as unreadable, never guessed at.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import zlib
from dataclasses import dataclass, field

GCOV_BEGIN = "# reviewbot-gcov: begin "
GCOV_END = "# reviewbot-gcov: end"
# A gcda of one object is tens of kB; memcontrol.c with every counter set is under 200 kB.
MAX_ENCODED = 8 * 1024 * 1024  # base64 characters of one dump
MAX_DECODED = 32 * 1024 * 1024  # bytes of one gcda after gunzip
_BASE64_LINE = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_HEADER = re.compile(r"^(?P<program>[\w.-]+) (?P<path>/\S+\.gcda) (?P<md5>[0-9a-f]{32})$")


@dataclass
class GcovDump:
    """One program's counters of one object: ``data`` is the .gcda file, or None with
    ``problem`` saying why it could not be read."""

    program: str
    path: str  # as the guest saw it: the build directory's path, e.g. /build/mm/memcontrol.gcda
    data: bytes | None
    problem: str = ""


@dataclass
class DumpReader:
    """Line by line: ``begin`` opens a dump, base64 lines fill it, ``end`` closes it."""

    dumps: list[GcovDump] = field(default_factory=list)
    _header: re.Match[str] | None = None
    _chunks: list[str] = field(default_factory=list)
    _size: int = 0
    _problem: str = ""

    @property
    def open(self) -> bool:
        return self._header is not None

    def feed(self, line: str) -> bool:
        """Take a userspace console line; True when it belonged to a dump."""
        if line.startswith(GCOV_BEGIN):
            self.close("the next dump began before this one ended")
            header = _HEADER.match(line[len(GCOV_BEGIN):].strip())
            if header is None:
                return True  # a mangled header: its lines are skipped as stray base64 below
            self._header, self._chunks, self._size, self._problem = header, [], 0, ""
            return True
        if self._header is None:
            return False
        if line.startswith(GCOV_END):
            self._finish()
            return True
        text = line.strip()
        if not _BASE64_LINE.match(text):
            return False  # not ours: the dump continues on the next line
        self._size += len(text)
        if self._size > MAX_ENCODED:
            self._problem = f"more than {MAX_ENCODED} base64 characters"
        elif not self._problem:
            self._chunks.append(text)
        return True

    def close(self, why: str = "the console ended in the middle of it") -> None:
        """End an open dump as unreadable (the guest stopped, or a new one began)."""
        if self._header is not None:
            self._problem = self._problem or why
            self._finish()

    def _finish(self) -> None:
        header = self._header
        assert header is not None
        self._header = None
        program, path = header.group("program"), header.group("path")
        data, problem = None, self._problem
        if not problem:
            data, problem = _decode("".join(self._chunks), header.group("md5"))
        self._chunks = []
        self.dumps.append(GcovDump(program, path, data, problem))


def _decode(text: str, md5: str) -> tuple[bytes | None, str]:
    try:
        packed = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        return None, f"not base64 ({exc})"
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
    try:
        data = inflate.decompress(packed, MAX_DECODED)
    except zlib.error as exc:
        return None, f"not gzip ({exc})"
    if inflate.unconsumed_tail:
        return None, f"larger than {MAX_DECODED} bytes"
    if not inflate.eof:
        return None, "cut short"
    if hashlib.md5(data).hexdigest() != md5:
        return None, "checksum mismatch (a kernel message inside the dump?)"
    return data, ""
