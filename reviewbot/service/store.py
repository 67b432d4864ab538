"""Durable state of the service: mails, series and runs, in SQLite (WAL) or PostgreSQL.

One code path for both: SQL is written once with ``?`` placeholders and a couple of type
words that differ (``{pk}``, ``{blob}``); the PostgreSQL connection gets ``%s``. psycopg is
imported only when a ``postgresql://`` URL is configured, so the embedded default needs
nothing beyond the standard library.

Durability: SQLite runs with ``journal_mode=WAL`` and ``synchronous=FULL``, so a COMMIT has
fsynced the WAL before it returns; PostgreSQL commits are durable with its default
``synchronous_commit=on``. The webhook answers 202 only after :meth:`Store.add_mail` returned.

Exactly-once reviews: ``runs.content_hash`` is UNIQUE, so a series whose patches are the same
is never queued twice; a run is executed under a lease with a random token, and only the
holder of the current token can record a result (:meth:`Store.finish_run`).
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reviewbot.config import Settings
from reviewbot.errors import ConfigError, InfraError

log = logging.getLogger(__name__)

RUN_STATES = ("queued", "running", "finished", "failed", "superseded")
SERIES_STATES = ("waiting", "queued", "reviewed", "failed", "superseded")

# Versioned migrations: (version, statements). Never edit an applied entry; append one.
MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (
        1,
        (
            """CREATE TABLE mails (
                id {pk},
                message_id TEXT NOT NULL UNIQUE,
                received_at DOUBLE PRECISION NOT NULL,
                size BIGINT NOT NULL,
                sha256 TEXT NOT NULL,
                raw {blob} NOT NULL,
                subject TEXT NOT NULL DEFAULT '',
                author_email TEXT NOT NULL DEFAULT '',
                thread_key TEXT NOT NULL,
                is_root INTEGER NOT NULL DEFAULT 0,
                is_patch INTEGER NOT NULL DEFAULT 0,
                version INTEGER NOT NULL DEFAULT 1,
                total INTEGER NOT NULL DEFAULT 1,
                assembled_at DOUBLE PRECISION
            )""",
            "CREATE INDEX mails_thread ON mails (thread_key)",
            "CREATE INDEX mails_unassembled ON mails (assembled_at, received_at)",
            "CREATE INDEX mails_unthreaded ON mails (author_email, version, total, is_root)",
            """CREATE TABLE series (
                id {pk},
                series_id TEXT NOT NULL,
                thread_key TEXT NOT NULL,
                version INTEGER NOT NULL,
                subject TEXT NOT NULL,
                subject_key TEXT NOT NULL,
                author TEXT NOT NULL,
                change_id TEXT,
                expected INTEGER NOT NULL,
                present INTEGER NOT NULL,
                missing TEXT NOT NULL DEFAULT '[]',
                message_ids TEXT NOT NULL DEFAULT '[]',
                content_hash TEXT NOT NULL DEFAULT '',
                state TEXT NOT NULL,
                reason TEXT NOT NULL DEFAULT '',
                superseded_by BIGINT,
                run_id BIGINT,
                first_seen DOUBLE PRECISION NOT NULL,
                updated_at DOUBLE PRECISION NOT NULL,
                UNIQUE (thread_key, version)
            )""",
            "CREATE INDEX series_series_id ON series (series_id)",
            "CREATE INDEX series_subject_key ON series (subject_key)",
            "CREATE INDEX series_state ON series (state, first_seen)",
            """CREATE TABLE runs (
                id {pk},
                series_row BIGINT NOT NULL,
                series_id TEXT NOT NULL,
                content_hash TEXT NOT NULL UNIQUE,
                message_ids TEXT NOT NULL,
                partial INTEGER NOT NULL DEFAULT 0,
                missing TEXT NOT NULL DEFAULT '[]',
                state TEXT NOT NULL,
                created_at DOUBLE PRECISION NOT NULL,
                enqueued_at DOUBLE PRECISION NOT NULL,
                started_at DOUBLE PRECISION,
                finished_at DOUBLE PRECISION,
                lease_until DOUBLE PRECISION,
                lease_token TEXT,
                worker TEXT NOT NULL DEFAULT '',
                attempts INTEGER NOT NULL DEFAULT 0,
                findings INTEGER NOT NULL DEFAULT 0,
                exit_code INTEGER,
                error TEXT NOT NULL DEFAULT '',
                result TEXT,
                replies TEXT NOT NULL DEFAULT 'none',
                replies_detail TEXT NOT NULL DEFAULT ''
            )""",
            "CREATE INDEX runs_state ON runs (state, enqueued_at)",
            "CREATE INDEX runs_series ON runs (series_row)",
            # Signatures seen inside the replay window: an identical request is refused.
            """CREATE TABLE nonces (
                signature TEXT PRIMARY KEY,
                seen_at DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
    (
        2,
        (
            # The rendered replies are committed with the result, so that a worker killed
            # before delivering them (or an SMTP outage) loses no reply: the sweep resends.
            "ALTER TABLE runs ADD COLUMN reply_mails TEXT NOT NULL DEFAULT '[]'",
            "ALTER TABLE runs ADD COLUMN replies_at DOUBLE PRECISION",
            "CREATE INDEX runs_replies ON runs (replies, replies_at)",
        ),
    ),
    (
        3,
        (
            # Named locks with an expiry, shared by every worker (e.g. one nightly scan).
            """CREATE TABLE locks (
                name TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                until DOUBLE PRECISION NOT NULL
            )""",
        ),
    ),
)

_TYPES = {
    "sqlite": {"pk": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB"},
    "postgresql": {"pk": "BIGSERIAL PRIMARY KEY", "blob": "BYTEA"},
}


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


def _now() -> float:
    return time.time()


class Store:
    """Typed access to the service database. Thread-safe: a small pool of connections.

    Args:
        url: ``sqlite:///ABS/PATH.db`` or ``postgresql://user@host/db``.
    """

    def __init__(self, url: str, *, busy_timeout_s: float = 30.0) -> None:
        self.url = url
        self.busy_timeout_s = busy_timeout_s
        if url.startswith("sqlite:///"):
            self.dialect = "sqlite"
            # SQLAlchemy convention: sqlite:///relative.db, sqlite:////absolute.db
            self.sqlite_path = Path(url[len("sqlite:///") :])
            self.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        elif url.startswith(("postgresql://", "postgres://")):
            self.dialect = "postgresql"
        else:
            raise ConfigError(
                f"service.database_url must be sqlite:///PATH or postgresql://..., got {url!r}"
            )
        self.max_idle = 16
        self._idle: list[Any] = []
        self._opened = 0
        self._closed = False
        self._pool_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        url = settings.service.database_url
        if not url:
            state = settings.path(settings.service.state_dir)
            url = f"sqlite:///{(state / 'reviewbot.db').resolve()}"
        store = cls(url)
        store.migrate()
        return store

    @property
    def display_url(self) -> str:
        """The URL without a password, for logs and /healthz."""
        if self.dialect == "postgresql" and "@" in self.url:
            scheme, rest = self.url.split("://", 1)
            creds, host = rest.rsplit("@", 1)
            return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
        return self.url

    # -- connections and transactions -----------------------------------------------------

    def _connect(self) -> Any:
        if self.dialect == "sqlite":
            conn = sqlite3.connect(
                self.sqlite_path,
                timeout=self.busy_timeout_s,
                isolation_level=None,  # explicit BEGIN below
                check_same_thread=False,
            )
            conn.execute("PRAGMA journal_mode=WAL")
            # FULL: the WAL is fsynced at every COMMIT, so a 202 survives a power cut.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
            conn.execute("PRAGMA foreign_keys=ON")
            return conn
        try:
            import psycopg
        except ImportError as exc:
            raise InfraError(
                "service.database_url is PostgreSQL but psycopg is not installed: "
                "pip install 'psycopg[binary]'"
            ) from exc
        try:
            return psycopg.connect(self.url, connect_timeout=int(self.busy_timeout_s))
        except psycopg.Error as exc:
            raise InfraError(f"cannot connect to {self.display_url}: {exc}") from exc

    @contextmanager
    def _checkout(self) -> Iterator[Any]:
        """Borrow a connection for one statement or transaction, then give it back.

        A pool rather than one connection per thread: the HTTP server's thread pool and the
        lease-renewal threads come and go, and per-thread connections would leak a file
        descriptor (or a PostgreSQL backend) with each thread that ends.
        """
        with self._pool_lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None:
            conn = self._connect()
            with self._pool_lock:
                self._opened += 1
        healthy = True
        try:
            yield conn
        except BaseException:
            healthy = not self._broken(conn)
            raise
        finally:
            with self._pool_lock:
                if healthy and len(self._idle) < self.max_idle and not self._closed:
                    self._idle.append(conn)
                    conn = None
                else:
                    self._opened -= 1
            if conn is not None:
                _close_quietly(conn)

    def _broken(self, conn: Any) -> bool:
        if self.dialect == "sqlite":
            return False
        return bool(conn.closed or conn.broken)

    def open_connections(self) -> int:
        """Connections currently open (idle in the pool or in use)."""
        with self._pool_lock:
            return self._opened

    def close(self) -> None:
        """Close idle connections; connections in use close when given back."""
        with self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._opened -= len(idle)
        for conn in idle:
            _close_quietly(conn)

    def _sql(self, sql: str) -> str:
        sql = sql.format(**_TYPES[self.dialect]) if "{" in sql else sql
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    @contextmanager
    def tx(self) -> Iterator[_Tx]:
        """One write transaction; commits (and, on SQLite, fsyncs the WAL) on exit."""
        with self._checkout() as conn:
            if self.dialect == "sqlite":
                # IMMEDIATE takes the write lock up front: no deadlock on a later upgrade.
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield _Tx(self, conn.cursor())
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            else:
                with conn.transaction(), conn.cursor() as cur:
                    yield _Tx(self, cur)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._checkout() as conn:
            if self.dialect == "sqlite":
                return list(conn.execute(self._sql(sql), tuple(params)).fetchall())
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(self._sql(sql), tuple(params))
                return list(cur.fetchall()) if cur.description else []

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> int:
        """Apply the migrations not yet applied; returns the schema version."""
        with self.tx() as tx:
            if self.dialect == "postgresql":
                # Two services starting at once: one migrates, the other waits here.
                tx.execute("SELECT pg_advisory_xact_lock(7512001)")
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)"
            )
            done = {int(r[0]) for r in tx.fetchall("SELECT version FROM schema_migrations")}
            for version, statements in MIGRATIONS:
                if version in done:
                    continue
                for stmt in statements:
                    tx.execute(stmt)
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, _now()),
                )
                log.info("store: applied migration %d", version)
        return self.schema_version()

    def schema_version(self) -> int:
        rows = self.query("SELECT MAX(version) FROM schema_migrations")
        return int(rows[0][0] or 0)

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
        now = _now() if now is None else now
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
        now = _now() if now is None else now
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
        now = _now() if now is None else now
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
        params: list[Any] = [state, reason, _now()]
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
        now = _now() if now is None else now
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
        now = _now() if now is None else now
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
                (_now() + lease_s, run_id, token),
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
        now = _now() if now is None else now
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

    def try_lock(self, name: str, holder: str, ttl_s: float, now: float | None = None) -> bool:
        """Take a named lock unless someone else holds it and it has not expired."""
        now = _now() if now is None else now
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
                (replies, detail[:4000], _now() if now is None else now, run_id),
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
                (_now(), series_row),
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
                (_now() if now is None else now, *run_ids),
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


class _Tx:
    """A cursor inside :meth:`Store.tx` that speaks ``?`` on both databases."""

    def __init__(self, store: Store, cur: Any) -> None:
        self._store = store
        self._cur = cur

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cur.execute(self._store._sql(sql), tuple(params))
        return int(self._cur.rowcount or 0)

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cur.execute(self._store._sql(sql), tuple(params))
        return list(self._cur.fetchall()) if self._cur.description else []


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # closing a broken connection: nothing left to do about it
        pass


def _stored_mail(r: Sequence[Any]) -> StoredMail:
    return StoredMail(int(r[0]), str(r[1]), float(r[2]), bytes(r[3]), str(r[4]))


def _like_escape(text: str) -> str:
    # A Message-ID never contains '%'; '_' matching any one character is harmless here.
    return text.replace("%", "")
