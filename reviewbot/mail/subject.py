"""Subject-line parsing: prefixes, version, counters, reply/RFC/RESEND flags.

Every form below is seen on the kernel lists; each one has a test in tests/mail/test_subject.py:
``[PATCH]``, ``[RFC][PATCH]``, ``[RFC PATCH v2 3/7]``, ``[PATCH -mm]``, ``[-mm] ...``,
``[PATCH for-5.2-fixes]``, ``[PATCH cgroup/for-5.2-fixes]``, ``[PATCH net-next v3 00/12]``,
``[PATCHv2 1/3]``, ``PATCH1/8``, ``[RESEND PATCH]``, ``[PATCH RESEND v2]``,
``[PATCH 3.16 130/136]``, ``Re: [PATCH ...]``, ``[PATCH v2 RFC 1/2]``.
"""

from __future__ import annotations

import functools
import re

from reviewbot.model import Subject

# "Re:", "RE:", "Aw:" (German), "Fwd:", "Fw:", "Sv:" (Nordic), possibly repeated or with a
# counter like "Re[2]:". Both are matched at a position (pattern.match(text, pos)), never
# by slicing the text: "Re: " repeated 700,000 times took 20 s sliced, one pass this way.
_REPLY_RE = re.compile(r"\s*(?:re|aw|sv|antw|fwd?)(?:\[\d+\])?\s*:\s*", re.IGNORECASE)
_BRACKET_RE = re.compile(r"\s*\[([^\[\]]*)\]\s*")
_COUNTER_RE = re.compile(r"^(\d{1,4})/(\d{1,4})$")
_VERSION_RE = re.compile(r"^v(\d{1,3})$", re.IGNORECASE)
# "PATCHv2", "PATCH1/8", "RFCv3": a keyword glued to what follows it.
_GLUED_RE = re.compile(r"^(patch|rfc|resend)(v\d+|\d{1,4}/\d{1,4})$", re.IGNORECASE)
# A subject with no brackets at all that starts with "PATCH1/8 " or "PATCH v2 1/3 ": seen in
# mail from hand-rolled scripts. Only taken when PATCH is the very first word.
_BARE_PREFIX_RE = re.compile(
    r"^(PATCH(?:v\d+)?(?:\s*\d{1,4}/\d{1,4})?(?:\s+v\d+)?(?:\s+\d{1,4}/\d{1,4})?)[:\s]\s*",
    re.IGNORECASE,
)


def _split_words(bracketed: str) -> list[str]:
    words: list[str] = []
    for chunk in bracketed.replace(",", " ").replace(";", " ").split():
        glued = _GLUED_RE.match(chunk)
        if glued:
            words.extend([glued.group(1), glued.group(2)])
        else:
            words.append(chunk)
    return words


# Subjects up to this length are memoized (a thread's replies repeat one subject); longer
# ones, which real mail does not have, are parsed each time, so the cache holds at most
# CACHE_SIZE * CACHED_MAX_CHARS characters of keys: with whole subjects as keys, a few
# hostile mails of huge subjects kept 770 MB in `serve`.
CACHED_MAX_CHARS = 512
CACHE_SIZE = 4096


def parse_subject(raw: str) -> Subject:
    """Parse a decoded Subject header. Linear in ``len(raw)``.

    Args:
        raw: the header value, already decoded from RFC 2047 encoded words.
    Returns:
        Subject with ``version_inferred``/``counters_inferred`` set when a value is assumed
        (v1, 1/1).
    """
    if len(raw) <= CACHED_MAX_CHARS:
        return _parse_subject_cached(raw)
    return _parse_subject(raw)


def _parse_subject(raw: str) -> Subject:
    text = " ".join(raw.split())  # unfold and squeeze whitespace
    is_reply = False
    pos = 0
    while match := _REPLY_RE.match(text, pos):
        is_reply = True
        pos = match.end()

    words: list[str] = []
    while match := _BRACKET_RE.match(text, pos):
        words.extend(_split_words(match.group(1)))
        pos = match.end()
        # "[PATCH] Re: foo" is still a reply to something
        reply_after = _REPLY_RE.match(text, pos)
        if reply_after and not words:
            is_reply = True
            pos = reply_after.end()
    text = text[pos:]
    if not words:
        bare = _BARE_PREFIX_RE.match(text)
        if bare:
            words = _split_words(bare.group(1))
            text = text[bare.end() :]

    version, version_inferred = 1, True
    index, total, counters_inferred = 1, 1, True
    prefixes: list[str] = []
    is_patch = is_rfc = is_resend = False
    for word in words:
        counter = _COUNTER_RE.match(word)
        ver = _VERSION_RE.match(word)
        lower = word.lower()
        if counter and counters_inferred:
            index, total = int(counter.group(1)), int(counter.group(2))
            counters_inferred = False
            continue
        if ver and version_inferred:
            version, version_inferred = int(ver.group(1)), False
            continue
        if lower.startswith("patch"):
            is_patch = True
        elif lower.startswith("rfc"):
            is_rfc = True
        elif lower.startswith("resend"):
            is_resend = True
        prefixes.append(word)
    # "[RFC] foo" with a diff is a patch too; callers decide by the diff, not the prefix.
    return Subject(
        raw=raw,
        subject=text.strip(),
        prefixes=tuple(prefixes),
        version=version,
        version_inferred=version_inferred,
        index=index,
        total=total,
        counters_inferred=counters_inferred,
        is_reply=is_reply,
        is_rfc=is_rfc,
        is_resend=is_resend,
        is_patch=is_patch,
    )


# Subject is frozen: one instance can serve every message with the same subject.
_parse_subject_cached = functools.lru_cache(maxsize=CACHE_SIZE)(_parse_subject)


def rebuild_subject(subject: Subject, index: int | None = None) -> str:
    """``[PATCH v2 3/7] subject`` as git format-patch would write it (RFC etc. kept)."""
    words = [p for p in subject.prefixes if p.lower() != "patch"]
    words.insert(0, "PATCH")
    if subject.version > 1:
        words.append(f"v{subject.version}")
    total = subject.total
    if total > 1:
        idx = subject.index if index is None else index
        words.append(f"{idx:0{len(str(total))}d}/{total}")
    return f"[{' '.join(words)}] {subject.subject}"
