"""Where a scan reads mail from: a public-inbox v2 inbox (new commits of every epoch since
the remembered ones) or a folder of mbox/.eml/.patch files (new and grown files only).

A reader yields raw mails in order and, when the scan has consumed them, the positions to
remember (:mod:`reviewbot.scan.state` stores them per source).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from reviewbot.errors import BadInputError
from reviewbot.mail import publicinbox
from reviewbot.mail.read import iter_path
from reviewbot.model import InputError


@dataclass(frozen=True)
class RawMail:
    data: bytes
    source: str
    position: int


class Reader(Protocol):
    kind: str
    total: int | None

    def positions(self) -> dict[str, Any]: ...
    def __iter__(self) -> Iterator[RawMail]: ...


class InboxReader:
    """Commits after the remembered one, epoch by epoch, oldest first."""

    kind = "public-inbox"
    total: int | None

    def __init__(self, path: Path, known: dict[str, Any], since: str | None,
                 warnings: list[str]) -> None:
        self.epochs = publicinbox.find_epochs(path)
        self.after: dict[str, str | None] = {}
        self.heads: dict[str, str | None] = {}
        self._positions = {k: v for k, v in known.items() if k.startswith("epoch:")}
        start_epoch = self._since_epoch(since) if since else None
        for epoch in self.epochs:
            key = f"epoch:{epoch.number}"
            head = publicinbox.head_commit(epoch)
            self.heads[key] = head
            after = known.get(key)
            if since is not None and start_epoch is not None:
                if epoch.number < start_epoch[0]:
                    after = head  # older epochs: nothing before --since is wanted
                elif epoch.number == start_epoch[0]:
                    after = start_epoch[1]
                else:
                    after = None
            if after and head and after != head and not publicinbox.is_ancestor(epoch, after, head):
                # public-inbox-purge/-edit rewrite history: the old position is gone.
                warnings.append(
                    f"{epoch.path}: history was rewritten since commit {after[:12]}; "
                    "rescanning this epoch (reviewed series are not reviewed again)"
                )
                after = None
            self.after[key] = after
        self.total = sum(
            publicinbox.count_commits(e, self.after[f"epoch:{e.number}"], h)
            for e in self.epochs
            if (h := self.heads[f"epoch:{e.number}"]) and h != self.after[f"epoch:{e.number}"]
        )

    def _since_epoch(self, since: str) -> tuple[int, str]:
        for epoch in self.epochs:
            try:
                return epoch.number, publicinbox.resolve(epoch, since)
            except BadInputError:
                continue
        raise BadInputError(f"--since {since!r} is not a commit of any epoch")

    def positions(self) -> dict[str, Any]:
        return dict(self._positions)

    def __iter__(self) -> Iterator[RawMail]:
        for epoch in self.epochs:
            key = f"epoch:{epoch.number}"
            head, after = self.heads[key], self.after[key]
            if head is None or head == after:
                continue
            for n, item in enumerate(publicinbox.iter_messages(epoch, after, head)):
                yield RawMail(item.raw, f"{epoch.name}@{item.commit[:12]}", n)
                self._positions[key] = item.commit
            self._positions[key] = head


class FolderReader:
    """Files of a folder (or one file); a grown mbox continues after its last message."""

    kind = "mail"
    total: int | None

    def __init__(self, path: Path, known: dict[str, Any]) -> None:
        self.root = path
        self.files = [path] if path.is_file() else _mail_files(path)
        if not self.files:
            raise BadInputError("folder holds no mail files", source=str(path))
        self.known = known
        self._positions = {k: v for k, v in known.items() if k.startswith("file:")}
        self.total = None

    def positions(self) -> dict[str, Any]:
        return dict(self._positions)

    def __iter__(self) -> Iterator[RawMail]:
        for file in self.files:
            rel = file.name if file == self.root else str(file.relative_to(self.root))
            key = f"file:{rel}"
            try:
                st = file.stat()
            except OSError:
                continue  # removed while we scan
            old = self.known.get(key)
            skip = 0
            if isinstance(old, dict):
                if old.get("size") == st.st_size and old.get("mtime_ns") == st.st_mtime_ns:
                    continue  # unchanged since the last scan
                if st.st_size > int(old.get("size", 0)):
                    skip = int(old.get("messages", 0))  # appended to: continue after those
            count = 0
            for raw in iter_path(file):
                if isinstance(raw, InputError):
                    yield RawMail(b"", f"{raw.source}: {raw.error}", raw.position)
                    continue
                count += 1
                if count <= skip:
                    continue
                yield RawMail(raw.data, raw.source, raw.position)
            self._positions[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                    "messages": count}


def _mail_files(path: Path) -> list[Path]:
    # Same selection as `reviewbot series FOLDER`: hidden files (.git, swap files) skipped.
    return sorted(
        p for p in path.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
    )


def open_source(path: Path, known: dict[str, Any], since: str | None,
                warnings: list[str]) -> Reader:
    """Pick the reader for SOURCE.

    Raises:
        BadInputError: SOURCE does not exist or holds no mail.
    """
    if not path.exists():
        raise BadInputError("no such file or directory", source=str(path))
    if publicinbox.is_public_inbox(path):
        return InboxReader(path, known, since, warnings)
    if since is not None:
        raise BadInputError("--since REF needs a public-inbox source (a git commit)",
                            source=str(path))
    return FolderReader(path, known)
