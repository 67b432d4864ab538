"""Queries on the ``runs`` table (and the named locks): queueing, leases, results, retries.

Exactly-once reviews: ``runs.content_hash`` is UNIQUE, so a series whose patches are the
same is never queued twice; a run is executed under a lease with a random token, and only
the holder of the current token can record a result (:meth:`RunQueries.finish_run`).
:class:`reviewbot.service.store.Store` adds the mails and series on top of these.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from typing import Any

from reviewbot.service.db import Database, wall_clock


class RunQueries(Database):
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
        assert state in ("finished", "failed", "superseded"), state
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
                    ({"finished": "reviewed", "failed": "failed"}.get(state, "superseded"), now,
                     run_id),
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
