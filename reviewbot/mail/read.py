"""Read raw messages from every input kind: one RFC 822 file, mbox (mboxrd or mboxo),
maildir, a folder of .eml/.patch/.mbox files, stdin, and gzip-compressed versions of each.

Messages are yielded one at a time so that a year of a list never sits in memory at once.
"""

from __future__ import annotations

import gzip
import io
import mmap
import re
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from reviewbot.errors import BadInputError
from reviewbot.model import InputError

# An mbox separator: "From " at the start of a line, after a blank line or at the start of
# the file. git format-patch writes "From <sha> Mon Sep 17 00:00:00 2001"; public-inbox
# writes "From mboxrd@z Thu Jan  1 00:00:00 1970".
_FROM_LINE_RE = re.compile(rb"^From \S*")
# mboxrd quotes every ">*From " line with one more ">"; mboxo only "From " itself. Undoing
# one ">" of ">From " is right in both; ">>From " is only unquoted in mboxrd.
_MBOXRD_QUOTED_RE = re.compile(rb"^>(>*From )", re.MULTILINE)
_MBOXO_QUOTED_RE = re.compile(rb"^>(From )", re.MULTILINE)
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class RawMessage:
    data: bytes  # the message; only its first HEAD_KEPT bytes when ``dropped``
    position: int  # 0-based position within its source
    source: str  # file name (or "<stdin>")
    dropped: int = 0  # bytes not kept: the message was over the reader's max_bytes

    @property
    def size(self) -> int:
        return len(self.data) + self.dropped


def _open(path: Path) -> BinaryIO:
    raw = path.open("rb")
    if raw.read(2) == _GZIP_MAGIC:
        raw.seek(0)
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    raw.seek(0)
    return raw


def _looks_like_mbox(head: bytes) -> bool:
    return bool(_FROM_LINE_RE.match(head))


_CHUNK = 1 << 20
# Of a message over the reader's limit only its head is kept, to name it in the error.
HEAD_KEPT = 64 * 1024
# While skipping an oversized message, the bytes after its last newline (at most this
# many) are kept: a separator may have started there.
_TAIL_KEPT = 64 * 1024


def _find_separator(buf: bytes, start: int) -> tuple[int, int] | None:
    """(end of previous message, start of next) for the next "From " line that follows an
    empty line (LF or CRLF). One bytes.find pass (memchr-fast): both separators end in
    "\nFrom ", and the bytes before it tell which one it is, if any."""
    pos = buf.find(b"\nFrom ", start + 1)
    while pos >= 0:
        if buf[pos - 1] == 0x0A:  # "\n\nFrom "
            end, skip = pos - 1, 2
            break
        if pos - 3 >= start and buf[pos - 3 : pos] == b"\r\n\r":  # "\r\n\r\nFrom "
            end, skip = pos - 3, 4
            break
        pos = buf.find(b"\nFrom ", pos + 1)
    else:
        return None
    eol = buf.find(b"\n", end + skip)
    if eol < 0:
        return None  # separator line not complete in this chunk yet
    return end, eol + 1


def mbox_ranges(path: Path, parts: int) -> list[tuple[int, int]] | None:
    """Cut a plain (uncompressed) mbox file into about ``parts`` byte ranges for parallel
    parsing, or None when the file is not one.

    Each range but the first starts at a separator's "From " line and each ends where a
    sequential read ends the message before it, so that :func:`iter_stream` over a range
    yields exactly the messages a sequential read yields there (positions counted from
    the range's start). Only the cut points are read (mmap).
    """
    with path.open("rb") as f:
        head = f.read(64)
        if head[:2] == _GZIP_MAGIC or not _looks_like_mbox(head):
            return None
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            size = len(mm)
            ranges = []
            begin = 0
            for i in range(1, parts):
                cut = _find_separator(mm, max(begin, size * i // parts))  # type: ignore[arg-type]
                if cut is None:
                    break
                end, content = cut
                ranges.append((begin, end))
                begin = mm.rfind(b"\n", end, content - 1) + 1  # the "From " line
            ranges.append((begin, size))
    return ranges


class _Slice(io.RawIOBase):
    """``length`` bytes of a file from its current offset, read as a stream."""

    def __init__(self, file: BinaryIO, length: int) -> None:
        self.file, self.left = file, length

    def read(self, size: int | None = -1) -> bytes:
        want = self.left if size is None or size < 0 else min(size, self.left)
        data = self.file.read(want)
        self.left -= len(data)
        return data


def iter_range(
    path: Path, begin: int, end: int, mboxrd: bool, *, max_bytes: int | None = None
) -> Iterator[RawMessage]:
    """The messages of one range from :func:`mbox_ranges` (streamed: a range that is one
    huge message is not read into memory at once)."""
    with path.open("rb") as f:
        f.seek(begin)
        yield from iter_stream(_Slice(f, end - begin), str(path),  # type: ignore[arg-type]
                               mboxrd=mboxrd, max_bytes=max_bytes)


def is_mboxrd(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(13) == b"From mboxrd@z"


def iter_stream(
    stream: BinaryIO, source: str, *, mboxrd: bool | None = None, max_bytes: int | None = None
) -> Iterator[RawMessage]:
    """Yield the messages of one stream: an mbox when it starts with "From ", else one mail.

    The mbox is read in 1 MiB chunks and split on separator lines with one regex search
    per message; iterating line by line through gzip was the slowest part of reading a
    list archive (1.7 s of 4 s for the 2020 cgroups year). ``mboxrd`` says how ">From "
    is quoted when the stream is part of a file (else the first line tells).

    A message over ``max_bytes`` is not held in memory: only its first HEAD_KEPT bytes
    are yielded, with ``dropped`` saying how many followed (a gzip bomb or a file of one
    endless message is read in bounded memory).
    """
    buf = stream.read(_CHUNK)
    if not _looks_like_mbox(buf[:64]):
        yield from _one_mail(buf, stream, source, max_bytes)
        return
    if mboxrd is None:
        mboxrd = buf.startswith(b"From mboxrd@z")
    unquote = _MBOXRD_QUOTED_RE if mboxrd else _MBOXO_QUOTED_RE
    position = 0
    start = buf.find(b"\n") + 1  # past the first separator line
    eof = False
    head: bytes | None = None  # the kept head of an oversized message being skipped
    dropped = 0
    while True:
        match = _find_separator(buf, start)
        if match is None and not eof:
            if max_bytes is not None and len(buf) - start > max_bytes:
                # Over the limit: keep the head, then only the bytes from the last newline
                # on (a separator may have begun there) and count the rest.
                if head is None:
                    head = buf[start : start + HEAD_KEPT]
                    dropped -= len(head)
                keep = max(buf.rfind(b"\n", start) - 3, len(buf) - _TAIL_KEPT, start)
                dropped += keep - start
                start = keep
            more = stream.read(_CHUNK)
            if more:
                buf = buf[start:] + more
                start = 0
                continue
            eof = True
            continue
        end = match[0] if match else len(buf)
        if match is not None and buf[end] == 0x0A:
            end += 1  # keep the message's own last newline: no copy to append one below
        if head is not None or (max_bytes is not None and end - start > max_bytes):
            if head is None:  # over the limit, but found within one read
                head = buf[start : start + HEAD_KEPT]
                dropped -= len(head)
            yield RawMessage(head, position, source, dropped + end - start)
            position += 1
            head, dropped = None, 0
            if match is None:
                return
            start = match[1]
            continue
        data = buf[start:end]
        if b">From " in data:  # every line the unquoting changes holds one
            data = unquote.sub(rb"\1", data)
        if data and not data.isspace():  # not strip(): that copies every message
            yield RawMessage(data if data.endswith(b"\n") else data + b"\n", position, source)
            position += 1
        if match is None:
            return
        start = match[1]


def _one_mail(buf: bytes, stream: BinaryIO, source: str, max_bytes: int | None) -> Iterator[RawMessage]:
    """A stream that is one mail (not an mbox), at most ``max_bytes`` of it held."""
    if max_bytes is None:
        data = buf + stream.read()
        dropped = 0
    else:
        data = buf
        while len(data) <= max_bytes and (more := stream.read(max_bytes + 1 - len(data))):
            data += more
        dropped = 0
        if len(data) > max_bytes:
            head = data[:HEAD_KEPT]
            dropped = len(data) - len(head)
            data = head
            while more := stream.read(_CHUNK):
                dropped += len(more)
    if dropped or (data and not data.isspace()):  # not strip(): that copies every message
        yield RawMessage(data, 0, source, dropped)


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def _folder_files(path: Path) -> list[Path]:
    if _is_maildir(path):
        return sorted(
            [p for sub in ("new", "cur") for p in (path / sub).iterdir() if p.is_file()],
            key=lambda p: p.name,
        )
    # A folder of mails or patches; hidden files (.git, editor swap files) are skipped.
    return sorted(
        p for p in path.rglob("*") if p.is_file() and not any(
            part.startswith(".") for part in p.relative_to(path).parts
        )
    )


def iter_path(path: Path | str, *, max_bytes: int | None = None) -> Iterator[RawMessage | InputError]:
    """Yield raw messages from a path (file, mbox, maildir, folder) or "-" for stdin.

    A file that cannot be read (truncated gzip, permissions) yields an InputError naming it
    and the rest of a folder is still read. A message over ``max_bytes`` is yielded as its
    head only (see :func:`iter_stream`).

    Raises:
        BadInputError: the path itself does not exist.
    """
    if str(path) == "-":
        stdin = sys.stdin.buffer
        head = stdin.peek(2)[:2] if hasattr(stdin, "peek") else b""
        stream: BinaryIO = gzip.GzipFile(fileobj=stdin) if head == _GZIP_MAGIC else stdin  # type: ignore[assignment]
        yield from iter_stream(stream, "<stdin>", max_bytes=max_bytes)
        return
    path = Path(path)
    if not path.exists():
        raise BadInputError("no such file or directory", source=str(path))
    files = _folder_files(path) if path.is_dir() else [path]
    if path.is_dir() and not files:
        raise BadInputError("folder holds no mail files", source=str(path))
    for file in files:
        position = 0
        try:
            with _open(file) as stream:
                for raw in iter_stream(stream, str(file), max_bytes=max_bytes):
                    position = raw.position + 1
                    yield raw
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            yield InputError(str(file), position, None, f"cannot read: {exc}")
