"""Deciding, from the mails stored so far, which series are complete, waiting or superseded.

Mails arrive one by one and in any order (the cover letter after its patches is common when
a list delays one message). Each stored mail carries a *thread key* (``Message.thread_root``): the first
References entry, else In-Reply-To, else its own Message-ID; git-send-email threads every patch under
the cover (or under patch 1 without a cover), so the key names the whole posting. When a
mail arrives, every mail of its thread is read back, :func:`reviewbot.mail.series.assemble`
builds the series, and for each series:

- complete (patches 1..N present): a run is queued at once;
- incomplete: it waits; after ``service.series_wait_s`` from the first mail it is reviewed
  anyway, and the run records the missing slots;
- an older version than one already seen (same b4 change-id, or same author and subject):
  superseded, and its queued run is dropped.

A run is keyed by the hash of the patches' content (subject, commit message, diff), not by
Message-IDs: a late cover letter, a reply with a Reviewed-by, or a RESEND of the same
patches never queues a second review.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from typing import Any

from reviewbot.config import Settings
from reviewbot.mail import stored
from reviewbot.mail.address import parse_address
from reviewbot.mail.ingest import read_raw
from reviewbot.mail.read import RawMessage
from reviewbot.mail.series import assemble
from reviewbot.model import InputError, Message, Patch, Series, number_ranges
from reviewbot.service.store import MailMeta, SeriesRecord, Store, StoredMail

log = logging.getLogger(__name__)

EnqueueReview = Callable[[int], None]


def mail_meta(msg: Message) -> MailMeta:
    return MailMeta(
        message_id=msg.message_id,
        subject=msg.subject.raw,
        author_email=msg.author_email,
        thread_key=msg.thread_root,
        is_root=msg.parent_id is None,
        is_patch=msg.is_patch or msg.is_cover,  # what the assembler may put in a slot
        version=msg.subject.version,
        total=msg.subject.total,
    )


def header_meta(raw: bytes) -> MailMeta | None:
    """Thread headers of a mail the full parser refused (HTML-only, broken encoding).

    Such a mail is still stored, so that an MTA does not bounce list traffic back to the
    list; it is never a patch. None when the bytes carry no mail headers at all.
    """
    headers = BytesHeaderParser().parsebytes(raw)
    if not any(headers.get(h) for h in ("From", "Subject", "Message-ID")):
        return None

    def ids(value: object) -> list[str]:
        return re.findall(r"<([^<>\s]+)>", str(value or ""))

    own = ids(headers.get("Message-ID"))
    message_id = own[0] if own else f"reviewbot-{hashlib.sha1(raw).hexdigest()[:20]}@localhost"
    refs = ids(headers.get("References"))
    parent = ids(headers.get("In-Reply-To"))
    return MailMeta(
        message_id=message_id,
        subject=str(headers.get("Subject", ""))[:500],
        # The mail package's bounded parser (email.utils.parseaddr recurses on `a:` groups).
        author_email=parse_address(str(headers.get("From", "")))[1],
        thread_key=refs[0] if refs else parent[0] if parent else message_id,
        is_root=not refs and not parent,
        is_patch=False,
        version=1,
        total=1,
    )


def subject_key(series: Series) -> str:
    """What two versions of one series share: b4's change-id, else author + subject."""
    change = change_id(series)
    if change:
        return f"change-id:{change}"
    email = parse_address(series.author)[1].lower() or series.author.lower()
    subject = re.sub(r"\s+", " ", series.subject).strip().lower()
    return f"{email}|{subject}"


def change_id(series: Series) -> str | None:
    for slot in series.slots:
        msg = slot.message if isinstance(slot, Patch) else slot
        if isinstance(msg, Message) and msg.change_id:
            return msg.change_id
    return None


def series_message_ids(series: Series) -> tuple[str, ...]:
    out = []
    for slot in series.slots:
        msg = slot.message if isinstance(slot, Patch) else slot
        if isinstance(msg, Message):
            out.append(msg.message_id)
    return tuple(out)


@dataclass(frozen=True)
class Decision:
    series_row: int
    action: str  # "queued" | "waiting" | "superseded" | "known"
    run_id: int | None = None
    reason: str = ""


def load_messages(mails: Sequence[StoredMail], settings: Settings,
                  store: Store | None = None) -> list[Message]:
    """Parse stored mails. Each mail is parsed once: its parsed form is read back when
    an earlier intake kept it, else the raw mail is parsed and (given ``store``) the result
    kept. Unusable mails are logged and left out."""
    messages: list[Message] = []
    fresh: list[tuple[int, bytes]] = []
    for pos, mail in enumerate(mails):
        known = stored.decode(mail.parsed)
        if known is not None:
            messages.append(known)
            continue
        item = read_raw(RawMessage(mail.raw, pos, f"mail:{mail.id}"), settings.mail)
        if isinstance(item, InputError):
            log.warning("stored mail %d <%s> no longer parses: %s", mail.id, mail.message_id,
                        item.error)
        else:
            messages.append(item)
            fresh.append((mail.id, stored.encode(item)))
    if store is not None:
        store.set_parsed(fresh)
    return messages


def load_series(mails: Sequence[StoredMail], settings: Settings,
                store: Store | None = None) -> list[Series]:
    """Assemble stored mails (parsed as :func:`load_messages` does)."""
    return list(assemble(load_messages(mails, settings, store), settings.mail).series)


class SeriesTracker:
    """Turns stored mails into series rows and queued runs (idempotent; safe to repeat).

    Args:
        store: the service store.
        settings: ``service.series_wait_s`` and the mail settings are read.
        enqueue_review: called with a run id once a run is queued (the Huey task).
        clock: seconds since the epoch (tests pass a fake one).
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        enqueue_review: EnqueueReview,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.settings = settings
        self.enqueue_review = enqueue_review
        self.clock = clock

    def on_mail(self, mail_id: int) -> list[Decision]:
        """Assemble the thread that ``mail_id`` belongs to and act on each series in it."""
        mail = self.store.get_mail(mail_id)
        if mail is None:
            log.warning("intake: mail %d is not in the store", mail_id)
            return []
        keys = {mail.thread_key}
        meta = self.store.mail_meta(mail_id)
        if meta is not None:
            author, version, total, is_root, is_patch, received = meta
            if not is_patch:
                # A reply (review, Acked-by) changes neither completeness nor the content
                # hash; its trailers are read when the series is reviewed.
                self.store.mark_assembled([mail_id])
                return []
            if is_root and total > 1:
                # An unthreaded series (no cover, no In-Reply-To): its siblings are roots
                # too; let the assembler group them by author, version and total.
                window = self.settings.mail.unthreaded_window_hours * 3600
                keys.update(
                    self.store.unthreaded_siblings(author, version, total, received - window)
                )
        mails = self.store.mails_in_threads(sorted(keys), patches_only=True)
        decisions = self._decide(mails)
        self.store.mark_assembled([mail_id, *(m.id for m in mails)])
        return decisions

    def expire_waiting(self) -> list[Decision]:
        """Review series that waited ``series_wait_s`` for missing patches."""
        svc = self.settings.service
        deadline = self.clock() - min(svc.series_wait_s, svc.cover_wait_s)
        out: list[Decision] = []
        for row in self.store.waiting_series(deadline):
            try:
                mails = self.store.mails_in_threads([row["thread_key"]], patches_only=True)
                out.extend(self._decide(mails))
            except Exception as exc:  # one series must not keep the others waiting forever
                log.exception("expiring the wait of series %s failed", row.get("series_id"))
                # Failed, with the error as its reason (the page and /v1/series show it);
                # a newer mail of the thread assembles it again.
                self.store.set_series_state(int(row["id"]), "failed", only_from=("waiting",),
                                            reason=f"assembly failed: {type(exc).__name__}: "
                                                   f"{exc}"[:500])
        return out

    def _decide(self, mails: Sequence[StoredMail]) -> list[Decision]:
        if not mails:
            return []
        first_seen = {m.message_id: m.received_at for m in mails}
        thread_of = {m.message_id: m.thread_key for m in mails}
        out = []
        for series in load_series(mails, self.settings, self.store):
            ids = series_message_ids(series)
            if not ids or not series.patches:
                continue  # a cover letter alone, or replies: nothing to review yet
            seen = min(first_seen.get(i, self.clock()) for i in ids)
            key = min(thread_of.get(i, ids[0]) for i in ids) if not series.threaded else (
                thread_of.get(ids[0], ids[0])
            )
            record = SeriesRecord(
                series_id=series.series_id,
                thread_key=key,
                version=series.version,
                subject=series.subject,
                subject_key=subject_key(series),
                author=series.author,
                change_id=change_id(series),
                expected=series.expected,
                present=len(series.patches),
                missing=series.missing,
                message_ids=ids,
                content_hash=series.content_key,
                first_seen=seen,
            )
            out.append(self._act(series, record))
        return out

    def _act(self, series: Series, record: SeriesRecord) -> Decision:
        row_id = self.store.upsert_series(record, now=self.clock())
        row = self.store.series_rows("id = ?", (row_id,), limit=1)[0]
        if row["state"] == "superseded":
            return Decision(row_id, "known", row["run_id"], "already superseded")
        newer = self._newer_version(record, row_id)
        if newer is not None:
            if self.store.set_series_state(
                row_id, "superseded", reason=f"v{newer['version']} arrived",
                superseded_by=newer["id"], only_from=("waiting", "queued"),
            ):
                self.store.supersede_runs(row_id)
                return Decision(row_id, "superseded", None, f"superseded by series {newer['id']}")
        else:
            self._supersede_older(record, row_id)
        earlier = self.store.run_rows("id = ?", (row["run_id"],), limit=1) if row["run_id"] else []
        if earlier and earlier[0]["content_hash"] == record.content_hash:
            return Decision(row_id, "known", row["run_id"], f"run {row['run_id']} has it")
        if record.missing:
            if earlier:
                # Reviewed (or queued) once already with slots missing; more of the same
                # incomplete series is not worth a second review - the complete one is.
                return Decision(row_id, "known", row["run_id"], "still incomplete")
            if self.clock() - record.first_seen < self.settings.service.series_wait_s:
                return self._wait(row_id, f"missing patch(es) {number_ranges(record.missing)}")
        elif not earlier and self._cover_pending(series, record):
            # git send-email sends the cover first, but lists deliver out of order: a short
            # wait lets the review (and its series-level reply) include the cover letter.
            return self._wait(row_id, "waiting for the cover letter")
        run_id, created = self.store.create_run(
            row_id, record.series_id, record.content_hash, record.message_ids,
            missing=record.missing, now=self.clock(),
        )
        if created:
            log.info(
                "queued run %d for series %s v%d (%d/%d patches)", run_id, record.series_id,
                record.version, record.present, record.expected,
            )
            self.enqueue_review(run_id)
            return Decision(row_id, "queued", run_id)
        # Same patches as an earlier run (a RESEND, or another thread carrying them).
        return Decision(row_id, "known", run_id, "same content as an earlier run")

    def _wait(self, row_id: int, reason: str) -> Decision:
        self.store.set_series_state(row_id, "waiting", reason=reason, only_from=("waiting",))
        return Decision(row_id, "waiting", None, reason)

    def _cover_pending(self, series: Series, record: SeriesRecord) -> bool:
        """The patches reply to a message not received yet, likely the cover letter."""
        if series.cover is not None or series.expected < 2 or not series.threaded:
            return False
        if self.clock() - record.first_seen >= self.settings.service.cover_wait_s:
            return False
        return not self.store.has_message(record.thread_key)

    def _newer_version(self, record: SeriesRecord, row_id: int) -> dict[str, Any] | None:
        rows = self.store.series_rows(
            "subject_key = ? AND version > ? AND id <> ?",
            (record.subject_key, record.version, row_id), limit=1,
        )
        return rows[0] if rows else None

    def _supersede_older(self, record: SeriesRecord, row_id: int) -> None:
        for old in self.store.series_rows(
            "subject_key = ? AND version < ? AND state IN ('waiting', 'queued')",
            (record.subject_key, record.version), limit=100,
        ):
            if self.store.set_series_state(
                old["id"], "superseded", reason=f"v{record.version} arrived",
                superseded_by=row_id, only_from=("waiting", "queued"),
            ):
                dropped = self.store.supersede_runs(old["id"])
                log.info(
                    "series %s v%d superseded by v%d (%d queued run(s) dropped)",
                    old["series_id"], old["version"], record.version, dropped,
                )
