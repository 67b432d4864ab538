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
tried in that process, so an offline machine pays one failure, not one per series.
``--offline``, ``fetch.complete: false`` and ``REVIEWBOT_OFFLINE=1`` turn it off.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from reviewbot.config import Settings
from reviewbot.errors import BadInputError, InfraError
from reviewbot.mail.series import SeriesSet, assemble, read_messages
from reviewbot.model import InputError, Message, Series, number_ranges

log = logging.getLogger(__name__)

Fetch = Callable[[str, Settings], bytes]


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

    def __init__(self, settings: Settings, fetch: Fetch | None = None) -> None:
        self.settings = settings
        self.fetch = fetch or _default_fetch
        self.threads: dict[str, bytes | str] = {}
        self.down = ""  # set after a network failure: no more tries in this process

    def thread(self, root: str) -> bytes | str:
        """The thread's mbox, or the reason there is none."""
        if root in self.threads:
            return self.threads[root]
        if self.down:
            return f"not tried: {self.down}"
        try:
            answer: bytes | str = self.fetch(root, self.settings)
        except BadInputError as exc:  # 404: the archive does not have this thread
            answer = str(exc)
        except InfraError as exc:
            answer = f"{exc}: {exc.output.strip()[:200]}" if exc.output else str(exc)
            self.down = f"the archive was unreachable ({answer})"
        self.threads[root] = answer
        return answer


def _root(series: Series) -> str:
    first = series.cover or next((p.message for p in series.patches), None)
    return first.thread_root if first is not None else series.series_id


def _ids(series: Series) -> set[str]:
    out = {p.message.message_id for p in series.patches}
    if series.cover is not None:
        out.add(series.cover.message_id)
    return out


def complete(found: SeriesSet, paths: list[str | Path], settings: Settings, archive: Archive
             ) -> SeriesSet:
    """``found`` with every partial series completed from the archive where it can be;
    ``paths`` are read again when something was fetched (the input is not kept in memory).
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
        again = assemble(_chain(read_messages(paths, settings.mail), fetched), settings.mail)
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


def _noted(found: SeriesSet, notes: dict[str, str]) -> SeriesSet:
    series = [dataclasses.replace(s, warnings=(*s.warnings, notes[s.series_id]))
              if s.series_id in notes else s for s in found.series]
    return dataclasses.replace(found, series=series)


def _chain(first: Iterable[Message | InputError], second: list[Message]
           ) -> Iterator[Message | InputError]:
    yield from first
    yield from second
