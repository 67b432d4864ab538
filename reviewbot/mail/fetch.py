"""Fetch one thread by Message-ID from a public-inbox server (lore's ``t.mbox.gz``).

``{public_inbox_url}/{message-id}/t.mbox.gz`` is the lore convention: the whole thread as a
gzipped mbox. public-inbox answers 404 for an unknown Message-ID, which is the user's
mistake (bad input), while timeouts, refused connections and 5xx are the network's
(infrastructure), retried with backoff first.
"""

from __future__ import annotations

import email.utils
import gzip
import logging
import time
import urllib.parse
import zlib
from datetime import UTC, datetime

import requests

from reviewbot import __version__
from reviewbot.config import Settings
from reviewbot.errors import BadInputError, InfraError

log = logging.getLogger(__name__)

_RETRY_STATUS = {429, 500, 502, 503, 504}


MAX_RETRY_AFTER_S = 30.0  # a longer Retry-After is a failure, not a wait


def retry_after(value: str | None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(min(int(value), 86400))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def normalise_message_id(message_id: str) -> str:
    """Strip ``<>``, ``id:``/``mid:`` prefixes and a pasted lore URL down to the bare id.

    Raises:
        BadInputError: nothing that looks like ``local@domain`` is left.
    """
    text = message_id.strip()
    for prefix in ("id:", "mid:"):
        if text.lower().startswith(prefix):
            text = text[len(prefix):]
    if text.startswith(("http://", "https://")):
        # Someone pasted https://lore.kernel.org/all/<msgid>/ : keep the id part.
        parts = [p for p in urllib.parse.urlsplit(text).path.split("/") if p]
        text = next((urllib.parse.unquote(p) for p in reversed(parts) if "@" in p), "")
    text = text.strip().strip("<>").strip()
    if "@" not in text or any(c.isspace() for c in text):
        raise BadInputError(f"not a Message-ID: {message_id!r}")
    return text


def thread_url(message_id: str, settings: Settings) -> str:
    base = settings.fetch.public_inbox_url.rstrip("/")
    # public-inbox quotes like this in its own links: "/" must be escaped, "@" and "+" not.
    quoted = urllib.parse.quote(normalise_message_id(message_id), safe="@+=!$&'()*,;:~")
    return f"{base}/{quoted}/t.mbox.gz"


def fetch_thread(
    message_id: str, settings: Settings, *, session: requests.Session | None = None
) -> bytes:
    """Download the thread of MESSAGE_ID as (uncompressed) mbox bytes.

    Args:
        message_id: with or without angle brackets.
        settings: ``fetch.public_inbox_url``, ``fetch.timeout_s``, ``fetch.retries``.
        session: a requests session to reuse (tests, connection pooling).
    Returns:
        The mbox text of the whole thread.
    Raises:
        BadInputError: the server does not know the Message-ID (404/410) or the answer is
            not a gzipped mbox.
        InfraError: network failure, timeout or server error after every retry.
    """
    url = thread_url(message_id, settings)
    http = session or requests.Session()
    attempts = max(1, settings.fetch.retries + 1)
    last_error = ""
    for attempt in range(1, attempts + 1):
        try:
            resp = http.get(
                url,
                timeout=(min(10.0, settings.fetch.timeout_s), settings.fetch.timeout_s),
                headers={"User-Agent": f"reviewbot/{__version__}"},
            )
        except requests.RequestException as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            if "NameResolutionError" in last_error or "Name or service not known" in last_error:
                break  # no DNS (an offline machine): retrying will not help
        else:
            if resp.status_code in (404, 410):
                raise BadInputError(
                    f"Message-ID {normalise_message_id(message_id)} not found at "
                    f"{settings.fetch.public_inbox_url} (HTTP {resp.status_code})",
                    source=url,
                )
            if resp.status_code == 200:
                return _decode(resp.content, url)
            last_error = f"HTTP {resp.status_code}: {resp.text[:200]}"
            if resp.status_code not in _RETRY_STATUS:
                break
            wait = retry_after(resp.headers.get("Retry-After"))
            if wait is not None and wait > MAX_RETRY_AFTER_S:
                # lore asks for more patience than a review can wait: say so, and the
                # caller records it (a partial series is reviewed as it is).
                raise InfraError(f"cannot fetch {url}: rate limited, the server asks to "
                                 f"retry after {wait:.0f} s", output=last_error)
            if wait is not None and attempt < attempts:
                log.warning("fetch %s: HTTP %d, retrying after %.0f s as asked", url,
                            resp.status_code, wait)
                time.sleep(wait)
                continue
        if attempt < attempts:
            delay = min(30.0, 0.5 * 2 ** (attempt - 1))
            log.warning("fetch %s failed (%s); retry %d in %.1fs", url, last_error, attempt, delay)
            time.sleep(delay)
    raise InfraError(f"cannot fetch {url} after {attempts} attempt(s)", output=last_error)


def _decode(content: bytes, url: str) -> bytes:
    # Servers may also send the body already decompressed (Content-Encoding handled by
    # requests); accept both a gzip stream and plain mbox text.
    if content[:2] == b"\x1f\x8b":
        try:
            content = gzip.decompress(content)
        except (OSError, EOFError, zlib.error) as exc:
            raise BadInputError(f"corrupt gzip from server: {exc}", source=url) from exc
    if not content.startswith(b"From "):
        raise BadInputError("server did not answer with an mbox", source=url)
    return content
