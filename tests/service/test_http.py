"""The webhook started for real (uvicorn on loopback): intake, refusals, status endpoints."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import requests
from service_mails import series_mails

from reviewbot.service.auth import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

MAIL = series_mails("http-a", 1, cover=False)[0]


def test_refuses_to_start_without_a_secret(service_factory: Any) -> None:
    svc = service_factory(secret=None)
    proc = svc.start_server(wait=False)
    assert proc.wait(timeout=30) == 2
    assert "REVIEWBOT_WEBHOOK_SECRET is not set" in svc.log("server")


def test_unsigned_mail_accepted_only_when_config_disables_signatures(service_factory: Any) -> None:
    svc = service_factory(secret=None, require_signature=False)
    svc.start_server()
    resp = svc.post(MAIL)
    assert resp.status_code == 202, resp.text
    assert svc.get("/healthz").json()["signatures"] is False


def test_signed_mail_is_stored_before_202_and_duplicates_get_200(service_factory: Any) -> None:
    svc = service_factory()
    svc.start_server()
    resp = svc.post(MAIL)
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert body["status"] == "stored" and body["message_id"] == "http-a-v1-1@example.org"
    # Read the database from another process's point of view: it is committed.
    store = svc.store()
    stored = store.get_mail(body["id"])
    assert stored is not None and stored.raw == MAIL
    again = svc.post(MAIL, skew=1)  # an MTA retrying: new timestamp, same Message-ID
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert again.json()["id"] == body["id"]
    assert store.mail_count() == 1
    store.close()


def test_bad_signatures_replays_and_stale_timestamps_are_refused(service_factory: Any) -> None:
    svc = service_factory()
    svc.start_server()
    ts = int(time.time())
    good = {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(svc.secret, ts, MAIL)}
    cases = {
        "missing": ({TIMESTAMP_HEADER: "", SIGNATURE_HEADER: ""}, 401),
        "wrong-secret": ({**good, SIGNATURE_HEADER: sign(b"guess", ts, MAIL)}, 403),
        "stale": (
            {TIMESTAMP_HEADER: str(ts - 3600), SIGNATURE_HEADER: sign(svc.secret, ts - 3600, MAIL)},
            403,
        ),
        "future": (
            {TIMESTAMP_HEADER: str(ts + 3600), SIGNATURE_HEADER: sign(svc.secret, ts + 3600, MAIL)},
            403,
        ),
    }
    for name, (headers, status) in cases.items():
        resp = svc.post(MAIL, headers=headers)
        assert resp.status_code == status, (name, resp.text)
    assert svc.post(MAIL, headers=good).status_code == 202
    replay = svc.post(MAIL, headers=good)  # the very same request, captured and re-sent
    assert replay.status_code == 409 and "replayed" in replay.json()["error"]
    other = series_mails("http-b", 1, cover=False)[0]
    assert svc.post(other, headers=good).status_code == 403  # signature is over the body
    assert svc.store().mail_count() == 1


def test_oversized_malformed_and_mistyped_bodies_are_refused(service_factory: Any) -> None:
    svc = service_factory(max_mail_bytes=4096)
    svc.start_server()
    big = MAIL + b"x" * 5000
    assert svc.post(big).status_code == 413

    def chunks() -> Any:  # no Content-Length: the server must count while reading
        for i in range(0, len(big), 1000):
            yield big[i : i + 1000]

    ts = int(time.time())
    resp = requests.post(
        svc.url + "/v1/mail", data=chunks(),
        headers={"Content-Type": "message/rfc822", TIMESTAMP_HEADER: str(ts),
                 SIGNATURE_HEADER: sign(svc.secret, ts, big)},
        timeout=10,
    )
    assert resp.status_code == 413
    assert svc.post(b"this is not a mail at all\n\nno headers").status_code == 400
    assert svc.post(b"   \n").status_code == 400
    assert svc.post(MAIL, headers={"Content-Type": "application/json"}).status_code == 415
    metrics = svc.get("/metrics").text
    assert 'reviewbot_mails_received_total{result="too_large"} 2' in metrics
    assert 'reviewbot_mails_received_total{result="malformed"} 2' in metrics
    assert svc.store().mail_count() == 0


def test_status_endpoints_health_metrics_and_openapi(service_factory: Any) -> None:
    svc = service_factory()
    svc.start_server()
    assert svc.post(MAIL).status_code == 202
    health = svc.get("/healthz").json()
    assert health["status"] == "ok" and health["store"] == "sqlite" and health["schema"] >= 1
    assert health["queue"] == "SqliteHuey"
    metrics = svc.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'reviewbot_mails_received_total{result="accepted"} 1' in metrics.text
    assert "reviewbot_mails_stored 1" in metrics.text
    assert "reviewbot_mail_ack_seconds_count 1" in metrics.text
    spec = svc.get("/openapi.json").json()
    assert {"/v1/mail", "/v1/runs", "/v1/runs/{run_id}", "/healthz", "/metrics"} <= set(
        spec["paths"]
    )
    assert "message/rfc822" in spec["paths"]["/v1/mail"]["post"]["requestBody"]["content"]
    assert svc.get("/v1/runs").json() == {"runs": []}
    assert svc.get("/v1/runs/99").status_code == 404
    # Ids past 64 bits are missing rows too, not a database error (was a 500).
    assert svc.get("/v1/runs/" + "9" * 20).status_code == 404
    assert svc.get("/v1/series/" + "9" * 20).status_code == 404
    assert svc.get("/v1/series/nope@example.org").status_code == 404
    assert "<html" in svc.get("/").text
    assert svc.get("/v1/quarantine").json() == {"mails": []}
    listing = svc.get("/v1/series?limit=10").json()
    assert listing["limit"] == 10 and listing["next_offset"] is None
    assert svc.get("/v1/series?state=done").status_code == 400
    assert "with findings" in svc.get("/?findings=1").text
    assert "reviewbot_mails_quarantined 0" in metrics.text
    # State lives under XDG_STATE_HOME, never in the working directory.
    assert (svc.state / "reviewbot.db").exists() and (svc.state / "queue.db").exists()
    assert not list(svc.tmp.glob("*.db"))


def _deliver(svc: Any, url: str, raw: bytes, secret: str | None) -> subprocess.CompletedProcess:  # type: ignore[type-arg]
    env = dict(svc.env)
    if secret is None:
        env.pop("REVIEWBOT_WEBHOOK_SECRET", None)
    else:
        env["REVIEWBOT_WEBHOOK_SECRET"] = secret
    return subprocess.run(
        [sys.executable, "-m", "reviewbot", "deliver", "--url", url, "--retries", "2",
         "--backoff", "0.1", "--timeout", "5"],
        input=raw, env=env, capture_output=True, timeout=60,
    )


def test_deliver_posts_signed_mail_and_exits_as_an_mta_expects(service_factory: Any) -> None:
    svc = service_factory()
    svc.start_server()
    ok = _deliver(svc, svc.url, MAIL, svc.secret.decode())
    assert ok.returncode == 0, ok.stderr
    again = _deliver(svc, svc.url, MAIL, svc.secret.decode())  # same second: 409, or 200
    assert again.returncode == 0 and (b"duplicate" in again.stdout or b"409" in again.stdout)
    assert _deliver(svc, svc.url, MAIL, "wrong").returncode == 77
    assert _deliver(svc, svc.url, b"no headers here\n", svc.secret.decode()).returncode == 65
    assert _deliver(svc, svc.url, MAIL, None).returncode == 78
    dead = f"http://127.0.0.1:{svc.port + 1 if svc.port < 65000 else 1}"
    down = _deliver(svc, dead, MAIL, svc.secret.decode())
    assert down.returncode == 75 and b"not delivered after 3 attempts" in down.stderr


def test_html_only_mail_is_stored_not_bounced_and_never_reviewed(service_factory: Any) -> None:
    svc = service_factory()
    svc.start_server()
    svc.start_worker("w1")
    html = (
        b"From: Someone <s@example.com>\nSubject: Re: [PATCH] mm: memcg\n"
        b"Message-ID: <html-1@example.com>\nIn-Reply-To: <x@example.org>\n"
        b"MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n<p>LGTM</p>\n"
    )
    resp = svc.post(html)
    assert resp.status_code == 202, resp.text
    assert resp.json()["message_id"] == "html-1@example.com"
    for raw in series_mails("http-h", 1, cover=False):
        svc.post(raw)
    runs = svc.wait_runs(1)
    assert [r["series_id"] for r in runs] == ["http-h-v1-1@example.org"]
