"""``reviewbot retry RUN_ID --url URL``: queue a failed run again on a running service.

For the operator who fixed what made a run fail (the kernel tree, a full disk, a broken
rule): the service reviews the same patches again, and its replies go out as usual. The
request is signed with REVIEWBOT_WEBHOOK_SECRET like ``deliver``; the signed text names the
run. Exit 0 queued; 1 the run is not failed (queued, running, finished or superseded);
2 no such run or a refused signature; 3 the service could not be reached.
"""

from __future__ import annotations

import argparse
import os
import sys

from reviewbot.config import Settings
from reviewbot.errors import EXIT_BAD_INPUT, EXIT_FINDINGS, EXIT_INFRA, EXIT_OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "retry",
        help="queue a failed run again (POST /v1/runs/ID/retry, signed)",
        description="Ask the service at URL to review the patches of failed run RUN_ID again "
        "(see GET /v1/runs?state=failed). Exit 0 queued, 1 the run is not failed, "
        "2 unknown run or refused signature, 3 service unreachable.",
    )
    parser.add_argument("run_id", type=int, metavar="RUN_ID")
    parser.add_argument("--url", required=True, help="service base URL, e.g. http://127.0.0.1:8750")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds for the request")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # Here, not at the top: `reviewbot --help` imports every command module.
    import requests

    from reviewbot.service.auth import SECRET_ENV, retry_signed_text, signed_headers

    secret = os.environ.get(SECRET_ENV, "")
    if not secret and settings.service.require_signature:
        print(f"reviewbot retry: {SECRET_ENV} is not set", file=sys.stderr)
        return EXIT_BAD_INPUT
    headers = signed_headers(secret.encode(), retry_signed_text(args.run_id)) if secret else {}
    url = f"{args.url.rstrip('/')}/v1/runs/{args.run_id}/retry"
    try:
        resp = requests.post(url, data=b"", headers=headers, timeout=args.timeout)
    except requests.RequestException as exc:
        print(f"reviewbot retry: {url}: {exc.__class__.__name__}: {exc}", file=sys.stderr)
        return EXIT_INFRA
    text = resp.text.strip()[:300]
    if resp.status_code == 202:
        print(f"reviewbot retry: run {args.run_id} queued again")
        return EXIT_OK
    print(f"reviewbot retry: {resp.status_code} {text}", file=sys.stderr)
    if resp.status_code == 409:
        return EXIT_FINDINGS
    if resp.status_code in (401, 403, 404, 422):
        return EXIT_BAD_INPUT
    return EXIT_INFRA

