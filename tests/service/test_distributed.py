"""Several machines' setup on one host: RedisHuey queue, two workers, SQLite or PostgreSQL."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from service_mails import series_mails
from service_support import fresh_pg_database


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_two_workers_share_the_redis_queue_and_review_each_series_once(
    service_factory: Any, redis_url: str, database: str, request: pytest.FixtureRequest
) -> None:
    import redis

    db = redis.Redis.from_url(redis_url)
    db.flushdb()
    extra: dict[str, Any] = {"redis_url": redis_url, "worker_threads": 2}
    if database == "postgresql":
        extra["database_url"] = fresh_pg_database(request.getfixturevalue("postgres_url"))
    svc = service_factory(**extra)
    svc.start_server()
    assert svc.get("/healthz").json()["queue"] == "RedisHuey"
    assert svc.get("/healthz").json()["store"] == database
    svc.start_worker("w1")
    svc.start_worker("w2")
    tags = [f"dist-{i}" for i in range(12)]
    for tag in tags:
        for raw in series_mails(tag, 3, buggy=tag.endswith("0")):
            assert svc.post(raw).status_code == 202
    runs = svc.wait_runs(len(tags), timeout=120)
    assert sorted(r["series_id"] for r in runs) == sorted(f"{t}-v1-0@example.org" for t in tags)
    assert len({r["content_hash"] for r in runs}) == len(runs)
    assert all(r["attempts"] == 1 for r in runs)
    by_worker = Counter(r["worker"] for r in runs)
    assert set(by_worker) == {"w1", "w2"}, by_worker  # both machines took work
    if database == "sqlite":
        assert not (svc.state / "queue.db").exists()  # the queue really is Redis
