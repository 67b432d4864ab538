"""HMAC signature verification: what is accepted and what is refused, and why."""

from __future__ import annotations

import pytest

from reviewbot.config import settings_from_mapping
from reviewbot.errors import ConfigError
from reviewbot.service.auth import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign,
    signed_headers,
    verify,
    webhook_secret,
)

SECRET = b"s3cret"
BODY = b"From: a@b\nSubject: x\n\nbody\n"


def test_signature_matches_the_documented_recipe() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET, b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, BODY) == "sha256=" + expected


def test_fresh_signature_is_accepted() -> None:
    headers = signed_headers(SECRET, BODY, now=1000.0)
    assert verify(SECRET, headers, BODY, window_s=300, now=1100.0).ok


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda h, b: ({}, b), 401),
        (lambda h, b: ({**h, TIMESTAMP_HEADER: "yesterday"}, b), 401),
        (lambda h, b: ({**h, SIGNATURE_HEADER: "md5=abc"}, b), 401),
        (lambda h, b: (h, b + b"tampered"), 403),
        (lambda h, b: ({**h, SIGNATURE_HEADER: sign(b"other", 1000, b)}, b), 403),
        (lambda h, b: ({**h, TIMESTAMP_HEADER: "1001"}, b), 403),  # signed with 1000
    ],
    ids=["no-headers", "bad-timestamp", "wrong-scheme", "body-changed", "wrong-secret",
         "timestamp-changed"],
)
def test_bad_requests_are_refused(mutate, status: int) -> None:  # type: ignore[no-untyped-def]
    headers, body = mutate(signed_headers(SECRET, BODY, now=1000.0), BODY)
    verdict = verify(SECRET, headers, body, window_s=300, now=1000.0)
    assert not verdict.ok and verdict.status == status, verdict


def test_timestamps_outside_the_window_are_refused_both_ways() -> None:
    headers = signed_headers(SECRET, BODY, now=1000.0)
    assert verify(SECRET, headers, BODY, window_s=300, now=1300.0).ok
    late = verify(SECRET, headers, BODY, window_s=300, now=1301.0)
    early = verify(SECRET, headers, BODY, window_s=300, now=699.0)
    assert (late.status, early.status) == (403, 403)
    assert "replay window" in late.reason


def test_secret_required_unless_config_disables_it() -> None:
    strict = settings_from_mapping({})
    with pytest.raises(ConfigError, match="REVIEWBOT_WEBHOOK_SECRET"):
        webhook_secret(strict, environ={})
    assert webhook_secret(strict, environ={"REVIEWBOT_WEBHOOK_SECRET": "x"}) == b"x"
    lax = settings_from_mapping({"service": {"require_signature": False}})
    assert webhook_secret(lax, environ={}) is None
