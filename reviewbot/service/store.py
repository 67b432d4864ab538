"""Durable state of the service: mails, series, runs, seen signatures and named locks.

The webhook answers 202 only after :meth:`Store.add_mail` returned (committed, fsynced; see
:mod:`reviewbot.service.db`).

Exactly-once reviews: ``runs.content_hash`` is UNIQUE, so a series whose patches are the same
is never queued twice; a run is executed under a lease with a random token, and only the
holder of the current token can record a result (:meth:`Store.finish_run`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from reviewbot.config import Settings
from reviewbot.service.db import Database, wall_clock
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


@dataclass(frozen=True)
class AddResult:
    mail_id: int
    created: bool  # False: the Message-ID was already stored (idempotent retry)


class Store(Database):
    """Typed queries of the service (mails, series, runs) on a :class:`Database`."""

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
    ) -> AddResult:
        """Store one mail durably, once per Message-ID.

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
                " author_email, thread_key, is_root, is_patch, version, total)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (message_id) DO NOTHING RETURNING id",
                (
                    meta.message_id, now, len(raw), sha256, raw, meta.subject[:500],
                    meta.author_email.lower(), meta.thread_key, int(meta.is_root),
                    int(meta.is_patch), meta.version, meta.total,
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
            "SELECT id, message_id, received_at, raw, thread_key FROM mails WHERE id = ?",
            (mail_id,),
        )
        return _stored_mail(rows[0]) if rows else None

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
            "SELECT id, message_id, received_at, raw, thread_key FROM mails"
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
            " ORDER BY id LIMIT ?",
            (received_before, limit),
        )
        return [int(r[0]) for r in rows]

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

    def series_rows(self, where: str = "", params: Sequence[Any] = (), limit: int = 100) -> list[
        dict[str, Any]
    ]:
        cols = (
            "id, series_id, thread_key, version, subject, subject_key, author, change_id,"
            " expected, present, missing, message_ids, content_hash, state, reason,"
            " superseded_by, run_id, first_seen, updated_at"
        )
        sql = f"SELECT {cols} FROM series"
        if where:
            sql += f" WHERE {where}"
        sql += " ORDER BY updated_at DESC, id DESC LIMIT ?"
        rows = self.query(sql, (*params, limit))
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
        if key.isdigit():
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

    # -- runs -----------------------------------------------------------------------------

    def create_run(
        self,
        series_row: int,
        series_id: str,
        content_hash: str,
        message_ids: Sequence[str],
        *,
        missing: Sequence[int] = (),
        now: float | None = None,
    ) -> tuple[int, bool]:
        """Queue a review of this content; returns (run id, created).

        ``created`` is False when a run for the same content hash exists (whatever its
        state): the same patches are never reviewed twice.
        """
        now = wall_clock() if now is None else now
        with self.tx() as tx:
            rows = tx.fetchall(
                "INSERT INTO runs (series_row, series_id, content_hash, message_ids, partial,"
                " missing, state, created_at, enqueued_at)"
                " VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?)"
                " ON CONFLICT (content_hash) DO NOTHING RETURNING id",
                (
                    series_row, series_id, content_hash, json.dumps(list(message_ids)),
                    int(bool(missing)), json.dumps(list(missing)), now, now,
                ),
            )
            if rows:
                run_id, run_state, created = int(rows[0][0]), "queued", True
            else:
                found = tx.fetchall(
                    "SELECT id, state FROM runs WHERE content_hash = ?", (content_hash,)
                )
                run_id, run_state, created = int(found[0][0]), str(found[0][1]), False
                if run_state == "superseded":
                    # The same patches were dropped with an older series; this one is live.
                    tx.execute(
                        "UPDATE runs SET state = 'queued', series_row = ?, series_id = ?,"
                        " message_ids = ?, enqueued_at = ?, finished_at = NULL WHERE id = ?",
                        (series_row, series_id, json.dumps(list(message_ids)), now, run_id),
                    )
                    run_state, created = "queued", True
            series_state = {"finished": "reviewed", "failed": "failed"}.get(run_state, "queued")
            tx.execute(
                "UPDATE series SET run_id = ?, state = ?, updated_at = ?"
                " WHERE id = ? AND state <> 'superseded'",
                (run_id, series_state, now, series_row),
            )
        return run_id, created

    def claim_run(
        self, run_id: int, worker: str, lease_s: float, now: float | None = None
    ) -> str | None:
        """Take a queued run, or a running one whose lease expired; returns the lease token."""
        now = wall_clock() if now is None else now
        token = secrets.token_hex(16)
        with self.tx() as tx:
            n = tx.execute(
                "UPDATE runs SET state = 'running', lease_token = ?, lease_until = ?,"
                " worker = ?, attempts = attempts + 1, started_at = ?"
                " WHERE id = ? AND (state = 'queued'"
                " OR (state = 'running' AND lease_until < ?))",
                (token, now + lease_s, worker, now, run_id, now),
            )
        return token if n else None

    def renew_lease(self, run_id: int, token: str, lease_s: float) -> bool:
        with self.tx() as tx:
            n = tx.execute(
                "UPDATE runs SET lease_until = ? WHERE id = ? AND lease_token = ?"
                " AND state = 'running'",
                (wall_clock() + lease_s, run_id, token),
            )
        return n > 0

    def finish_run(
        self,
        run_id: int,
        token: str,
        *,
        state: str,
        result: dict[str, Any] | None,
        findings: int = 0,
        exit_code: int | None = None,
        error: str = "",
        replies: str = "none",
        reply_mails: Sequence[str] = (),
        now: float | None = None,
    ) -> bool:
        """Record the outcome if this worker still holds the lease; False when it lost it."""
        assert state in ("finished", "failed"), state
        now = wall_clock() if now is None else now
        with self.tx() as tx:
            n = tx.execute(
                "UPDATE runs SET state = ?, finished_at = ?, result = ?, findings = ?,"
                " exit_code = ?, error = ?, replies = ?, reply_mails = ?, replies_at = ?,"
                " lease_until = NULL"
                " WHERE id = ? AND lease_token = ? AND state = 'running'",
                (
                    state, now, json.dumps(result) if result is not None else None, findings,
                    exit_code, error[:4000], replies, json.dumps(list(reply_mails)), now,
                    run_id, token,
                ),
            )
            if n:
                tx.execute(
                    "UPDATE series SET state = ?, updated_at = ? WHERE run_id = ?"
                    " AND state IN ('waiting', 'queued')",
                    ("reviewed" if state == "finished" else "failed", now, run_id),
                )
        return n > 0

    def release_run(self, run_id: int, token: str, *, error: str, retry_at: float) -> bool:
        """Give a claimed run back to the queue (a transient failure) for a later attempt."""
        with self.tx() as tx:
            n = tx.execute(
                "UPDATE runs SET state = 'queued', lease_token = NULL, lease_until = NULL,"
                " error = ?, enqueued_at = ? WHERE id = ? AND lease_token = ?"
                " AND state = 'running'",
                (error[:4000], retry_at, run_id, token),
            )
        return n > 0

    def retry_run(self, run_id: int, now: float | None = None) -> tuple[str, str]:
        """Queue a failed run again (an operator fixed what made it fail).

        Returns ("queued", "") or (problem, reason) with problem "missing" or "conflict":
        only a failed run is retried; a finished one is the verdict for these patches, a
        queued or running one is already on its way, a superseded one has a newer version.
        """
        now = wall_clock() if now is None else now
        with self.tx() as tx:
            rows = tx.fetchall("SELECT state FROM runs WHERE id = ?", (run_id,))
            if not rows:
                return "missing", f"no run {run_id}"
            state = str(rows[0][0])
            if state != "failed":
                return "conflict", f"run {run_id} is {state}; only a failed run is retried"
            tx.execute(
                "UPDATE runs SET state = 'queued', attempts = 0, error = '', result = NULL,"
                " finished_at = NULL, started_at = NULL, lease_token = NULL, lease_until = NULL,"
                " enqueued_at = ? WHERE id = ? AND state = 'failed'",
                (now, run_id),
            )
            tx.execute(
                "UPDATE series SET state = 'queued', updated_at = ? WHERE run_id = ?"
                " AND state = 'failed'",
                (now, run_id),
            )
        return "queued", ""

    def try_lock(self, name: str, holder: str, ttl_s: float, now: float | None = None) -> bool:
        """Take a named lock unless someone else holds it and it has not expired."""
        now = wall_clock() if now is None else now
        with self.tx() as tx:
            rows = tx.fetchall(
                "INSERT INTO locks (name, holder, until) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                " until = excluded.until WHERE locks.until < ? OR locks.holder = ?"
                " RETURNING name",
                (name, holder, now + ttl_s, now, holder),
            )
        return bool(rows)

    def unlock(self, name: str, holder: str) -> None:
        with self.tx() as tx:
            tx.execute("DELETE FROM locks WHERE name = ? AND holder = ?", (name, holder))

    def set_replies(
        self, run_id: int, replies: str, detail: str = "", now: float | None = None
    ) -> None:
        with self.tx() as tx:
            tx.execute(
                "UPDATE runs SET replies = ?, replies_detail = ?, replies_at = ? WHERE id = ?",
                (replies, detail[:4000], wall_clock() if now is None else now, run_id),
            )

    def replies_to_resend(
        self, pending_before: float, failed_before: float
    ) -> list[tuple[int, list[str]]]:
        """(run id, rendered replies) of runs whose replies were never delivered."""
        rows = self.query(
            "SELECT id, reply_mails FROM runs WHERE state = 'finished' AND"
            " ((replies = 'pending' AND replies_at < ?) OR (replies = 'error' AND replies_at < ?))"
            " ORDER BY id LIMIT 100",
            (pending_before, failed_before),
        )
        return [(int(r[0]), list(json.loads(r[1] or "[]"))) for r in rows]

    def supersede_runs(self, series_row: int) -> int:
        """Drop queued (not running) runs of an older version; returns how many."""
        with self.tx() as tx:
            return tx.execute(
                "UPDATE runs SET state = 'superseded', finished_at = ? WHERE series_row = ?"
                " AND state = 'queued'",
                (wall_clock(), series_row),
            )

    def runs_to_requeue(self, now: float, queued_older_than: float | None) -> list[int]:
        """Runs a worker should (re)take: lease expired, or (when a time is given) queued
        since before ``queued_older_than`` and apparently lost with their task."""
        if queued_older_than is None:
            rows = self.query(
                "SELECT id FROM runs WHERE state = 'running' AND lease_until < ? ORDER BY id",
                (now,),
            )
        else:
            rows = self.query(
                "SELECT id FROM runs WHERE (state = 'running' AND lease_until < ?)"
                " OR (state = 'queued' AND enqueued_at < ?) ORDER BY id",
                (now, queued_older_than),
            )
        return [int(r[0]) for r in rows]

    def touch_enqueued(self, run_ids: Sequence[int], now: float | None = None) -> None:
        if not run_ids:
            return
        marks = ", ".join("?" for _ in run_ids)
        with self.tx() as tx:
            tx.execute(
                f"UPDATE runs SET enqueued_at = ? WHERE id IN ({marks}) AND state = 'queued'",
                (wall_clock() if now is None else now, *run_ids),
            )

    def run_rows(
        self, where: str = "", params: Sequence[Any] = (), limit: int = 100, *, result: bool = False
    ) -> list[dict[str, Any]]:
        cols = (
            "id, series_row, series_id, content_hash, message_ids, partial, missing, state,"
            " created_at, started_at, finished_at, lease_until, worker, attempts, findings,"
            " exit_code, error, replies, replies_detail"
        )
        if result:
            cols += ", result"
        sql = f"SELECT {cols} FROM runs"
        if where:
            sql += f" WHERE {where}"
        sql += " ORDER BY id DESC LIMIT ?"
        names = [c.strip() for c in cols.split(",")]
        out = []
        for r in self.query(sql, (*params, limit)):
            d = dict(zip(names, r, strict=True))
            d["message_ids"] = json.loads(d["message_ids"])
            d["missing"] = json.loads(d["missing"])
            d["partial"] = bool(d["partial"])
            if result:
                d["result"] = json.loads(d["result"]) if d["result"] else None
            out.append(d)
        return out

    def get_run(self, run_id: int) -> dict[str, Any] | None:
        rows = self.run_rows("id = ?", (run_id,), limit=1, result=True)
        return rows[0] if rows else None

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per state, for /metrics and /healthz."""
        out: dict[str, dict[str, int]] = {"runs": {}, "series": {}}
        for table in ("runs", "series"):
            for state, n in self.query(f"SELECT state, COUNT(*) FROM {table} GROUP BY state"):
                out[table][str(state)] = int(n)
        out["mails"] = {"stored": self.mail_count()}
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


def _stored_mail(r: Sequence[Any]) -> StoredMail:
    return StoredMail(int(r[0]), str(r[1]), float(r[2]), bytes(r[3]), str(r[4]))


def _like_escape(text: str) -> str:
    # A Message-ID never contains '%'; '_' matching any one character is harmless here.
    return text.replace("%", "")
