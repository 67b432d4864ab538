"""Series assembly: messages -> versions of patch series with their review trailers.

States of a message, decided once when it is read:
  patch   carries a diff and is not a reply ("Re:" subject)
  cover   no diff, not a reply, counter 0/N (or the non-reply parent of a patch)
  reply   everything else; kept only as (parent links, trailers), its body is dropped

Series are keyed by (thread root, version, total, author). The thread root is the first
References entry (present in the input or not, so patches replying to a cover that is
missing from the input still group), else In-Reply-To, else the message itself. Patches
sent without threading (no References) are grouped by author, version and total within a
time window. Trailers in replies walk up the reply chain to the patch or cover they answer
(b4's rule: tags in intermediate replies are collected on the way).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from reviewbot.config import MailSettings, Settings
from reviewbot.mail.ingest import read_raw
from reviewbot.mail.parallel import parse_mbox_files, parse_parallel, workers_for
from reviewbot.mail.patchid import patch_id
from reviewbot.mail.read import RawMessage, iter_path
from reviewbot.model import (
    TRAILER_FROM_COVER,
    TRAILER_FROM_REPLY,
    InputError,
    Message,
    Patch,
    Series,
    Trailer,
)

log = logging.getLogger(__name__)

# Earlier unthreaded groups of one sender, version and total that a lone patch is tried
# against (real mail: one or two; a flood of one sender's "[PATCH 1/2]" stays linear).
MAX_UNTHREADED_TARGETS = 64


@dataclass
class SeriesSet:
    """Everything found in an input: series, unusable messages, and counts."""

    series: list[Series] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    messages: int = 0  # messages read, usable or not
    warnings: list[str] = field(default_factory=list)


def read_messages(paths: Iterable[Path | str], settings: MailSettings) -> Iterator[Message | InputError]:
    """Parse every message of every path; unusable ones become InputError, never exceptions.

    Inputs larger than ``mail.parallel_min_bytes`` are parsed on every CPU.
    """
    paths = list(paths)
    jobs = workers_for(settings)
    if jobs > 1 and _input_bytes(paths) >= settings.parallel_min_bytes:
        plain = parse_mbox_files([Path(p) for p in paths], settings, jobs) if "-" not in map(str, paths) else None
        yield from plain if plain is not None else parse_parallel(_raws(paths, settings), settings, jobs)
        return
    for raw in _raws(paths, settings):
        yield raw if isinstance(raw, InputError) else read_raw(raw, settings)


def _raws(paths: list[Path | str], settings: MailSettings) -> Iterator[RawMessage | InputError]:
    for path in paths:
        yield from iter_path(path, max_bytes=settings.max_message_bytes)


def _input_bytes(paths: list[Path | str]) -> int:
    total = 0
    for path in paths:
        p = Path(path)
        if str(path) != "-" and p.is_file():
            total += p.stat().st_size * (6 if p.suffix == ".gz" else 1)  # gzip: ~6x
    return total


def read_series(paths: Iterable[Path | str], settings: Settings) -> SeriesSet:
    """Read mail from paths and assemble every series in it.

    Raises:
        BadInputError: a path does not exist.
    """
    return assemble(read_messages(paths, settings.mail), settings.mail)


@dataclass
class _Group:
    key: tuple[str, ...]
    version: int
    total: int
    cover: Message | None = None
    slots: dict[int, Message] = field(default_factory=dict)
    threaded: bool = True
    warnings: list[str] = field(default_factory=list)

    def first_date(self) -> datetime | None:
        dates = [m.date for m in self.messages() if m.date is not None]
        # By timestamp: "-0000" dates are naive, and min() of naive and aware ones raises.
        return min(dates, key=_stamp) if dates else None

    def messages(self) -> list[Message]:
        head = [self.cover] if self.cover else []
        return head + [self.slots[i] for i in sorted(self.slots)]


def _slim(msg: Message) -> Message:
    """Drop the body of a message that only matters for its links and trailers."""
    if not (msg.body or msg.commit_message or msg.diff):
        return msg  # already prepared by the parser (mail.ingest.prepare)
    return dataclasses.replace(msg, body="", commit_message="", diff=None)


class _Assembler:
    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings
        self.groups: dict[tuple[str, ...], _Group] = {}
        self.by_id: dict[str, Message] = {}  # every usable message, bodies of replies dropped
        self.kind: dict[str, str] = {}  # message-id -> patch|cover|reply
        self.followups: list[Message] = []  # replies (and covers) with trailers, in input order
        self.order: list[str] = []  # message-ids in input order
        self.roots: dict[str, str] = {}
        self.result = SeriesSet()

    def _root_of(self, msg: Message) -> str:
        """The thread root: walk up the parents present in the input, then take the first
        References entry of the topmost one (present or not). Walking matters because some
        mailers cut References down to the direct parent (seen: "[PATCH 4/4]" referencing
        only 3/4, not the cover)."""
        chain: list[str] = []
        current: Message | None = msg
        root = msg.message_id
        while current is not None and current.message_id not in chain:
            known = self.roots.get(current.message_id)
            if known is not None:
                root = known
                break
            chain.append(current.message_id)
            root = current.thread_root
            current = self.by_id.get(current.parent_id or "")
        for mid in chain:
            self.roots[mid] = root
        return root

    def add(self, msg: Message) -> None:
        if msg.message_id in self.by_id:
            self.result.warnings.append(
                f"duplicate Message-ID <{msg.message_id}> at {msg.source}#{msg.position}: ignored"
            )
            return
        self.order.append(msg.message_id)
        if msg.is_patch:
            self.kind[msg.message_id] = "patch"
            self.by_id[msg.message_id] = dataclasses.replace(msg, body="") if msg.body else msg
        elif msg.is_cover:
            self.kind[msg.message_id] = "cover"
            self.by_id[msg.message_id] = msg
        else:
            self.kind[msg.message_id] = "reply"
            self.by_id[msg.message_id] = _slim(msg)
        if msg.trailers and self.kind[msg.message_id] != "patch":
            self.followups.append(self.by_id[msg.message_id])

    def _key(self, msg: Message) -> tuple[str, ...]:
        s = msg.subject
        return (self._root_of(msg), str(s.version), str(s.total), msg.author_email.lower())

    def _group(self, key: tuple[str, ...], msg: Message) -> _Group:
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group(key, msg.subject.version, msg.subject.total)
        return group

    def _place_cover(self, msg: Message) -> None:
        # Patches reply to the cover, so their root is the cover's own root: a cover that
        # starts a thread is its own root.
        key = self._key(msg)
        group = self._group(key, msg)
        if group.cover is None:
            group.cover = msg
        else:
            # Same thread, same version, two covers (a RESEND inside the thread): split.
            self._group(key + (msg.message_id,), msg).cover = msg

    def _place_patch(self, msg: Message) -> None:
        s = msg.subject
        limit = self.settings.max_series_patches
        if s.total > limit or s.index > limit:
            self.result.errors.append(
                InputError(msg.source, msg.position, msg.message_id,
                           f"counter {s.index}/{s.total} is out of range")
            )
            return
        index = max(s.index, 1)
        if index > s.total:
            # "[PATCH 6/5]" is real (a patch added after the count was written): keep it.
            msg = dataclasses.replace(msg, warnings=(*msg.warnings, f"counter {index}/{s.total}"))
        # Patches 2..N often reply to patch 1 (send-email without a cover), so patch 1 is
        # the thread root: a patch without References is keyed by its own Message-ID and
        # the others find it. Groups that stay a lone unthreaded patch are merged later.
        key: tuple[str, ...] = self._key(msg)
        parent = self.by_id.get(msg.parent_id or "")
        if (
            parent is not None
            and self.kind.get(parent.message_id) == "cover"
            and (parent.subject.version, parent.subject.total) == (s.version, s.total)
        ):
            # A patch answering its cover belongs to the cover's series even when another
            # person sent it (co-authored series, a maintainer re-sending one patch).
            key = self._key(parent)
        if s.total == 1 and (msg.references or msg.in_reply_to):
            # A lone patch in a discussion thread is its own series unless it answers
            # a 0/1 cover of the same author.
            parent = self.by_id.get(msg.parent_id or "")
            if parent is None or self.kind.get(parent.message_id) != "cover":
                key = key + (msg.message_id,)
        group = self._group(key, msg)
        if index in group.slots:
            # Two different mails for one slot: keep the first, put the other in its own
            # series so that nothing is silently dropped.
            group.warnings.append(f"second mail for slot {index}: <{msg.message_id}>")
            group = self._group(key + (msg.message_id,), msg)
        group.slots[index] = msg

    def finish(self) -> SeriesSet:
        # Placed only now, when every parent is known, so that mail order does not matter.
        for mid in self.order:
            if self.kind[mid] == "cover":
                self._place_cover(self.by_id[mid])
        for mid in self.order:
            if self.kind[mid] == "patch":
                self._place_patch(self.by_id[mid])
        self._merge_unthreaded()
        self._adopt_strays()
        self._adopt_covers()
        followups = self._collect_followups()
        series = [self._build(g, followups) for g in self.groups.values() if g.slots]
        series = _link_versions(series, self.groups)
        series.sort(key=lambda s: (s.subject.lower(), s.version))
        self.result.series = _carry_over_trailers(series, followups, self.by_id)
        return self.result

    def _merge_unthreaded(self) -> None:
        """Group unthreaded patches by author, version and total within the time window."""
        window = timedelta(hours=self.settings.unthreaded_window_hours)
        lone = [
            g for g in self.groups.values()
            if g.total > 1 and g.cover is None and len(g.slots) == 1
            and not any(m.references or m.in_reply_to for m in g.slots.values())
        ]
        for group in lone:
            group.threaded = False
        lone.sort(key=lambda g: _stamp(g.first_date()))
        # Targets by (author, version, total): trying every earlier group was quadratic
        # (28 s for 8,000 unthreaded patches of distinct senders).
        merged: dict[tuple[str, int, int], list[_Group]] = defaultdict(list)
        for group in lone:
            msg = next(iter(group.slots.values()))
            targets = merged[(msg.author_email.lower(), group.version, group.total)]
            # The oldest first, as many as a flood of one sender's patches allows.
            for target in targets[:MAX_UNTHREADED_TARGETS]:
                if not set(target.slots) & set(group.slots) and _within(
                    target.first_date(), group.first_date(), window
                ):
                    target.slots.update(group.slots)
                    del self.groups[group.key]
                    break
            else:
                targets.append(group)

    def _adopt_strays(self) -> None:
        """b4's rule for a patch without a version in its subject ("[PATCH 3/3]", often
        sent again by hand after a failed send) inside the thread of a versioned series
        ("[PATCH v3 0/3]") with the same count: when its slot there is free, it is that
        series' patch, with a warning. Without this it was a one-patch v1 of its own."""
        by_root: dict[str, list[_Group]] = defaultdict(list)
        for group in self.groups.values():
            by_root[group.key[0]].append(group)
        for groups in by_root.values():
            if len(groups) < 2:
                continue
            for stray in [g for g in groups if g.cover is None and g.slots
                          and all(m.subject.version_inferred for m in g.slots.values())]:
                homes = [h for h in groups
                         if h is not stray and h.key in self.groups and h.total == stray.total
                         and h.version != stray.version and not set(h.slots) & set(stray.slots)
                         and any(not m.subject.version_inferred for m in h.messages())]
                if len(homes) != 1:
                    continue  # none, or several versions it could belong to: leave it
                home = homes[0]
                for index, msg in stray.slots.items():
                    home.slots[index] = msg
                    home.warnings.append(
                        f"patch {index}/{stray.total} <{msg.message_id}> has no version in its "
                        f"subject: taken as v{home.version}, the version of its thread")
                del self.groups[stray.key]

    def _adopt_covers(self) -> None:
        """A patch whose parent is a non-reply mail without a diff: that mail is the cover
        letter even without "0/N" in its subject (seen with hand-written covers)."""
        for group in self.groups.values():
            if group.cover is not None or not group.slots:
                continue
            first = group.slots[min(group.slots)]
            parent = self.by_id.get(first.parent_id or "")
            if parent is not None and parent.diff is None and not parent.subject.is_reply:
                group.cover = self.by_id[parent.message_id]

    def _collect_followups(self) -> dict[str, list[Trailer]]:
        """Map patch/cover Message-ID -> trailers given in replies, b4's walk up the chain.

        A walk that reaches a reply an earlier walk went through stops there: the tags
        from there up were added then, to the same target (``target_of``), and adding them
        again only repeats them. Walking every chain to its end was quadratic in its
        length (324 s and gigabytes for a chain of 8,000 replies with a tag each).
        """
        result: dict[str, list[Trailer]] = defaultdict(list)
        target_of: dict[str, str | None] = {}  # intermediate reply -> where its walk ended
        for reply in self.followups:
            if not reply.subject.is_reply and self.kind.get(reply.message_id) == "cover":
                continue  # a cover's own tags are not review tags
            parent = self._parent(reply)
            if parent is None:
                continue
            trailers = [_origin(t, TRAILER_FROM_REPLY, reply.message_id) for t in reply.trailers]
            seen: set[str] = {reply.message_id}
            path: list[str] = []
            target: str | None = None
            while parent is not None and parent.message_id not in seen:
                if parent.message_id in target_of:
                    target = target_of[parent.message_id]
                    break
                seen.add(parent.message_id)
                kind = self.kind.get(parent.message_id)
                if kind == "patch" or not parent.subject.is_reply:
                    target = parent.message_id
                    break
                path.append(parent.message_id)
                trailers.extend(
                    _origin(t, TRAILER_FROM_REPLY, parent.message_id) for t in parent.trailers
                )
                parent = self.by_id.get(parent.in_reply_to or "")
            for mid in path:
                target_of[mid] = target
            if target is not None:
                result[target].extend(trailers)
        return result

    def _parent(self, msg: Message) -> Message | None:
        if msg.in_reply_to:
            return self.by_id.get(msg.in_reply_to)
        # No In-Reply-To: b4 takes the first References entry it knows.
        return next((self.by_id[r] for r in msg.references if r in self.by_id), None)

    def _build(self, group: _Group, followups: dict[str, list[Trailer]]) -> Series:
        cover = group.cover
        cover_trailers = [
            _origin(t, TRAILER_FROM_COVER, t.origin_message_id)
            for t in followups.get(cover.message_id, [])
        ] if cover else []
        slots: list[Patch | Message | None] = [cover]
        expected = max([group.total, *group.slots])
        for index in range(1, expected + 1):
            msg = group.slots.get(index)
            if msg is None:
                slots.append(None)
                continue
            trailers = _merge(list(msg.trailers), followups.get(msg.message_id, []), cover_trailers)
            pid = msg.patch_id
            if pid is None and self.settings.compute_patch_id:
                pid = patch_id(msg.diff or "")
            slots.append(Patch(msg, index, tuple(trailers), pid))
        first = cover or group.slots[min(group.slots)]
        base = next((m.base_commit for m in group.messages() if m.base_commit), None)
        warnings = list(group.warnings)
        if cover is None and expected > 1:
            warnings.append("no cover letter")
        for msg in group.messages():
            warnings.extend(f"<{msg.message_id}>: {w}" for w in msg.warnings)
        return Series(
            series_id=first.message_id,
            version=group.version,
            subject=first.subject.subject,
            author=first.author,
            expected=expected,
            slots=tuple(slots),
            base_commit=base,
            threaded=group.threaded,
            warnings=tuple(warnings),
        )


def _stamp(date: datetime | None) -> float:
    try:
        return date.timestamp() if date is not None else 0.0
    except (OverflowError, OSError, ValueError):
        return 0.0


def _within(a: datetime | None, b: datetime | None, window: timedelta) -> bool:
    if a is None or b is None:
        return True
    try:
        return abs(a - b) <= window
    except TypeError:  # naive vs aware dates from broken Date headers
        return abs(a.replace(tzinfo=None) - b.replace(tzinfo=None)) <= window


def _origin(trailer: Trailer, origin: str, message_id: str | None) -> Trailer:
    return dataclasses.replace(trailer, origin=origin, origin_message_id=message_id)


def _merge(own: list[Trailer], *more: list[Trailer]) -> list[Trailer]:
    """The patch's own trailers as written (a repeated Signed-off-by stays, as in b4), then
    those from replies and the cover that are not there yet."""
    seen = {(t.name.lower(), t.value.strip().lower()) for t in own}
    out = list(own)
    for trailers in more:
        for trailer in trailers:
            key = (trailer.name.lower(), trailer.value.strip().lower())
            if key not in seen:
                seen.add(key)
                out.append(trailer)
    return out


_WS = re.compile(r"\s+")


def _topic(series: Series) -> list[tuple[str, ...]]:
    """Keys under which two versions of one series meet."""
    author = series.author.lower()
    keys: list[tuple[str, ...]] = [("subject", author, _WS.sub(" ", series.subject.lower()))]
    first = series.patches[0] if series.patches else None
    if first is not None:
        keys.append(("patch1", author, _WS.sub(" ", first.message.subject.subject.lower())))
    for msg in [series.cover, *(p.message for p in series.patches)]:
        if msg is not None and msg.change_id:
            keys.append(("change-id", msg.change_id))
    return keys


def _link_versions(series: list[Series], groups: dict[tuple[str, ...], _Group]) -> list[Series]:
    """Mark older versions superseded by the newest one of the same topic."""
    parent = list(range(len(series)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    seen: dict[tuple[str, ...], int] = {}
    for i, s in enumerate(series):
        for key in _topic(s):
            if key in seen:
                parent[find(i)] = find(seen[key])
            else:
                seen[key] = i
    families: dict[int, list[int]] = defaultdict(list)
    for i in range(len(series)):
        families[find(i)].append(i)
    out = list(series)
    for members in families.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda i: (series[i].version, _first_date(series[i])))
        newest = series[members[-1]]
        older = [series[i].series_id for i in members[:-1]]
        out[members[-1]] = dataclasses.replace(newest, supersedes=tuple(older))
        for i in members[:-1]:
            out[i] = dataclasses.replace(series[i], superseded_by=newest.series_id)
    return out


def _first_date(series: Series) -> float:
    dates = [p.message.date for p in series.patches if p.message.date is not None]
    if series.cover is not None and series.cover.date is not None:
        dates.append(series.cover.date)
    return min((_stamp(d) for d in dates), default=0.0)


def _carry_over_trailers(
    series: list[Series], followups: dict[str, list[Trailer]], by_id: dict[str, Message]
) -> list[Series]:
    """Trailers given to an older version carry over when the patch did not change
    (same patch-id), as b4 am does."""
    by_patch_id: dict[str, list[Trailer]] = defaultdict(list)
    for s in series:
        if s.superseded_by is None:
            continue
        for p in s.patches:
            if p.patch_id:
                by_patch_id[p.patch_id].extend(followups.get(p.message_id, []))
    if not by_patch_id:
        return series
    out = []
    for s in series:
        if s.superseded_by is not None or not s.supersedes:
            out.append(s)
            continue
        slots: list[Patch | Message | None] = [s.slots[0]]
        for slot in s.slots[1:]:
            if isinstance(slot, Patch) and slot.patch_id in by_patch_id:
                extra = by_patch_id[slot.patch_id]
                slot = dataclasses.replace(slot, trailers=tuple(_merge(list(slot.trailers), extra)))
            slots.append(slot)
        out.append(dataclasses.replace(s, slots=tuple(slots)))
    return out


def assemble(items: Iterable[Message | InputError], settings: MailSettings) -> SeriesSet:
    """Assemble series from parsed messages (and pass InputErrors through)."""
    assembler = _Assembler(settings)
    for item in items:
        assembler.result.messages += 1
        if isinstance(item, InputError):
            assembler.result.errors.append(item)
        else:
            assembler.add(item)
    return assembler.finish()
