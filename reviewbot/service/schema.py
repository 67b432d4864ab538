"""The service database schema: versioned migrations, written once for SQLite and PostgreSQL.

``{pk}`` and ``{blob}`` are the only words that differ between the two; everything else is
common SQL. Never edit an applied migration: append a new version.
"""

from __future__ import annotations

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
    (
        4,
        (
            # The message as assembly keeps it (reviewbot.mail.stored), written by the
            # first intake that parses the mail: later assemblies of the thread and the
            # review read it instead of parsing the raw mail again.
            "ALTER TABLE mails ADD COLUMN parsed {blob}",
        ),
    ),
    (
        5,
        (
            # A mail whose intake fails every time (a bug meeting hostile input) is set
            # aside after QUARANTINE_AFTER failures, with the error, instead of stopping
            # every sweep; the API, the page and the metrics show it.
            "ALTER TABLE mails ADD COLUMN intake_failures INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE mails ADD COLUMN quarantined TEXT",
        ),
    ),
    (
        6,
        (
            # Threads fetched from the archive to complete partial series (mbox, or the
            # failure as error): every worker reads them here, so that a thread is fetched
            # at most once per service.series_wait_s however many workers review it.
            """CREATE TABLE archive_threads (
                root TEXT PRIMARY KEY,
                fetched_at DOUBLE PRECISION NOT NULL,
                mbox {blob},
                error TEXT NOT NULL DEFAULT ''
            )""",
        ),
    ),
)

TYPE_WORDS = {
    "sqlite": {"pk": "INTEGER PRIMARY KEY AUTOINCREMENT", "blob": "BLOB"},
    "postgresql": {"pk": "BIGSERIAL PRIMARY KEY", "blob": "BYTEA"},
}
