"""Reliability: kill -9 the server and the workers at random moments while 200 mails arrive.

Afterwards every mail that was acknowledged is stored, and every complete series has
exactly one finished review. Set REVIEWBOT_KILL_SEED to replay one schedule of kills.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
import requests
from service_mails import series_mails

from reviewbot.service.auth import signed_headers

SERIES = 40
PATCHES = 4  # + cover letter: 5 mails each, 200 in all


@pytest.mark.parametrize("queue", ["sqlite", "redis"])
def test_kill9_of_server_and_workers_loses_no_mail_and_reviews_each_series_once(
    service_factory: Any, queue: str, request: pytest.FixtureRequest
) -> None:
    seed = int(os.environ.get("REVIEWBOT_KILL_SEED", random.randrange(1 << 30)))
    print(f"REVIEWBOT_KILL_SEED={seed}")
    rng = random.Random(seed)
    extra: dict[str, Any] = {}
    if queue == "redis":
        # RedisHuey pops a task when a worker takes it: a worker killed right then loses
        # the task itself, and only the sweep brings the run back.
        import redis

        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()
        extra["redis_url"] = url
    svc = service_factory(lease_s=3, sweep_interval_s=0.5, worker_threads=1, **extra)
    svc.start_server()
    svc.start_worker("w1")
    svc.start_worker("w2")

    tags = [f"k9-{i:02d}" for i in range(SERIES)]
    mails: list[tuple[str, bytes]] = []
    for tag in tags:
        for n, raw in enumerate(series_mails(tag, PATCHES, buggy=(hash(tag) % 3 == 0))):
            mails.append((f"{tag}-v1-{n}@example.org", raw))
    rng.shuffle(mails)  # series interleaved, patches out of order
    assert len(mails) == 200

    acked: dict[str, int] = {}  # Message-ID -> status of the acknowledgement
    refused: list[tuple[str, int, str]] = []
    posting_done = threading.Event()
    kills = Counter[str]()

    def poster() -> None:
        pending = list(mails)
        last_ts: dict[str, int] = {}
        deadline = time.time() + 240
        while pending and time.time() < deadline:
            msgid, raw = pending.pop(0)
            # A new timestamp per attempt: an identical signature is refused as a replay.
            ts = max(int(time.time()), last_ts.get(msgid, 0) + 1)
            last_ts[msgid] = ts
            headers = {"Content-Type": "message/rfc822", **signed_headers(svc.secret, raw, ts)}
            try:
                resp = requests.post(svc.url + "/v1/mail", data=raw, headers=headers, timeout=5)
            except requests.RequestException:
                pending.append((msgid, raw))  # server down: try again later
                time.sleep(0.05)
                continue
            if resp.status_code in (200, 202, 409):
                acked[msgid] = resp.status_code
            elif resp.status_code >= 500:
                pending.append((msgid, raw))
            else:
                refused.append((msgid, resp.status_code, resp.text))
            time.sleep(rng.uniform(0.02, 0.08))
        posting_done.set()

    def busy_worker() -> str | None:
        """The worker holding a run right now, if one shows up within a second."""
        end = time.time() + 1.0
        while time.time() < end:
            try:
                running = requests.get(svc.url + "/v1/runs?state=running", timeout=2).json()
            except (requests.RequestException, ValueError):
                return None
            names = [r["worker"] for r in running["runs"] if r["worker"] in svc.workers]
            if names:
                kills["mid-review"] += 1
                return str(names[0])
            time.sleep(0.01)
        return None

    def enough() -> bool:
        return kills["server"] >= 2 and kills["w1"] + kills["w2"] >= 3

    def killer() -> None:
        k = 0
        # Mostly while mails arrive; if posting was quick, a few more after it.
        while not posting_done.is_set() or not enough():
            time.sleep(rng.uniform(0.8, 2.0))
            # Every third kill is the server's, so that each run kills both kinds; another
            # third hits a worker in the middle of a review, to exercise the lease.
            victim = "server" if k % 3 == 0 else rng.choice(["w1", "w2"])
            if k % 3 == 1:
                victim = busy_worker() or victim
            k += 1
            if victim == "server":
                svc.kill9(svc.server)
                kills["server"] += 1
                time.sleep(rng.uniform(0.0, 0.5))
                svc.start_server(wait=False)
            else:
                svc.kill9(svc.workers[victim])
                kills[victim] += 1
                time.sleep(rng.uniform(0.0, 0.5))
                svc.start_worker(victim)

    threads = [threading.Thread(target=poster), threading.Thread(target=killer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert posting_done.is_set()
    print(f"kills: {dict(kills)}")
    assert enough(), kills
    assert not refused, refused[:5]
    assert len(acked) == len(mails)

    svc.wait_healthy()
    runs = svc.wait_runs(SERIES, timeout=180)

    store = svc.store()
    # Runs can all be finished while a late cover letter still waits for its (lost) intake
    # task: the sweep assembles it within seconds.
    deadline = time.time() + 60
    while store.query("SELECT COUNT(*) FROM mails WHERE assembled_at IS NULL")[0][0]:
        assert time.time() < deadline, "mails left unassembled"
        time.sleep(0.2)
    runs = svc.wait_runs(SERIES, timeout=10)
    stored = {r[0] for r in store.query("SELECT message_id FROM mails")}
    assert stored == set(acked)  # every acknowledged mail survived the kills
    assert len(runs) == SERIES  # one run per complete series, never a second
    assert all(r["state"] == "finished" and not r["partial"] for r in runs)
    assert len({r["content_hash"] for r in runs}) == SERIES
    rows = store.series_rows(limit=1000)
    # One series row per posting (the cover, even when it came last, joined its patches),
    # each pointing at its own finished run.
    assert sorted(s["series_id"] for s in rows) == sorted(f"{t}-v1-0@example.org" for t in tags)
    assert Counter(s["state"] for s in rows) == Counter({"reviewed": SERIES})
    assert sorted(s["run_id"] for s in rows) == sorted(r["id"] for r in runs)
    print(f"attempts per run: {Counter(r['attempts'] for r in runs)}")  # >1: lease taken over
    store.close()
