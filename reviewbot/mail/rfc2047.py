"""Header values: RFC 2047 encoded words decoded, folds undone, control characters gone.
Pure: no I/O.

Values like the ones real mail has (a few encoded words) go through the stdlib's
``email.header.decode_header``, whose quirks the b4 comparison is measured against. It is
quadratic in two ways, though: in unterminated encoded words (its regex scans to the end of
the value from each ``=?``: ``=?a?q?x `` repeated took 8.6 s for 64 KB, two minutes for
240 KB) and in the number of words (list deletions, bytes concatenation: 2 s for 30,000).
Longer or word-heavier values get :func:`_decode_linear`, one pass that reads
well-formed words the same way.
"""

from __future__ import annotations

import base64
import binascii
import re

from reviewbot.mail.charset import decode_text

# What the stdlib decoder is given; real Subject and From values: under 1,000 characters
# and 10 encoded words.
MAX_STDLIB_CHARS = 4096
MAX_STDLIB_WORDS = 64

# CR, LF and NUL (and the other C0 controls but tab) have no place in a decoded header
# value: encoded words (=0D=0A) and lone CRs carry them into subjects and names.
CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_FOLD_RE = re.compile(r"\r?\n[ \t]+")
_SPACES_RE = re.compile(r"\s+")
# A well-formed encoded word: no "?" or blank inside its parts, so a failed attempt never
# rescans text a later one reads (the stdlib's "(.*?)\?=" did, to the end of the value).
_WORD_RE = re.compile(r"=\?([^?\s]{1,75})\?([qQbB])\?([^?\s]*)\?=")


def decode_header(value: str | None) -> str:
    """Decode RFC 2047 encoded words and unfold; never raises on bad encodings.

    Control characters (CR, LF, NUL, ...) become spaces, whether written raw or encoded.
    """
    if not value:
        return ""
    if "\n" in value:
        value = _FOLD_RE.sub(" ", value)
    if "=?" not in value:
        return CONTROL_RE.sub(" ", value).strip()
    if len(value) > MAX_STDLIB_CHARS or value.count("=?") > MAX_STDLIB_WORDS:
        text = _decode_linear(value)
    else:
        decoded = _decode_stdlib(value)
        if decoded is None:
            return value.strip()
        text = decoded
    # decode_header drops the whitespace between an encoded word and plain text inconsistently
    return _SPACES_RE.sub(" ", CONTROL_RE.sub(" ", text)).strip()


def _decode_stdlib(value: str) -> str | None:
    import email.errors  # only words our decoder refused need the stdlib's
    import email.header

    try:
        parts = email.header.decode_header(value)
    except (ValueError, email.errors.HeaderParseError):
        return None
    out: list[str] = []
    for data, charset in parts:
        if isinstance(data, str):
            out.append(data)
        else:
            out.append(decode_text(data, charset))
    return "".join(out)


def _decode_linear(value: str) -> str:
    """Encoded words decoded in one pass: blanks between two words dropped, consecutive
    words of one charset decoded together (a character may be split across them), a
    word that does not decode kept as written."""
    out: list[str] = []
    run: list[bytes] = []  # bytes of consecutive words in one charset
    run_charset = ""
    pos = 0
    for word in _WORD_RE.finditer(value):
        between = value[pos : word.start()]
        if between and not (run and between.isspace()):
            if run:
                out.append(decode_text(b"".join(run), run_charset))
                run = []
            out.append(between)
        pos = word.end()
        data = _word_bytes(word.group(2).lower(), word.group(3))
        if data is None:
            if run:
                out.append(decode_text(b"".join(run), run_charset))
                run = []
            out.append(word.group(0))
            continue
        charset = word.group(1).lower()
        if run and charset != run_charset:
            out.append(decode_text(b"".join(run), run_charset))
            run = []
        run.append(data)
        run_charset = charset
    if run:
        out.append(decode_text(b"".join(run), run_charset))
    out.append(value[pos:])
    return "".join(out)


def _word_bytes(encoding: str, text: str) -> bytes | None:
    raw = text.encode("ascii", "replace")
    if encoding == "q":
        return binascii.a2b_qp(raw, header=True)
    try:
        return base64.b64decode(raw + b"=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        return None
