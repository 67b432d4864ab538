"""What a corpus scan remembers between runs, in one SQLite file per source.

Tables (schema version in ``meta``):
  scans       one row per run: when, how far, counts
  positions   where the next run continues: ``epoch:N`` -> last commit scanned, or
              ``file:REL`` -> {size, mtime_ns, messages} of a mail file
  pending     raw mail of threads still open when the last run ended (their series may
              grow), re-read at the start of the next run; bounded by the thread window
  series      series already reviewed, keyed by content, so nothing is reviewed twice
  findings    the current set of findings, keyed by (series, fingerprint); a row remembers
              the scan that first saw it and the scan in which it disappeared

"New since the previous scan" and "disappeared" are set differences on fingerprints, which
ignore line numbers (NIPA's trick), so a rebased but unchanged finding is neither.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reviewbot.errors import InfraError
from reviewbot.lock import FileLock, holder_of, try_lock
from reviewbot.model import Finding, Series

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started REAL NOT NULL,
    finished REAL,
    full INTEGER NOT NULL DEFAULT 0,
    since TEXT,
    messages INTEGER NOT NULL DEFAULT 0,
    reviewed INTEGER NOT NULL DEFAULT 0,
    rules_hash TEXT NOT NULL DEFAULT '',
    positions TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS positions (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending (
    bucket TEXT NOT NULL, seq INTEGER NOT NULL, source TEXT NOT NULL, raw BLOB NOT NULL,
    PRIMARY KEY (bucket, seq)
);
CREATE TABLE IF NOT EXISTS series (
    series_key TEXT PRIMARY KEY,
    series_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    subject TEXT NOT NULL,
    author TEXT NOT NULL,
    patches INTEGER NOT NULL,
    expected INTEGER NOT NULL,
    scan_id INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS series_by_id ON series(series_id);
CREATE TABLE IF NOT EXISTS findings (
    series_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    record TEXT NOT NULL,
    first_scan INTEGER NOT NULL,
    last_scan INTEGER NOT NULL,
    gone_scan INTEGER,
    PRIMARY KEY (series_id, fingerprint)
);
CREATE INDEX IF NOT EXISTS findings_first ON findings(first_scan);
CREATE INDEX IF NOT EXISTS findings_gone ON findings(gone_scan);
"""


def state_file(state_root: Path, source: Path) -> Path:
    """``{state}/scan/<name>-<hash>.sqlite``: one per source, the name kept readable."""
    resolved = str(source.resolve())
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", source.resolve().name or "root")[:40]
    digest = hashlib.sha256(resolved.encode()).hexdigest()[:12]
    return state_root / "scan" / f"{name}-{digest}.sqlite"


@dataclass(frozen=True)
class FindingChange:
    """A finding as the report lists it: what, where, and in which posting."""

    record: dict[str, Any]

    @property
    def rule(self) -> str:
        return str(self.record["rule"])

    @property
    def severity(self) -> str:
        return str(self.record["severity"])


class ScanState:
    """Open (create, migrate) and lock the state of one source.

    The lock is an exclusive ``flock`` on ``<db>.lock``: cron and the service's periodic
    task may both fire, and two scans of one source would review everything twice.

    Raises:
        InfraError: the file cannot be created, or another scan holds the lock.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        lock = try_lock(path.with_name(path.name + ".lock"))
        if lock is None:
            holder = holder_of(path.with_name(path.name + ".lock"))
            raise InfraError(f"another scan is running on this source (lock {path}.lock"
                             + (f", {holder})" if holder else ")"))
        self._lock: FileLock | None = lock
        try:
            self.db = sqlite3.connect(path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.Error as exc:
            self.close()
            raise InfraError(f"scan state {path} is unusable: {exc}") from exc

    def _migrate(self) -> None:
        row = self.db.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None:
            self.db.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise InfraError(
                f"scan state {self.path} has schema {row[0]}, newer than this reviewbot "
                f"({SCHEMA_VERSION}); upgrade reviewbot or use another state_dir"
            )

    def close(self) -> None:
        if getattr(self, "db", None) is not None:
            self.db.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> ScanState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scans ----------------------------------------------------------------------------

    def previous_scan(self) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT id, started, finished, rules_hash FROM scans WHERE finished IS NOT NULL "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return {"id": row[0], "started": row[1], "finished": row[2], "rules_hash": row[3]}

    def begin_scan(self, *, full: bool, since: str | None, rules_hash: str) -> int:
        cur = self.db.execute(
            "INSERT INTO scans (started, full, since, rules_hash) VALUES (?, ?, ?, ?)",
            (time.time(), int(full), since, rules_hash),
        )
        return int(cur.lastrowid or 0)

    # -- positions ------------------------------------------------------------------------

    def positions(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.db.execute("SELECT key, value FROM positions")}

    # -- pending threads ------------------------------------------------------------------

    def pending(self) -> Iterator[tuple[str, str, bytes]]:
        """(bucket, source, raw) of every mail of the threads left open, in arrival order."""
        for bucket, source, blob in self.db.execute(
            "SELECT bucket, source, raw FROM pending ORDER BY seq"
        ):
            yield bucket, source, zlib.decompress(blob)

    # -- series and findings --------------------------------------------------------------

    def reviewed(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM series WHERE series_key=?", (key,)).fetchone() is not None

    def record_review(
        self, scan_id: int, series: Series, key: str, findings: list[dict[str, Any]]
    ) -> tuple[int, int]:
        """Store one series' findings; returns (new, disappeared) for this series.

        Findings of the same series_id seen before and not produced now are marked gone in
        this scan; a finding that comes back after being gone counts as new again.
        """
        new = gone = 0
        with self.db:
            self.db.execute("BEGIN")
            self.db.execute(
                "INSERT OR REPLACE INTO series VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key, series.series_id, series.version, series.subject, series.author,
                 len(series.patches), series.expected, scan_id),
            )
            current = {
                fp: gone_scan
                for fp, gone_scan in self.db.execute(
                    "SELECT fingerprint, gone_scan FROM findings WHERE series_id=?",
                    (series.series_id,),
                )
            }
            produced: set[str] = set()
            for rec in findings:
                fp = str(rec["fingerprint"])
                if fp in produced:
                    continue  # same finding twice in one series: one row, one report line
                produced.add(fp)
                if fp not in current or current[fp] is not None:
                    new += 1
                    self.db.execute(
                        "INSERT OR REPLACE INTO findings VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                        (series.series_id, fp, rec["rule"], rec["severity"],
                         json.dumps(rec, sort_keys=True), scan_id, scan_id),
                    )
                else:
                    self.db.execute(
                        "UPDATE findings SET last_scan=?, record=? WHERE series_id=? AND fingerprint=?",
                        (scan_id, json.dumps(rec, sort_keys=True), series.series_id, fp),
                    )
            for fp, gone_scan in current.items():
                if gone_scan is None and fp not in produced:
                    gone += 1
                    self.db.execute(
                        "UPDATE findings SET gone_scan=? WHERE series_id=? AND fingerprint=?",
                        (scan_id, series.series_id, fp),
                    )
        return new, gone

    def finish_scan(
        self,
        scan_id: int,
        *,
        full: bool,
        positions: dict[str, Any],
        pending: list[tuple[str, str, bytes]],
        messages: int,
        reviewed: int,
    ) -> None:
        """Commit the new position and the open threads in one transaction.

        Until this commits, the previous position stands: a scan killed halfway starts
        again from there and skips the series it already reviewed (by content key).
        """
        with self.db:
            self.db.execute("BEGIN")
            if full:
                # A full rescan re-reviewed everything still in the source: what it did not
                # produce again has disappeared (a rule was fixed, a mail was purged).
                self.db.execute(
                    "UPDATE findings SET gone_scan=? WHERE gone_scan IS NULL AND last_scan<?",
                    (scan_id, scan_id),
                )
                self.db.execute("DELETE FROM positions")
            for key, value in positions.items():
                self.db.execute(
                    "INSERT OR REPLACE INTO positions VALUES (?, ?)", (key, json.dumps(value))
                )
            self.db.execute("DELETE FROM pending")
            self.db.executemany(
                "INSERT INTO pending VALUES (?, ?, ?, ?)",
                [(b, i, src, zlib.compress(raw)) for i, (b, src, raw) in enumerate(pending)],
            )
            self.db.execute(
                "UPDATE scans SET finished=?, messages=?, reviewed=?, positions=? WHERE id=?",
                (time.time(), messages, reviewed, json.dumps(positions, sort_keys=True), scan_id),
            )

    def changes(self, scan_id: int) -> tuple[list[FindingChange], list[FindingChange]]:
        """(new, disappeared) findings of one scan, in a stable order."""
        new = [
            FindingChange(json.loads(r))
            for (r,) in self.db.execute(
                "SELECT record FROM findings WHERE first_scan=? AND gone_scan IS NULL "
                "ORDER BY rule, series_id, fingerprint", (scan_id,)
            )
        ]
        gone = [
            FindingChange(json.loads(r))
            for (r,) in self.db.execute(
                "SELECT record FROM findings WHERE gone_scan=? ORDER BY rule, series_id, fingerprint",
                (scan_id,),
            )
        ]
        return new, gone

    def counts_by_rule(self, scan_id: int) -> dict[str, dict[str, int]]:
        """Per rule: findings present now, new in this scan, gone in this scan."""
        out: dict[str, dict[str, int]] = {}
        for rule, total, new, gone in self.db.execute(
            "SELECT rule, "
            " SUM(gone_scan IS NULL), "
            " SUM(first_scan=? AND gone_scan IS NULL), "
            " SUM(gone_scan=?) "
            "FROM findings GROUP BY rule ORDER BY rule",
            (scan_id, scan_id),
        ):
            if total or new or gone:
                out[rule] = {"total": int(total or 0), "new": int(new or 0),
                             "disappeared": int(gone or 0)}
        return out


def finding_record(series: Series, finding: Finding) -> dict[str, Any]:
    """The JSON a scan stores and reports for one finding (no line-number-free guesswork:
    ``line`` is kept for the reader; the key is the fingerprint)."""
    record = finding.to_json()
    record["series_id"] = series.series_id
    record["series_subject"] = series.subject
    record["version"] = series.version
    record["patch_index"] = finding.patch_index
    slot = series.slots[finding.patch_index] if finding.patch_index is not None and \
        0 < finding.patch_index < len(series.slots) else None
    target = getattr(slot, "message", None) or series.cover or (
        series.patches[0].message if series.patches else None
    )
    record["message_id"] = target.message_id if target is not None else series.series_id
    record["subject"] = target.subject.raw if target is not None else series.subject
    record["date"] = target.date.isoformat() if target is not None and target.date else None
    return record
