"""Faults with PostgreSQL and Redis (both real, started here): kill -9 of workers, kill -9
of Redis (restarted without persistence: its queued tasks are gone), and a restart of
PostgreSQL, all while mail arrives. Nothing acknowledged is lost and every series ends
with exactly one finished review.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import _pg_bin, _user_exists
from service_mails import series_mails
from service_support import free_port

from reviewbot.service.auth import signed_headers
from reviewbot.service.store import Store

pytestmark = pytest.mark.slow  # about two minutes: three servers restarted under load

SERIES = 12
PATCHES = 4


class Restartable:
    """One server process that can be killed and started again on the same port."""

    def __init__(self, argv: list[str], ready: Any, log: Path) -> None:
        self.argv, self.ready, self.log = argv, ready, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.time() + 30
        while not self.ready():
            assert self.proc.poll() is None and time.time() < deadline, self.log.read_text()[-2000:]
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=60)


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[tuple[str, Restartable]]:
    binary = shutil.which("redis-server")
    if not binary:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    import redis

    port = free_port()
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1)

    def ready() -> bool:
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False

    server = Restartable([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--dir", str(tmp_path)], ready,
                         tmp_path / "redis.log")
    server.start()
    yield f"redis://127.0.0.1:{port}/0", server
    server.stop()


@pytest.fixture()
def pg_server() -> Iterator[tuple[str, Restartable]]:
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if not initdb or not postgres:
        pytest.skip("PostgreSQL server binaries (initdb, postgres) are not installed")
    psycopg = pytest.importorskip("psycopg")
    base = Path(tempfile.mkdtemp(prefix="reviewbot-pgf-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        import pwd

        user = "postgres" if _user_exists("postgres") else "nobody"
        pw = pwd.getpwnam(user)
        os.chown(base, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", user, "--"]
    subprocess.run([*prefix, initdb, "-D", str(base / "data"), "-U", "reviewbot",
                    "--auth=trust", "-E", "UTF8"], check=True, capture_output=True, timeout=120)
    port = free_port()
    url = f"postgresql://reviewbot@127.0.0.1:{port}/postgres"

    def ready() -> bool:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return True
        except psycopg.OperationalError:
            return False

    log = base / "pg.log"
    server = Restartable([*prefix, postgres, "-D", str(base / "data"), "-p", str(port),
                          "-h", "127.0.0.1", "-k", str(base), "-c", "fsync=on"], ready, log)
    server.start()
    try:
        yield url, server
    finally:
        server.stop(signal.SIGINT)
        shutil.rmtree(base, ignore_errors=True)


def test_restarts_of_postgresql_and_redis_and_kill9_of_workers_lose_nothing(
        service_factory: Any, pg_server: tuple[str, Restartable],
        redis_server: tuple[str, Restartable]) -> None:
    seed = int(os.environ.get("REVIEWBOT_KILL_SEED", random.randrange(1 << 30)))
    print(f"REVIEWBOT_KILL_SEED={seed}")
    rng = random.Random(seed)
    pg_url, pg = pg_server
    redis_url, rds = redis_server
    svc = service_factory(lease_s=3, sweep_interval_s=0.5, worker_threads=1,
                          database_url=pg_url, redis_url=redis_url)
    svc.start_server()
    svc.start_worker("w1")
    svc.start_worker("w2")
    tags = [f"pf-{i:02d}" for i in range(SERIES)]
    mails = [(f"{tag}-v1-{n}@example.org", raw) for tag in tags
             for n, raw in enumerate(series_mails(tag, PATCHES, buggy=(hash(tag) % 3 == 0)))]
    rng.shuffle(mails)
    acked: dict[str, int] = {}
    refused: list[tuple[str, int, str]] = []
    errors = Counter[int]()
    posting_done = threading.Event()
    faults = Counter[str]()

    def poster() -> None:
        pending = list(mails)
        last_ts: dict[str, int] = {}
        deadline = time.time() + 240
        while pending and time.time() < deadline:
            msgid, raw = pending.pop(0)
            ts = max(int(time.time()), last_ts.get(msgid, 0) + 1)
            last_ts[msgid] = ts
            headers = {"Content-Type": "message/rfc822", **signed_headers(svc.secret, raw, ts)}
            try:
                resp = requests.post(svc.url + "/v1/mail", data=raw, headers=headers, timeout=10)
            except requests.RequestException:
                pending.append((msgid, raw))
                time.sleep(0.1)
                continue
            if resp.status_code in (200, 202, 409):
                acked[msgid] = resp.status_code
            elif resp.status_code == 503:  # the database is restarting: the MTA retries
                assert resp.headers["Retry-After"] == "5"
                errors[resp.status_code] += 1
                pending.append((msgid, raw))
                time.sleep(0.2)
            else:
                refused.append((msgid, resp.status_code, resp.text))
            time.sleep(rng.uniform(0.15, 0.45))  # ~20 s of arrivals: the faults fall in it
        posting_done.set()

    def killer() -> None:
        schedule = ["redis", "w1", "postgres", "w2", "redis", "postgres", "w1"]
        for fault in schedule:
            time.sleep(rng.uniform(0.8, 2.0))
            if not posting_done.is_set():
                faults["during arrival"] += 1
            if fault == "redis":
                rds.stop()  # kill -9, no persistence: every queued task is lost
                time.sleep(rng.uniform(0.2, 1.0))
                rds.start()
            elif fault == "postgres":
                pg.stop(signal.SIGINT)  # a restart ("fast" shutdown), as an upgrade does
                time.sleep(rng.uniform(0.2, 1.0))
                pg.start()
            else:
                svc.kill9(svc.workers[fault])
                time.sleep(rng.uniform(0.0, 0.5))
                svc.start_worker(fault)
            faults[fault] += 1

    threads = [threading.Thread(target=poster), threading.Thread(target=killer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    print(f"faults: {dict(faults)}, 5xx answers retried: {dict(errors)}")
    assert posting_done.is_set() and faults["postgres"] == 2 and faults["redis"] == 2
    assert faults["during arrival"] >= 5, faults
    assert set(errors) <= {503}  # a store outage is "try again", never a 500
    assert not refused, refused[:5]
    assert len(acked) == len(mails)

    svc.wait_healthy()
    store = Store(pg_url)
    deadline = time.time() + 90
    while store.query("SELECT COUNT(*) FROM mails WHERE assembled_at IS NULL")[0][0]:
        assert time.time() < deadline, "mails left unassembled"
        time.sleep(0.3)
    runs = svc.wait_runs(SERIES, timeout=120)
    stored = {r[0] for r in store.query("SELECT message_id FROM mails")}
    assert stored == set(acked)  # every acknowledged mail survived
    assert len(runs) == SERIES and all(r["state"] == "finished" for r in runs)
    assert len({r["content_hash"] for r in runs}) == SERIES  # one review per series
    assert Counter(s["state"] for s in store.series_rows(limit=1000)) == Counter(
        {"reviewed": SERIES})
    assert store.quarantined_mails() == []
    store.close()
