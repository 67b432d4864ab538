"""Webhook authentication: HMAC-SHA256 over ``timestamp + "." + body`` with a replay window.

The scheme is the one GitHub and Stripe webhooks use, so that any MTA helper can implement
it in a few lines (``reviewbot deliver`` is one)::

    X-Reviewbot-Timestamp: 1764129600
    X-Reviewbot-Signature: sha256=<hex HMAC-SHA256(secret, b"1764129600." + body)>

Missing headers are 401 (who are you?); a wrong signature, a timestamp outside the window or
a replayed signature are 403 (we know, and refuse).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from reviewbot.config import Settings
from reviewbot.errors import ConfigError

SECRET_ENV = "REVIEWBOT_WEBHOOK_SECRET"
TIMESTAMP_HEADER = "X-Reviewbot-Timestamp"
SIGNATURE_HEADER = "X-Reviewbot-Signature"
_PREFIX = "sha256="


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The header value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256)
    return _PREFIX + digest.hexdigest()


def retry_signed_text(run_id: int, body: bytes = b"") -> bytes:
    """What a POST /v1/runs/ID/retry signature covers: the run is named, so a signature
    for one run cannot be replayed on another."""
    return f"retry {run_id}\n".encode() + body


def signed_headers(secret: bytes, body: bytes, now: float | None = None) -> dict[str, str]:
    ts = int(time.time() if now is None else now)
    return {TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(secret, ts, body)}


@dataclass(frozen=True)
class Verdict:
    ok: bool
    status: int  # 0 when ok, else 401 or 403
    reason: str


def verify(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    *,
    window_s: int,
    now: float | None = None,
) -> Verdict:
    """Check one request's signature headers (``headers`` is case-insensitive or lowercase)."""
    ts_text = _header(headers, TIMESTAMP_HEADER)
    sig_text = _header(headers, SIGNATURE_HEADER)
    if not ts_text or not sig_text:
        return Verdict(False, 401, f"missing {TIMESTAMP_HEADER} or {SIGNATURE_HEADER} header")
    try:
        ts = int(ts_text.strip())
    except ValueError:
        return Verdict(False, 401, f"{TIMESTAMP_HEADER} is not unix seconds: {ts_text[:40]!r}")
    if not sig_text.startswith(_PREFIX):
        return Verdict(False, 401, f"{SIGNATURE_HEADER} must start with {_PREFIX!r}")
    expected = sign(secret, ts, body)
    # compare_digest: the time taken does not tell an attacker how many characters matched.
    if not hmac.compare_digest(expected.encode("ascii"), sig_text.strip().encode("ascii", "replace")):
        return Verdict(False, 403, "signature does not match")
    now = time.time() if now is None else now
    if abs(now - ts) > window_s:
        # Checked after the HMAC so that the reason never helps forge a fresh timestamp.
        return Verdict(False, 403, f"timestamp outside the {window_s} s replay window")
    return Verdict(True, 0, "")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def webhook_secret(settings: Settings, environ: Mapping[str, str] | None = None) -> bytes | None:
    """The secret from the environment; None only when the config disables authentication.

    Raises:
        ConfigError: no secret while ``service.require_signature`` is true.
    """
    env = os.environ if environ is None else environ
    secret = env.get(SECRET_ENV, "")
    if secret:
        return secret.encode("utf-8")
    if settings.service.require_signature:
        raise ConfigError(
            f"{SECRET_ENV} is not set: the webhook refuses unsigned mail. Set it (e.g. "
            f"`export {SECRET_ENV}=$(openssl rand -hex 32)`) or, for local use only, set "
            "service.require_signature: false in config.yaml"
        )
    return None
