"""Durable state of the service: mails, series, runs, seen signatures and named locks.

The webhook answers 202 only after :meth:`Store.add_mail` returned (committed, fsynced; see
:mod:`reviewbot.service.db`).

Exactly-once reviews: ``runs.content_hash`` is UNIQUE, so a series whose patches are the same
is never queued twice; a run is executed under a lease with a random token, and only the
holder of the current token can record a result (:meth:`Store.finish_run`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reviewbot.config import Settings
from reviewbot.service.db import wall_clock
from reviewbot.service.runs import RunQueries
from reviewbot.service.schema import MIGRATIONS, RUN_STATES, SERIES_STATES

__all__ = [
    "MIGRATIONS", "RUN_STATES", "SERIES_STATES", "AddResult", "MailMeta", "ReplayError",
    "SeriesRecord", "Store", "StoredMail",
]


@dataclass(frozen=True)
class MailMeta:
    """What intake reads from a mail's headers, to find its thread without parsing again."""

    message_id: str
    subject: str
    author_email: str
    thread_key: str  # first References entry, else In-Reply-To, else its own Message-ID
    is_root: bool  # replies to nothing
    is_patch: bool
    version: int
    total: int


@dataclass(frozen=True)
class StoredMail:
    id: int
    message_id: str
    received_at: float
    raw: bytes
    thread_key: str
    parsed: bytes | None = None  # reviewbot.mail.stored encoding, once an intake parsed it


@dataclass(frozen=True)
class AddResult:
    mail_id: int
    created: bool  # False: the Message-ID was already stored (idempotent retry)


class Store(RunQueries):
    """Typed queries of the service (mails, series; runs from :class:`RunQueries`)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        url = settings.service.database_url
        if not url:
            state = settings.path(settings.service.state_dir)
            url = f"sqlite:///{(state / 'reviewbot.db').resolve()}"
        store = cls(url)
        store.migrate()
        return store

    # -- mails ----------------------------------------------------------------------------

    def add_mail(
        self,
        raw: bytes,
        meta: MailMeta,
        sha256: str,
        *,
        signature: str | None = None,
        now: float | None = None,
        parsed: bytes | None = None,
    ) -> AddResult:
        """Store one mail durably, once per Message-ID, with its parsed form when the
        caller has it (reviewbot.mail.stored: then no intake parses it again).

        Raises:
            ReplayError: ``signature`` was already seen (a replayed request).
        """
        now = wall_clock() if now is None else now
        with self.tx() as tx:
            if signature is not None:
                if tx.fetchall("SELECT 1 FROM nonces WHERE signature = ?", (signature,)):
                    raise ReplayError("this signature was already used")
                tx.execute(
                    "INSERT INTO nonces (signature, seen_at) VALUES (?, ?)", (signature, now)
                )
            rows = tx.fetchall(
                "INSERT INTO mails (message_id, received_at, size, sha256, raw, subject,"
                " author_email, thread_key, is_root, is_patch, version, total, parsed)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (message_id) DO NOTHING RETURNING id",
                (
                    meta.message_id, now, len(raw), sha256, raw, meta.subject[:500],
                    meta.author_email.lower(), meta.thread_key, int(meta.is_root),
                    int(meta.is_patch), meta.version, meta.total, parsed,
                ),
            )
            if rows:
                return AddResult(int(rows[0][0]), True)
            existing = tx.fetchall("SELECT id FROM mails WHERE message_id = ?", (meta.message_id,))
            return AddResult(int(existing[0][0]), False)

    def prune_nonces(self, older_than: float) -> None:
        with self.tx() as tx:
            tx.execute("DELETE FROM nonces WHERE seen_at < ?", (older_than,))

    def get_mail(self, mail_id: int) -> StoredMail | None:
        rows = self.query(
            "SELECT id, message_id, received_at, raw, thread_key, parsed FROM mails"
            " WHERE id = ?",
            (mail_id,),
        )
        return _stored_mail(rows[0]) if rows else None

    def set_parsed(self, parsed: Sequence[tuple[int, bytes]]) -> None:
        """Keep the parsed form of mails (mail id, reviewbot.mail.stored bytes)."""
        if not parsed:
            return
        with self.tx() as tx:
            for mail_id, data in parsed:
                tx.execute("UPDATE mails SET parsed = ? WHERE id = ?", (data, mail_id))

    # -- threads fetched from the archive (mail/complete.py) ---------------------------------

    def archive_thread(self, root: str, fetched_after: float) -> bytes | str | None:
        """The thread's mbox (or the failure) when fetched after ``fetched_after``."""
        rows = self.query("SELECT mbox, error FROM archive_threads WHERE root = ?"
                          " AND fetched_at > ?", (root, fetched_after))
        if not rows:
            return None
        mbox, error = rows[0]
        return bytes(mbox) if mbox is not None else str(error)

    def put_archive_thread(self, root: str, answer: bytes | str,
                           now: float | None = None) -> None:
        mbox, error = (answer, "") if isinstance(answer, bytes) else (None, answer[:2000])
        with self.tx() as tx:
            tx.execute(
                "INSERT INTO archive_threads (root, fetched_at, mbox, error) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (root) DO UPDATE SET fetched_at = excluded.fetched_at,"
                " mbox = excluded.mbox, error = excluded.error",
                (root, wall_clock() if now is None else now, mbox, error))

    def prune_archive_threads(self, fetched_before: float) -> int:
        with self.tx() as tx:
            return tx.execute("DELETE FROM archive_threads WHERE fetched_at < ?",
                              (fetched_before,))

    def mail_count(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM mails")[0][0])

    def mails_in_threads(
        self, thread_keys: Sequence[str], *, patches_only: bool = False
    ) -> list[StoredMail]:
        """Every mail of these threads (a thread key is also the root's own Message-ID).

        ``patches_only`` leaves out replies: deciding what to review needs only patches
        and cover letters, and a long discussion would otherwise be parsed again and again.
        """
        if not thread_keys:
            return []
        marks = ", ".join("?" for _ in thread_keys)
        only = " AND is_patch = 1" if patches_only else ""
        rows = self.query(
            "SELECT id, message_id, received_at, raw, thread_key, parsed FROM mails"
            f" WHERE (thread_key IN ({marks}) OR message_id IN ({marks})){only} ORDER BY id",
            (*thread_keys, *thread_keys),
        )
        return [_stored_mail(r) for r in rows]

    def unthreaded_siblings(
        self, author_email: str, version: int, total: int, since: float
    ) -> list[str]:
        """Thread keys of root patch mails that may be other parts of an unthreaded series."""
        rows = self.query(
            "SELECT DISTINCT thread_key FROM mails WHERE author_email = ? AND version = ?"
            " AND total = ? AND is_root = 1 AND is_patch = 1 AND received_at >= ?",
            (author_email.lower(), version, total, since),
        )
        return [str(r[0]) for r in rows]

    def mail_meta(self, mail_id: int) -> tuple[str, int, int, int, int, float] | None:
        """(author_email, version, total, is_root, is_patch, received_at) of one mail."""
        rows = self.query(
            "SELECT author_email, version, total, is_root, is_patch, received_at"
            " FROM mails WHERE id = ?",
            (mail_id,),
        )
        if not rows:
            return None
        r = rows[0]
        return str(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), float(r[5])

    def unassembled_mails(self, received_before: float, limit: int = 500) -> list[int]:
        rows = self.query(
            "SELECT id FROM mails WHERE assembled_at IS NULL AND received_at < ?"
            " AND quarantined IS NULL ORDER BY id LIMIT ?",
            (received_before, limit),
        )
        return [int(r[0]) for r in rows]

    def record_intake_failure(self, mail_id: int, error: str, quarantine_after: int) -> bool:
        """Count a failed intake of ``mail_id``; at ``quarantine_after`` failures the mail is
        quarantined with ``error`` (no sweep picks it up again). True when it is now."""
        text = error.encode("utf-8", "backslashreplace").decode("utf-8")[:2000]
        with self.tx() as tx:
            tx.execute("UPDATE mails SET intake_failures = intake_failures + 1 WHERE id = ?",
                       (mail_id,))
            tx.execute("UPDATE mails SET quarantined = ? WHERE id = ? AND quarantined IS NULL"
                       " AND intake_failures >= ?", (text, mail_id, quarantine_after))
        rows = self.query("SELECT quarantined FROM mails WHERE id = ?", (mail_id,))
        return bool(rows) and rows[0][0] is not None

    def quarantined_mails(self, limit: int = 100) -> list[dict[str, Any]]:
        """Quarantined mails, newest first: id, message_id, subject, failures, error."""
        rows = self.query(
            "SELECT id, message_id, subject, intake_failures, quarantined, received_at"
            " FROM mails WHERE quarantined IS NOT NULL ORDER BY id DESC LIMIT ?", (limit,))
        return [{"id": int(r[0]), "message_id": r[1], "subject": r[2], "failures": int(r[3]),
                 "error": r[4], "received_at": r[5]} for r in rows]

    def count_quarantined(self) -> int:
        rows = self.query("SELECT COUNT(*) FROM mails WHERE quarantined IS NOT NULL", ())
        return int(rows[0][0]) if rows else 0

    def has_message(self, message_id: str) -> bool:
        return bool(self.query("SELECT 1 FROM mails WHERE message_id = ?", (message_id,)))

    def is_assembled(self, mail_id: int) -> bool:
        rows = self.query("SELECT assembled_at FROM mails WHERE id = ?", (mail_id,))
        return bool(rows) and rows[0][0] is not None

    def mark_assembled(self, mail_ids: Sequence[int], now: float | None = None) -> None:
        if not mail_ids:
            return
        now = wall_clock() if now is None else now
        marks = ", ".join("?" for _ in mail_ids)
        with self.tx() as tx:
            tx.execute(
                f"UPDATE mails SET assembled_at = ? WHERE id IN ({marks}) AND assembled_at IS NULL",
                (now, *mail_ids),
            )

    # -- series ---------------------------------------------------------------------------

    def upsert_series(self, row: SeriesRecord, now: float | None = None) -> int:
        """Insert or update the series of (thread_key, version); returns its row id.

        A row that is already reviewed, failed or superseded keeps that state: intake of a
        late reply must not re-open it.
        """
        now = wall_clock() if now is None else now
        with self.tx() as tx:
            rows = tx.fetchall(
                "INSERT INTO series (series_id, thread_key, version, subject, subject_key,"
                " author, change_id, expected, present, missing, message_ids, content_hash,"
                " state, reason, first_seen, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (thread_key, version) DO UPDATE SET"
                " series_id = excluded.series_id, subject = excluded.subject,"
                " subject_key = excluded.subject_key, author = excluded.author,"
                " change_id = excluded.change_id, expected = excluded.expected,"
                " present = excluded.present, missing = excluded.missing,"
                " message_ids = excluded.message_ids, content_hash = excluded.content_hash,"
                " updated_at = excluded.updated_at"
                # Two workers may assemble one thread at once; the one that saw fewer mails
                # must not overwrite the fuller view (a thread only ever grows).
                " WHERE excluded.present > series.present OR (excluded.present = series.present"
                " AND length(excluded.message_ids) >= length(series.message_ids))"
                " RETURNING id",
                (
                    row.series_id, row.thread_key, row.version, row.subject, row.subject_key,
                    row.author, row.change_id, row.expected, row.present,
                    json.dumps(list(row.missing)), json.dumps(list(row.message_ids)),
                    row.content_hash, "waiting", "", row.first_seen or now, now,
                ),
            )
            if rows:
                return int(rows[0][0])
            found = tx.fetchall(
                "SELECT id FROM series WHERE thread_key = ? AND version = ?",
                (row.thread_key, row.version),
            )
            return int(found[0][0])

    def set_series_state(
        self,
        row_id: int,
        state: str,
        *,
        reason: str = "",
        run_id: int | None = None,
        superseded_by: int | None = None,
        only_from: Sequence[str] = (),
    ) -> bool:
        assert state in SERIES_STATES, state
        sql = "UPDATE series SET state = ?, reason = ?, updated_at = ?"
        params: list[Any] = [state, reason, wall_clock()]
        if run_id is not None:
            sql += ", run_id = ?"
            params.append(run_id)
        if superseded_by is not None:
            sql += ", superseded_by = ?"
            params.append(superseded_by)
        sql += " WHERE id = ?"
        params.append(row_id)
        if only_from:
            sql += f" AND state IN ({', '.join('?' for _ in only_from)})"
            params.extend(only_from)
        with self.tx() as tx:
            return tx.execute(sql, params) > 0

    def series_rows(self, where: str = "", params: Sequence[Any] = (), limit: int = 100,
                    offset: int = 0) -> list[dict[str, Any]]:
        cols = (
            "id, series_id, thread_key, version, subject, subject_key, author, change_id,"
            " expected, present, missing, message_ids, content_hash, state, reason,"
            " superseded_by, run_id, first_seen, updated_at"
        )
        sql = f"SELECT {cols} FROM series"
        if where:
            sql += f" WHERE {where}"
        sql += " ORDER BY updated_at DESC, id DESC LIMIT ? OFFSET ?"
        rows = self.query(sql, (*params, limit, max(0, offset)))
        names = [c.strip() for c in cols.split(",")]
        out = []
        for r in rows:
            d = dict(zip(names, r, strict=True))
            d["missing"] = json.loads(d["missing"])
            d["message_ids"] = json.loads(d["message_ids"])
            out.append(d)
        return out

    def get_series(self, key: str) -> dict[str, Any] | None:
        """A series by row id, by series id (Message-ID), or by any of its Message-IDs."""
        key = key.strip().strip("<>")
        if key.isdigit() and valid_row_id(int(key)):
            found = self.series_rows("id = ?", (int(key),), limit=1)
            if found:
                return found[0]
        found = self.series_rows("series_id = ?", (key,), limit=1)
        if found:
            return found[0]
        found = self.series_rows("message_ids LIKE ?", (f'%"{_like_escape(key)}"%',), limit=1)
        return found[0] if found else None

    def waiting_series(self, first_seen_before: float) -> list[dict[str, Any]]:
        return self.series_rows(
            "state = 'waiting' AND first_seen < ?", (first_seen_before,), limit=1000
        )

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per state, for /metrics and /healthz."""
        out: dict[str, dict[str, int]] = {"runs": {}, "series": {}}
        for table in ("runs", "series"):
            for state, n in self.query(f"SELECT state, COUNT(*) FROM {table} GROUP BY state"):
                out[table][str(state)] = int(n)
        out["mails"] = {"stored": self.mail_count(), "quarantined": self.count_quarantined()}
        return out


@dataclass(frozen=True)
class SeriesRecord:
    series_id: str
    thread_key: str
    version: int
    subject: str
    subject_key: str
    author: str
    change_id: str | None
    expected: int
    present: int
    missing: tuple[int, ...]
    message_ids: tuple[str, ...]
    content_hash: str
    first_seen: float


class ReplayError(Exception):
    """A signed request was seen before."""


def valid_row_id(value: int) -> bool:
    """A row id both stores can hold (64-bit signed): a path such as /v1/runs/<20 digits>
    is a missing run, not a database error."""
    return 0 < value < 2**63


def _stored_mail(r: Sequence[Any]) -> StoredMail:
    return StoredMail(int(r[0]), str(r[1]), float(r[2]), bytes(r[3]), str(r[4]),
                      bytes(r[5]) if r[5] is not None else None)


def _like_escape(text: str) -> str:
    # A Message-ID never contains '%'; '_' matching any one character is harmless here.
    return text.replace("%", "")
