"""The HTTP webhook (FastAPI): mail intake, series and run status, HTML page, health, metrics.

``POST /v1/mail`` answers:

- 202 ``{"id", "message_id", "status": "stored"}`` once the mail is committed and fsynced;
- 200 ``{"id", "message_id", "status": "duplicate"}`` for a Message-ID already stored.
  We chose 200 over 409 so that an MTA retrying after a lost answer sees success and stops
  (``reviewbot deliver`` treats both as delivered);
- 409 for a replayed request (the very same timestamp and signature seen before): nothing
  is stored twice, and a captured request can never be replayed after the window either;
- 401 missing or malformed signature headers, 403 wrong signature or a timestamp outside
  the replay window; 413 body above ``service.max_mail_bytes``; 415 not
  ``message/rfc822``; 400 empty body or no mail headers at all. A mail that has headers
  but no readable text (HTML only, broken encoding) is stored (202) and never reviewed,
  so that an MTA feeding a whole list does not bounce it.

The request is handled in a worker thread (SQLite and psycopg block); the mail is parsed once
to find its Message-ID and thread, and the intake task is enqueued after the answer went
out. Enqueueing may fail (Redis down, or the server killed right after answering): the mail
is stored, and a worker's sweep assembles it a few seconds later.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from reviewbot import __version__
from reviewbot.config import Settings
from reviewbot.errors import BadInputError
from reviewbot.mail import stored
from reviewbot.mail.ingest import parse_one
from reviewbot.report.html import render_index
from reviewbot.service.assemble import header_meta, mail_meta
from reviewbot.service.auth import SIGNATURE_HEADER, retry_signed_text, verify
from reviewbot.service.listing import SeriesQuery, list_series
from reviewbot.service.metrics import CONTENT_TYPE, Metrics
from reviewbot.service.store import ReplayError, Store, valid_row_id
from reviewbot.service.tasks import TaskQueue

log = logging.getLogger(__name__)

MAIL_TYPES = ("message/rfc822",)


def _reject(metrics: Metrics, status: int, result: str, detail: str) -> JSONResponse:
    metrics.mail(result)
    return JSONResponse({"error": detail}, status_code=status)


def _series_query(state: str | None, findings: bool, limit: int, offset: int) -> SeriesQuery:
    try:
        return SeriesQuery(state or None, findings, max(1, min(limit, 500)), max(0, offset))
    except BadInputError as exc:
        raise HTTPException(400, str(exc)) from exc


def create_app(
    settings: Settings,
    store: Store,
    queue: TaskQueue | None,
    secret: bytes | None,
    metrics: Metrics | None = None,
) -> FastAPI:
    """Build the app. ``secret`` None means unauthenticated (only when the config says so)."""
    svc = settings.service
    metrics = metrics or Metrics()
    app = FastAPI(
        title="reviewbot",
        version=__version__,
        description="Webhook and status API of the reviewbot kernel patch reviewer.",
        docs_url=None,  # the Swagger UI loads assets from a CDN; /openapi.json is enough
        redoc_url=None,
    )

    def store_mail(raw: bytes, signature: str | None) -> tuple[int, dict[str, Any]]:
        try:
            msg = parse_one(raw, settings.mail, source="POST /v1/mail")
            meta, parsed = mail_meta(msg), stored.encode(msg)
        except BadInputError as exc:
            fallback = header_meta(raw)
            if fallback is None:
                metrics.mail("malformed")
                return 400, {"error": f"unparseable mail: {exc}"}
            # A mail, but not one reviewbot can read (HTML only, broken encoding): store it
            # anyway; refusing would make the MTA bounce list traffic.
            log.info("storing <%s> as unreadable: %s", fallback.message_id, exc)
            meta, parsed = fallback, None
        try:
            added = store.add_mail(
                raw, meta, hashlib.sha256(raw).hexdigest(), signature=signature, parsed=parsed
            )
        except ReplayError as exc:
            # Same body and signature as an earlier request: it changes nothing (that mail
            # is stored); 409 tells a replay apart from an MTA's fresh retry (200).
            metrics.mail("replayed")
            return 409, {"error": f"replayed request: {exc}", "message_id": meta.message_id}
        if not added.created:
            metrics.mail("duplicate")
            return 200, {"id": added.mail_id, "message_id": meta.message_id, "status": "duplicate"}
        metrics.mail("accepted")
        return 202, {"id": added.mail_id, "message_id": meta.message_id, "status": "stored"}

    def enqueue(task: str, ident: int) -> None:
        """Enqueue intake of a stored mail or review of a queued run, after the answer."""
        if queue is None:
            return
        try:
            if task == "intake":
                queue.enqueue_intake(ident)
            else:
                queue.enqueue_review(ident)
        except Exception as exc:  # the store is what counts; the sweep enqueues it later
            log.warning("%s %d stored, not enqueued: %r", task, ident, exc)

    @app.post(
        "/v1/mail",
        status_code=202,
        summary="Submit one raw RFC 822 mail (Content-Type: message/rfc822), signed",
        responses={
            200: {"description": "Message-ID already stored (idempotent)"},
            400: {"description": "empty or unparseable mail"},
            401: {"description": "missing signature headers"},
            403: {"description": "bad signature or timestamp outside the replay window"},
            409: {"description": "replayed request (same signature seen before)"},
            413: {"description": "mail larger than service.max_mail_bytes"},
            415: {"description": "Content-Type is not message/rfc822"},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"message/rfc822": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def post_mail(request: Request) -> JSONResponse:
        start = time.perf_counter()
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in MAIL_TYPES:
            return _reject(metrics, 415, "unsupported", "Content-Type must be message/rfc822")
        limit = svc.max_mail_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return _reject(metrics, 413, "too_large", f"mail larger than {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:  # chunked uploads have no Content-Length to check first
                return _reject(metrics, 413, "too_large", f"mail larger than {limit} bytes")
        raw = bytes(body)
        signature: str | None = None
        if secret is not None:
            verdict = verify(secret, request.headers, raw, window_s=svc.replay_window_s)
            if not verdict.ok:
                return _reject(metrics, verdict.status, "unauthorized", verdict.reason)
            signature = request.headers.get(SIGNATURE_HEADER, "").strip()
        if not raw.strip():
            return _reject(metrics, 400, "malformed", "empty body")
        try:
            status, payload = await run_in_threadpool(store_mail, raw, signature)
        except Exception as exc:  # the store is down (a database restart): try again later
            log.warning("storing a mail failed, answering 503: %r", exc)
            metrics.mail("unavailable")
            return JSONResponse({"error": "the store is unavailable; try again later"},
                                status_code=503, headers={"Retry-After": "5"})
        if status in (200, 202):
            metrics.ack(time.perf_counter() - start)
        # Enqueue after the answer is sent: the 202 promises storage, not queueing, and a
        # second SQLite/Redis write would double the acknowledgement time.
        background = BackgroundTask(enqueue, "intake", payload["id"]) if status == 202 else None
        return JSONResponse(payload, status_code=status, background=background)

    @app.get("/v1/series/{key:path}", summary="One series by row id or Message-ID, with runs")
    def get_series(key: str) -> dict[str, Any]:
        row = store.get_series(key)
        if row is None:
            raise HTTPException(404, f"no series {key!r}")
        row["runs"] = store.run_rows("series_row = ?", (row["id"],), limit=50)
        return row

    @app.get("/v1/runs", summary="Recent runs (state: queued, running, finished, failed)")
    def list_runs(state: str | None = None, limit: int = 50) -> dict[str, Any]:
        limit = max(1, min(limit, 1000))
        if state:
            runs = store.run_rows("state = ?", (state,), limit=limit)
        else:
            runs = store.run_rows(limit=limit)
        return {"runs": runs}

    @app.get("/v1/runs/{run_id}", summary="One run with its review (JSON report)")
    def get_run(run_id: int) -> dict[str, Any]:
        run = store.get_run(run_id) if valid_row_id(run_id) else None
        if run is None:
            raise HTTPException(404, f"no run {run_id}")
        return run

    @app.post(
        "/v1/runs/{run_id}/retry",
        status_code=202,
        summary="Queue a failed run again (signed like /v1/mail; the body may be empty)",
        responses={
            401: {"description": "missing signature headers"},
            403: {"description": "bad signature or timestamp outside the replay window"},
            404: {"description": "no such run"},
            409: {"description": "the run is not failed (queued, running, finished, superseded)"},
        },
    )
    async def retry_run(run_id: int, request: Request) -> JSONResponse:
        if not valid_row_id(run_id):
            return JSONResponse({"error": f"no run {run_id}"}, status_code=404)
        body = await request.body()
        if secret is not None:
            signed = retry_signed_text(run_id, body)
            verdict = verify(secret, request.headers, signed, window_s=svc.replay_window_s)
            if not verdict.ok:
                return JSONResponse({"error": verdict.reason}, status_code=verdict.status)
        problem, reason = await run_in_threadpool(store.retry_run, run_id)
        if problem != "queued":
            return JSONResponse({"error": reason}, status_code=404 if problem == "missing" else 409)
        log.info("run %d queued again on request", run_id)
        background = BackgroundTask(enqueue, "review", run_id)
        return JSONResponse({"id": run_id, "state": "queued"}, status_code=202, background=background)

    @app.get("/", response_class=HTMLResponse, summary="HTML page of recent series and runs")
    def index(limit: int = 50, offset: int = 0, state: str | None = None,
              findings: bool = False) -> HTMLResponse:
        query = _series_query(state, findings, limit, offset)
        page = list_series(store, query)
        runs = store.run_rows(limit=max(1, min(limit, 500)), result=True)
        return HTMLResponse(render_index(page["series"], runs,
                                         quarantined=store.quarantined_mails(limit),
                                         page=page, state=query.state,
                                         with_findings=query.with_findings))

    @app.get("/v1/series", summary="Series, newest first: ?state=&findings=1&limit=&offset=")
    def series_list(limit: int = 50, offset: int = 0, state: str | None = None,
                    findings: bool = False) -> dict[str, Any]:
        return list_series(store, _series_query(state, findings, limit, offset))

    @app.get("/v1/quarantine", summary="Mails set aside after failed intakes, with the error")
    def quarantine(limit: int = 100) -> dict[str, Any]:
        return {"mails": store.quarantined_mails(max(1, min(limit, 1000)))}

    @app.get("/healthz", summary="Liveness: the store answers")
    def healthz() -> Response:
        try:
            version = store.schema_version()
        except Exception as exc:  # a health check reports, it does not raise
            return JSONResponse({"status": "error", "error": repr(exc)}, status_code=503)
        return JSONResponse(
            {
                "status": "ok",
                "version": __version__,
                "store": store.dialect,
                "schema": version,
                "queue": queue.backend if queue else None,
                "signatures": secret is not None,
            }
        )

    @app.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
    def prometheus() -> Response:
        pending: int | None = None
        if queue is not None:
            try:
                pending = queue.pending()
            except Exception:  # the queue being down is what the other gauges will show
                pending = None
        text = metrics.render(store.counts(), pending)
        return Response(text, media_type=CONTENT_TYPE)

    return app

