"""A base's facts as stored: one SQLite file per base, commit and kernel.yaml digest,
read a name at a time (facts/build.py writes it)."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

from reviewbot.facts.tables import Facts

__all__ = ["SCHEMA", "StoredFacts"]

# The cache of a base's facts: SQLite, so that a review reads the few names it asks about
# (a whole base is 30,000 entries; loading them all would cost a rules-only review more
# than its rules do).
SCHEMA = """
CREATE TABLE sleeps (path TEXT NOT NULL, name TEXT NOT NULL, chain TEXT NOT NULL,
                     PRIMARY KEY (path, name)) WITHOUT ROWID;
CREATE TABLE locals (path TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (path, name)) WITHOUT ROWID;
CREATE TABLE locks (name TEXT PRIMARY KEY, locks TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE unlocks (name TEXT PRIMARY KEY, locks TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE keeps (name TEXT PRIMARY KEY, locks TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE requires (name TEXT PRIMARY KEY, locks TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE lock_order (pair TEXT PRIMARY KEY, example TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE irq_locks (name TEXT PRIMARY KEY, context TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE releases (name TEXT PRIMARY KEY, params TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE acquires (name TEXT PRIMARY KEY, params TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE unaccounted (name TEXT PRIMARY KEY, alloc TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE works (name TEXT PRIMARY KEY, functions TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE indirect (name TEXT PRIMARY KEY, params TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE callbacks (name TEXT PRIMARY KEY, context TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE returns (name TEXT PRIMARY KEY, ref TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE preempt (name TEXT PRIMARY KEY, chain TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE field_locks (name TEXT PRIMARY KEY, lock TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE irq_shared (name TEXT PRIMARY KEY, sites TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE cond_keeps (name TEXT PRIMARY KEY, locks TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE slab_caches (name TEXT PRIMARY KEY, kind TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE ops_sleeps (name TEXT PRIMARY KEY, chain TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE ops_fields (name TEXT PRIMARY KEY, type TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE ops_locks (name TEXT PRIMARY KEY, locks TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE ops_context (name TEXT PRIMARY KEY, context TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE names (name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE rcu_needs (name TEXT PRIMARY KEY, need TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE rcu_opens (name TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE meta (revision TEXT, digest TEXT, stats TEXT, rcu_fields TEXT, rcu_iters TEXT);
"""


class StoredFacts(Facts):
    """A base's facts read on demand from their SQLite cache (answers are memoised)."""

    def __init__(self, path: Path) -> None:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        revision, digest, stats, rcu, iters = con.execute(
            "SELECT revision, digest, stats, rcu_fields, rcu_iters FROM meta").fetchone()
        super().__init__(revision=revision, digest=digest, stats=json.loads(stats),
                         rcu_fields=json.loads(rcu), rcu_iters=json.loads(iters))
        self.rcu_set = frozenset(self.rcu_fields)
        self.con = con
        self.lock = threading.Lock()  # one connection shared by a worker's threads
        self.memo: dict[tuple[str, tuple[str, ...]], Any] = {}

    def defines(self, name: str) -> bool:
        key = ("SELECT name FROM names WHERE name = ?", (name,))
        if key not in self.memo:
            with self.lock:
                self.memo[key] = self.con.execute(key[0], key[1]).fetchone() is not None
        return bool(self.memo[key])

    def _one(self, table: str, sql: str, *args: str) -> Any:
        key = (sql, args)
        if key not in self.memo:
            with self.lock:
                row = self.con.execute(sql, args).fetchone()
            self.memo[key] = json.loads(row[0]) if row else None
        return self.memo[key]

    def sleep_chain(self, name: str, path: str | None = None) -> list[str] | None:
        if path is not None:
            local = self._one("sleeps", "SELECT chain FROM sleeps WHERE path = ? AND name = ?", path, name)
            if local is not None:
                return list(local)
            key = ("locals", (path, name))
            if key not in self.memo:  # asked for every call the context walk meets
                with self.lock:
                    row = self.con.execute(
                        "SELECT 1 FROM locals WHERE path = ? AND name = ?", (path, name)).fetchone()
                self.memo[key] = row is not None
            if self.memo[key]:
                return None
        found = self._one("sleeps", "SELECT chain FROM sleeps WHERE path = '' AND name = ?", name)
        return list(found) if found is not None else None

    def locks_taken(self, name: str) -> dict[str, list[str]]:
        return dict(self._one("locks", "SELECT locks FROM locks WHERE name = ?", name) or {})

    def is_rcu_field(self, name: str) -> bool:
        return name in self.rcu_set

    def unaccounted_alloc(self, name: str) -> list[str] | None:
        found = self._one("unaccounted", "SELECT alloc FROM unaccounted WHERE name = ?", name)
        return list(found) if found is not None else None

    def preempt_table(self) -> dict[str, list[str]]:
        # A few thousand rows, read whole once: asked about every call of a function with
        # per-CPU work in it, where one query each would cost more than the answer.
        if not self.preempt:
            with self.lock:
                rows = self.con.execute("SELECT name, chain FROM preempt").fetchall()
            self.preempt = {n: json.loads(c) for n, c in rows} or {"": []}
        return self.preempt

    def slab_cache(self, name: str) -> str:
        found = self._one("slab_caches", "SELECT kind FROM slab_caches WHERE name = ?", name)
        return str(found[0]) if found else ""

    def irq_context_of(self, lock: str) -> list[str] | None:
        found = self._one("irq_locks", "SELECT context FROM irq_locks WHERE name = ?", lock)
        return list(found) if found else None

    def work_functions(self, member: str) -> list[list[str]]:
        return list(self._one("works", "SELECT functions FROM works WHERE name = ?", member) or [])

    def nested_in(self, outer: str, inner: str) -> str | None:
        key = (f"{outer} {inner}",)
        if ("order", key) not in self.memo:
            with self.lock:
                row = self.con.execute("SELECT example FROM lock_order WHERE pair = ?", key).fetchone()
            self.memo[("order", key)] = row[0] if row else None
        found = self.memo[("order", key)]
        return str(found) if found else None

    def locks_required(self, name: str) -> dict[str, list[str]]:
        return dict(self._one("requires", "SELECT locks FROM requires WHERE name = ?", name) or {})

    def callback_params(self, name: str) -> dict[str, list[str]]:
        return dict(self._one("indirect", "SELECT params FROM indirect WHERE name = ?", name) or {})

    def callback_context(self, name: str) -> list[str]:
        return list(self._one("callbacks", "SELECT context FROM callbacks WHERE name = ?", name) or [])

    def field_lock(self, name: str) -> list[str]:
        return list(self._one("field_locks", "SELECT lock FROM field_locks WHERE name = ?", name) or [])

    def irq_shared_lock(self, lock: str) -> list[str]:
        return list(self._one("irq_shared", "SELECT sites FROM irq_shared WHERE name = ?", lock) or [])

    def locks_kept_if(self, name: str) -> dict[str, list[str]]:
        return dict(self._one("cond_keeps", "SELECT locks FROM cond_keeps WHERE name = ?", name) or {})

    def locks_kept(self, name: str) -> dict[str, list[str]]:
        return dict(self._one("keeps", "SELECT locks FROM keeps WHERE name = ?", name) or {})

    def locks_released(self, name: str) -> dict[str, list[str]]:
        return dict(self._one("unlocks", "SELECT locks FROM unlocks WHERE name = ?", name) or {})

    def released_params(self, name: str) -> dict[int, str]:
        found = self._one("releases", "SELECT params FROM releases WHERE name = ?", name) or {}
        return {int(k): v for k, v in found.items()}

    def returned_ref(self, name: str) -> list[str]:
        return list(self._one("returns", "SELECT ref FROM returns WHERE name = ?", name) or [])

    def ops_sleep(self, member: str) -> list[str] | None:
        found = self._one("ops_sleeps", "SELECT chain FROM ops_sleeps WHERE name = ?", member)
        return list(found) if found is not None else None

    def ops_lock(self, member: str) -> dict[str, list[str]]:
        return dict(self._one("ops_locks", "SELECT locks FROM ops_locks WHERE name = ?", member) or {})

    def ops_entry(self, member: str) -> list[str]:
        return list(self._one("ops_context", "SELECT context FROM ops_context WHERE name = ?", member) or [])

    def field_type(self, owner: str, name: str) -> str | None:
        found = self._one("ops_fields", "SELECT type FROM ops_fields WHERE name = ?", f"{owner}.{name}")
        return str(found) if found is not None else None

    def rcu_need(self, name: str) -> tuple[tuple[str, ...], list[str]] | None:
        found = self._one("rcu_needs", "SELECT need FROM rcu_needs WHERE name = ?", name)
        return (tuple(found[0]), list(found[1])) if found else None

    def opens_rcu(self, name: str) -> bool:
        key = ("SELECT name FROM rcu_opens WHERE name = ?", (name,))
        if key not in self.memo:
            with self.lock:
                self.memo[key] = self.con.execute(key[0], key[1]).fetchone() is not None
        return bool(self.memo[key])

    def acquired_params(self, name: str) -> dict[int, str]:
        found = self._one("acquires", "SELECT params FROM acquires WHERE name = ?", name) or {}
        return {int(k): v for k, v in found.items()}
