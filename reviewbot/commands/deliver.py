"""``reviewbot deliver --url URL``: post one mail from stdin to the webhook, signed.

Meant for an MTA: Postfix ``pipe``, procmail, fetchmail's ``--mda``, public-inbox-watch.
Exit codes follow sysexits(3), which these programs understand, instead of the review
commands' 0/1/2/3: 0 delivered (202 stored; 200 or 409 already stored); 75 EX_TEMPFAIL when the
service could not be reached or answered 5xx after every retry (the MTA keeps the mail and
tries later); 65 EX_DATAERR when the service refused the mail itself (400, 413, 415);
77 EX_NOPERM for 401/403 (wrong secret or clock skew); 78 EX_CONFIG without a secret.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

from reviewbot.config import Settings

log = logging.getLogger(__name__)

EX_OK = 0
EX_DATAERR = 65
EX_TEMPFAIL = 75
EX_NOPERM = 77
EX_CONFIG = 78


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "deliver",
        help="post one mail read from stdin to the webhook (for an MTA)",
        description="Read one RFC 822 message on stdin and POST it to URL/v1/mail signed "
        "with REVIEWBOT_WEBHOOK_SECRET. Exit 0 delivered, 75 try later, 65 refused mail, "
        "77 refused signature (sysexits, as MTAs expect).",
    )
    parser.add_argument(
        "--url", required=True, help="service base URL, e.g. http://127.0.0.1:8750"
    )
    parser.add_argument("--retries", type=int, default=5, help="attempts after the first")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per attempt")
    parser.add_argument(
        "--backoff", type=float, default=1.0, help="first wait between attempts (doubles)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # Here, not at the top: an MTA runs `reviewbot deliver` once per mail (start-up).
    from reviewbot.service.auth import SECRET_ENV

    body = sys.stdin.buffer.read()
    secret = os.environ.get(SECRET_ENV, "")
    if not secret and settings.service.require_signature:
        print(f"reviewbot deliver: {SECRET_ENV} is not set", file=sys.stderr)
        return EX_CONFIG
    code, detail = deliver(
        body,
        args.url,
        secret.encode() if secret else None,
        retries=args.retries,
        timeout=args.timeout,
        backoff=args.backoff,
    )
    print(f"reviewbot deliver: {detail}", file=sys.stderr if code else sys.stdout)
    return code


def deliver(
    body: bytes,
    url: str,
    secret: bytes | None,
    *,
    retries: int = 5,
    timeout: float = 30.0,
    backoff: float = 1.0,
) -> tuple[int, str]:
    """POST ``body``; returns (sysexits code, what happened). Signs afresh on each attempt."""
    # requests (0.1 s) only when a mail is actually posted; see run()
    import requests

    from reviewbot.service.auth import signed_headers

    endpoint = url.rstrip("/") + "/v1/mail"
    if not body.strip():
        return EX_DATAERR, "empty input: nothing to deliver"
    last = ""
    delay = backoff
    for attempt in range(retries + 1):
        if attempt:
            # At least a second: the timestamp (unix seconds) must change, or the server
            # refuses the identical signature as a replay.
            time.sleep(max(delay, 1.0))
            delay = min(delay * 2, 60.0)
        headers = {"Content-Type": "message/rfc822"}
        if secret is not None:
            # A fresh timestamp per attempt: a retry after a long wait must not look stale,
            # and a new signature is not mistaken for a replay.
            headers.update(signed_headers(secret, body))
        try:
            resp = requests.post(endpoint, data=body, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            last = f"attempt {attempt + 1}: {endpoint}: {exc.__class__.__name__}: {exc}"
            log.warning("%s", last)
            continue
        text = resp.text.strip()[:300]
        if resp.status_code in (200, 202, 409):
            # 409: the same signed request already arrived (a retry within the second).
            return EX_OK, f"{resp.status_code} {text}"
        if resp.status_code in (401, 403):
            return EX_NOPERM, f"{resp.status_code} signature refused: {text}"
        if resp.status_code in (400, 413, 415, 422):
            return EX_DATAERR, f"{resp.status_code} mail refused: {text}"
        last = f"attempt {attempt + 1}: {resp.status_code} {text}"
        log.warning("%s", last)
    return EX_TEMPFAIL, f"not delivered after {retries + 1} attempts; last: {last}"
