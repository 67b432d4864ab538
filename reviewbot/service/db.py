"""One code path for SQLite and PostgreSQL: connections, transactions, migrations.

SQL is written once with ``?`` placeholders; the PostgreSQL connection gets ``%s``. psycopg
is imported only when a ``postgresql://`` URL is configured, so the embedded default needs
nothing beyond the standard library.

Durability: SQLite runs with ``journal_mode=WAL`` and ``synchronous=FULL``, so a COMMIT has
fsynced the WAL before it returns; PostgreSQL commits are durable with its default
``synchronous_commit=on``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from reviewbot.errors import ConfigError, InfraError
from reviewbot.service.schema import MIGRATIONS, TYPE_WORDS

log = logging.getLogger(__name__)


def wall_clock() -> float:
    return time.time()


class Database:
    """A SQLite or PostgreSQL database behind one API. Thread-safe: a small connection pool.

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
            import psycopg  # optional: the PostgreSQL store (the 'service' extra)
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
        sql = sql.format(**TYPE_WORDS[self.dialect]) if "{" in sql else sql
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

    def migrate(self, migrations: Sequence[tuple[int, tuple[str, ...]]] = MIGRATIONS) -> int:
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
            for version, statements in migrations:
                if version in done:
                    continue
                for stmt in statements:
                    tx.execute(stmt)
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                    (version, wall_clock()),
                )
                log.info("store: applied migration %d", version)
        return self.schema_version()

    def schema_version(self) -> int:
        rows = self.query("SELECT MAX(version) FROM schema_migrations")
        return int(rows[0][0] or 0)


class _Tx:
    """A cursor inside :meth:`Store.tx` that speaks ``?`` on both databases."""

    def __init__(self, store: Database, cur: Any) -> None:
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
