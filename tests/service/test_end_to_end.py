"""Mail in through the webhook, review by a worker, results out: JSON, HTML, outbox."""

from __future__ import annotations

import time
from typing import Any

from service_mails import reply_mail, series_mails


def test_series_posted_in_any_order_is_reviewed_once_and_reported(service_factory: Any) -> None:
    svc = service_factory()
    svc.start_server()
    svc.start_worker("w1")
    mails = series_mails("e2e-a", 3)
    for raw in [mails[2], mails[0], mails[3], mails[1]]:
        assert svc.post(raw).status_code == 202
    runs = svc.wait_runs(1)
    assert len(runs) == 1
    run = svc.get(f"/v1/runs/{runs[0]['id']}").json()
    assert run["state"] == "finished" and not run["partial"]
    assert run["worker"] == "w1" and run["attempts"] == 1
    assert run["result"]["schema"] == "reviewbot/review/v1"
    series = svc.get("/v1/series/e2e-a-v1-0@example.org").json()
    assert series["state"] == "reviewed" and series["present"] == 3
    assert [r["id"] for r in series["runs"]] == [run["id"]]
    # Any of the series' Message-IDs finds it too.
    assert svc.get("/v1/series/<e2e-a-v1-2@example.org>").json()["id"] == series["id"]
    page = svc.get("/").text
    assert "mm: memcg: fix e2e-a" in page and "reviewed" in page
    # A late reply with a trailer is stored but does not cause a second review.
    assert svc.post(reply_mail("e2e-a", "e2e-a-v1-1@example.org", "e2e-a-v1-0@example.org")
                    ).status_code == 202
    svc.post(series_mails("e2e-b", 1, cover=False)[0])
    runs = svc.wait_runs(2)
    assert sorted(r["series_id"] for r in runs) == ["e2e-a-v1-0@example.org",
                                                    "e2e-b-v1-1@example.org"]
    metrics = svc.get("/metrics").text
    assert 'reviewbot_runs{state="finished"} 2' in metrics


def test_findings_reach_the_run_the_page_and_the_outbox_not_smtp(service_factory: Any) -> None:
    svc = service_factory()
    svc.start_server()
    svc.start_worker("w1")
    for raw in series_mails("e2e-c", 2, buggy=True):
        assert svc.post(raw).status_code == 202
    [run] = svc.wait_runs(1)
    run = _replies_settled(svc, run["id"])
    assert run["findings"] >= 2 and run["exit_code"] == 1
    rules = {f["rule"] for p in run["result"]["series"][0]["patches"] for f in p["findings"]}
    assert "rcu-lock-imbalance" in rules
    page = svc.get("/").text
    assert "rcu-lock-imbalance" in page and "mm/memcontrol.c:108" in page
    # SMTP is off by default: one reply per flagged patch lands in the outbox as .eml.
    assert run["replies"] == "sent", run
    files = sorted((svc.state / "outbox").glob("*.eml"))
    assert len(files) >= 2 and all(str(f) in run["replies_detail"] for f in files)
    text = "\n".join(f.read_text() for f in files)
    assert "In-Reply-To: <e2e-c-v1-1@example.org>" in text
    assert "Subject: Re: [PATCH 1/2]" in text and "> +\trcu_read_lock();" in text


def test_incomplete_series_is_reviewed_after_the_wait_with_missing_slots(
    service_factory: Any,
) -> None:
    svc = service_factory(series_wait_s=2)
    svc.start_server()
    svc.start_worker("w1")
    mails = series_mails("e2e-w", 3)
    for raw in mails[:3]:  # cover, 1, 2: patch 3 is lost on the way
        assert svc.post(raw).status_code == 202
    [run] = svc.wait_runs(1, timeout=30)
    assert run["partial"] and run["missing"] == [3]
    series = svc.get("/v1/series/e2e-w-v1-0@example.org").json()
    assert series["state"] == "reviewed" and series["missing"] == [3]
    assert [r["id"] for r in svc.get("/v1/runs?state=finished").json()["runs"]] == [run["id"]]
    assert svc.get("/v1/runs?state=queued").json()["runs"] == []


def test_worker_once_drains_the_queue_and_exits(service_factory: Any) -> None:
    import subprocess
    import sys

    svc = service_factory()
    svc.start_server()
    for raw in series_mails("e2e-o", 2):
        svc.post(raw)
    done = subprocess.run(
        [sys.executable, "-m", "reviewbot", "worker", "--once"], env=svc.env,
        capture_output=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    runs = svc.get("/v1/runs").json()["runs"]
    assert [(r["series_id"], r["state"]) for r in runs] == [("e2e-o-v1-0@example.org",
                                                             "finished")]


def test_with_smtp_enabled_replies_reach_a_real_smtp_server(service_factory: Any) -> None:
    from aiosmtpd.controller import Controller
    from service_support import free_port

    received: list[tuple[str, list[str], bytes]] = []

    class Collect:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
            return "250 OK"

    port = free_port()
    smtpd = Controller(Collect(), hostname="127.0.0.1", port=port)
    smtpd.start()
    try:
        svc = service_factory(smtp_enabled=True, smtp_host="127.0.0.1", smtp_port=port,
                              smtp_from="reviewbot <bot@example.net>")
        svc.start_server()
        svc.start_worker("w1")
        for raw in series_mails("e2e-s", 2, buggy=True):
            svc.post(raw)
        [run] = svc.wait_runs(1)
        run = _replies_settled(svc, run["id"])
        assert run["replies"] == "sent", run
        assert len(received) >= 2
        assert not (svc.state / "outbox").exists()  # SMTP instead of the outbox
        mail_from, rcpts, content = received[0]
        assert "ada@example.org" in rcpts
        assert b"In-Reply-To: <e2e-s-v1-" in content
        assert b"rcu-lock-imbalance" in b"".join(c for _, _, c in received)
    finally:
        smtpd.stop()


def _replies_settled(svc: Any, run_id: int, timeout: float = 30.0) -> dict[str, Any]:
    """A run is marked finished before its replies go out (they are stored with the result
    and delivered right after, or by the sweep): wait for the delivery to settle."""
    deadline = time.time() + timeout
    while True:
        run: dict[str, Any] = svc.get(f"/v1/runs/{run_id}").json()
        if run["replies"] != "pending" or time.time() > deadline:
            return run
        time.sleep(0.2)
