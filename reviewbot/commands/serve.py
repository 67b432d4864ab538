"""``reviewbot serve [--host H] [--port P]``: the HTTP webhook (FastAPI under uvicorn)."""

from __future__ import annotations

import argparse
import logging

from reviewbot.config import Settings
from reviewbot.errors import EXIT_OK

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the webhook that receives mail (POST /v1/mail) and shows runs",
        description="Serve POST /v1/mail (signed with REVIEWBOT_WEBHOOK_SECRET), "
        "GET /v1/series/ID, /v1/runs, /v1/runs/ID, / (HTML), /healthz, /metrics and "
        "/openapi.json. Reviews are done by `reviewbot worker`.",
    )
    parser.add_argument("--host", help="address to listen on (default: service.host)")
    parser.add_argument("--port", type=int, help="port (default: service.port; 0 picks one)")
    parser.add_argument(
        "--access-log", action="store_true", help="log every request (uvicorn access log)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # The 'service' extra (uvicorn, fastapi): imported when the command runs, so that
    # `reviewbot --help` works without it.
    import uvicorn

    from reviewbot.service.app import create_app
    from reviewbot.service.auth import webhook_secret
    from reviewbot.service.store import Store
    from reviewbot.service.tasks import TaskQueue, make_huey

    secret = webhook_secret(settings)  # refuses to start without one (ConfigError, exit 2)
    if secret is None:
        log.warning("service.require_signature is false: POST /v1/mail accepts unsigned mail")
    store = Store.from_settings(settings)
    queue = TaskQueue(make_huey(settings), settings)
    app = create_app(settings, store, queue, secret)
    host = args.host or settings.service.host
    port = settings.service.port if args.port is None else args.port
    log.info("serving on http://%s:%d, store %s, queue %s", host, port, store.display_url,
             queue.backend)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info" if logging.getLogger().level <= logging.INFO else "warning",
        access_log=args.access_log,
        # One process: SQLite connections and metrics counters are per process. Run more
        # `reviewbot serve` behind a proxy with PostgreSQL for more (docs/operations.md).
        workers=None,
    )
    store.close()
    return EXIT_OK
