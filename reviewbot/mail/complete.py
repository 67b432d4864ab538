"""Complete a partial series from the list's archive, as b4 does from lore.

Most multi-patch series reach a list only in part: only the patches that touch its files
are Cc'd. Before such a series is reviewed, its thread is fetched from
``fetch.public_inbox_url`` (``{base}/{message-id}/t.mbox.gz``: lore, or a local
public-inbox-httpd), the patches and the cover letter it lacks are added, and the series
says which patches came from the archive (``Series.from_archive``, a warning line). Only
the series that had a message in the input are reviewed: the archive completes them, it
does not add series of its own.

Failures (offline, 404, rate limits, a thread that does not complete the series) are a
warning on the series, which is reviewed as the part that arrived. Each thread is fetched
once per process; after a network failure (no route, DNS, refused) no further fetch is
tried in that process, so an offline machine pays one failure, not one per series. The
service keeps fetched threads (and failures) in its store for ``service.series_wait_s``
(:class:`ThreadCache`), so that no worker fetches a thread twice within that time.
``--offline``, ``fetch.complete: false`` and ``REVIEWBOT_OFFLINE=1`` turn it off.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Protocol

from reviewbot.config import Settings
from reviewbot.errors import BadInputError, InfraError
from reviewbot.mail.series import SeriesSet, assemble, read_messages
from reviewbot.model import InputError, Message, Series, number_ranges

log = logging.getLogger(__name__)

Fetch = Callable[[str, Settings], bytes]
# Parsed messages of the input, read again when the archive added some (the CLI re-reads
# its paths instead of keeping a large input in memory; the service has the mails at hand).
Messages = Callable[[], Iterable[Message | InputError]]


class ThreadCache(Protocol):
    """Where fetched threads outlive the process (the service's store)."""

    def get(self, root: str) -> bytes | str | None:
        """The thread's mbox or the recorded failure, if fetched recently enough."""

    def put(self, root: str, answer: bytes | str) -> None:
        """Record a fetch: the mbox, or why there is none."""


def _default_fetch(message_id: str, settings: Settings) -> bytes:
    from reviewbot.mail.fetch import fetch_thread  # requests, only when a fetch happens

    return fetch_thread(message_id, settings)


def needs_completion(series: Series) -> bool:
    """Patches missing, or no cover letter for a series of several patches."""
    return bool(series.missing) or (series.expected > 1 and series.cover is None)


def offline(settings: Settings, option: bool = False) -> bool:
    return option or not settings.fetch.complete or os.environ.get("REVIEWBOT_OFFLINE") == "1"


class Archive:
    """Threads fetched in this process (or why not), by thread root."""

    def __init__(self, settings: Settings, fetch: Fetch | None = None,
                 cache: ThreadCache | None = None) -> None:
        self.settings = settings
        self.fetch = fetch or _default_fetch
        self.cache = cache
        self.threads: dict[str, bytes | str] = {}
        self.down = ""  # set after a network failure: no more tries in this process
        self.fetches = 0  # requests made (cache hits are not counted)

    def thread(self, root: str) -> bytes | str:
        """The thread's mbox, or the reason there is none."""
        if root in self.threads:
            return self.threads[root]
        if self.cache is not None and (cached := self.cache.get(root)) is not None:
            self.threads[root] = cached
            return cached
        if self.down:
            return f"not tried: {self.down}"
        self.fetches += 1
        try:
            answer: bytes | str = self.fetch(root, self.settings)
        except BadInputError as exc:  # 404: the archive does not have this thread
            answer = str(exc)
        except InfraError as exc:
            answer = f"{exc}: {exc.output.strip()[:200]}" if exc.output else str(exc)
            self.down = f"the archive was unreachable ({answer})"
        self.threads[root] = answer
        if self.cache is not None:
            self.cache.put(root, answer)
        return answer


def _root(series: Series) -> str:
    first = series.cover or next((p.message for p in series.patches), None)
    return first.thread_root if first is not None else series.series_id


def _ids(series: Series) -> set[str]:
    out = {p.message.message_id for p in series.patches}
    if series.cover is not None:
        out.add(series.cover.message_id)
    return out


def complete(found: SeriesSet, messages: Messages, settings: Settings, archive: Archive
             ) -> SeriesSet:
    """``found`` with every partial series completed from the archive where it can be;
    ``messages()`` gives the input's messages again when something was fetched.
    """
    partial = [s for s in found.series if s.latest and needs_completion(s)]
    if not partial:
        return found
    fetched: list[Message] = []
    notes: dict[str, str] = {}
    have = {i for s in found.series for i in _ids(s)}
    with tempfile.TemporaryDirectory(prefix="reviewbot-archive-") as tmp:
        for n, series in enumerate(partial):
            root = _root(series)
            got = archive.thread(root)
            if isinstance(got, str):
                notes[series.series_id] = f"partial: the archive could not complete it ({got})"
                continue
            path = Path(tmp) / f"{n}.mbox"
            path.write_bytes(got)
            new = [m for m in read_messages([path], settings.mail)
                   if isinstance(m, Message) and m.message_id not in have]
            have |= {m.message_id for m in new}
            fetched += new
        if not fetched:
            return _noted(found, notes)
        again = assemble(_chain(messages(), fetched), settings.mail)
    archived = {m.message_id for m in fetched}
    keep: list[Series] = []
    for series in again.series:
        ids = _ids(series)
        if ids and ids <= archived:
            continue  # only in the archive: nothing of it arrived, so nothing to review
        from_archive = tuple(p.index for p in series.patches if p.message.message_id in archived)
        cover = series.cover is not None and series.cover.message_id in archived
        warnings = list(series.warnings)
        if from_archive or cover:
            what = (f"patch(es) {number_ranges(from_archive)}" if from_archive else "")
            what += (" and " if what and cover else "") + ("the cover letter" if cover else "")
            still = f"; still missing {number_ranges(series.missing)}" if series.missing else ""
            warnings.append(f"{what} fetched from the archive "
                            f"({settings.fetch.public_inbox_url}){still}")
        elif needs_completion(series):
            warnings.append(notes.get(series.series_id, "partial: the archive's thread did "
                                      "not have the missing patches"))
        keep.append(dataclasses.replace(series, warnings=tuple(warnings),
                                        from_archive=from_archive))
    return dataclasses.replace(again, series=keep, errors=found.errors,
                               messages=found.messages)


def complete_one(series: Series, messages: list[Message], settings: Settings,
                 archive: Archive) -> Series:
    """The completed form of ``series``, one of the series that ``messages`` assemble into
    (the service's way: it has the stored mails of the thread at hand). The series as it
    was, with a warning saying why, when the archive cannot complete it."""
    if not needs_completion(series):
        return series
    found = SeriesSet(series=[series], messages=len(messages))
    done = complete(found, lambda: iter(messages), settings, archive)
    mine = _ids(series)
    for candidate in done.series:
        if mine <= _ids(candidate):
            return candidate
    return series


def _noted(found: SeriesSet, notes: dict[str, str]) -> SeriesSet:
    series = [dataclasses.replace(s, warnings=(*s.warnings, notes[s.series_id]))
              if s.series_id in notes else s for s in found.series]
    return dataclasses.replace(found, series=series)


def _chain(first: Iterable[Message | InputError], second: list[Message]
           ) -> Iterator[Message | InputError]:
    yield from first
    yield from second
