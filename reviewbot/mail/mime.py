"""Well-formed multipart mail without the stdlib ``email`` package.

Sixty of the 3,185 messages of a year of the cgroups list are multipart (PGP-signed mail,
patches attached to a text part, HTML alternatives). Through ``email`` they cost a fifth of
the whole parse: its import (20 ms, paid again by every parsing worker) and its
line-by-line feed parser. This module splits the common, well-formed shapes by hand and
returns None for anything unusual (no closing boundary, RFC 2231 parameters, encoded file
names, message/* parts, unknown transfer encodings), which ``email`` then handles with its
defect reporting. tests/mail/test_mime.py checks that both give the same text.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from collections.abc import Callable

# Part headers that decide what a part is; the rest (Content-ID, X-*) is never read.
_PART_HEADER_RE = re.compile(
    rb"(?:^|\n)(content-type|content-transfer-encoding|content-disposition)[ \t]*:"
    rb"([^\n]*(?:\n[ \t][^\n]*)*+)",  # "*+": no backtracking entry kept per folded line
    re.IGNORECASE,
)
# Every line of a header block is "Name: value" or a continuation; a part whose first lines
# are not (no header block at all) is body text in the email package's reading.
_HEADER_LINE_RE = re.compile(rb"[!-9;-~]+[ \t]*:|[ \t]")
_PARAM_RE = re.compile(r';\s*([\w*-]+)\s*=\s*("(?:[^"\\]|\\.)*+"|[^;\s]*)')
_CTES = {"", "7bit", "8bit", "binary", "quoted-printable", "base64"}
MAX_DEPTH = 5  # nested multiparts; deeper is left to the email package


class _UnusualShapeError(Exception):
    """A shape this module leaves to the email package."""


def params(value: str) -> tuple[str, dict[str, str]]:
    """``("text/plain", {"charset": "utf-8"})`` from a Content-Type / -Disposition value.

    Raises:
        _UnusualShapeError: RFC 2231 (``name*=``) or encoded-word parameters.
    """
    main, _, rest = value.partition(";")
    found: dict[str, str] = {}
    for name, raw in _PARAM_RE.findall(";" + rest):
        if "*" in name:
            raise _UnusualShapeError("RFC 2231 parameter")
        if raw.startswith('"'):
            raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        if "=?" in raw:
            raise _UnusualShapeError("encoded-word parameter")
        found[name.lower()] = raw
    return main.strip().lower(), found


def split_parts(body: bytes, boundary: bytes) -> list[bytes]:
    """The parts between ``--boundary`` lines (the line end before a delimiter belongs to it).

    Raises:
        _UnusualShapeError: no opening or no closing delimiter.
    """
    delim = b"--" + boundary
    pos = 0 if body.startswith(delim) else body.find(b"\n" + delim) + 1
    if pos == 0 and not body.startswith(delim):
        raise _UnusualShapeError("no opening boundary")
    parts: list[bytes] = []
    while True:
        eol = body.find(b"\n", pos)
        line = (body[pos:] if eol < 0 else body[pos:eol]).rstrip(b"\r \t")
        if line == delim + b"--":
            if not parts:
                raise _UnusualShapeError("a closing delimiter but no part")
            return parts
        if line != delim or eol < 0:
            raise _UnusualShapeError("text after a boundary")
        nxt = body.find(b"\n" + delim, eol)
        if nxt < 0:
            raise _UnusualShapeError("no closing boundary")
        part = body[eol + 1 : nxt]
        parts.append(part[:-1] if part.endswith(b"\r") else part)
        pos = nxt + 1


def split_head(raw: bytes) -> tuple[bytes, bytes]:
    """Split a header block from the body at the first empty line (CRLF or LF)."""
    lf = raw.find(b"\n\n")
    crlf = raw.find(b"\r\n\r\n", 0, lf + 3 if lf >= 0 else len(raw))
    if crlf >= 0 and (lf < 0 or crlf < lf):
        return raw[:crlf], raw[crlf + 4 :]
    if lf < 0:
        return raw, b""
    return raw[:lf], raw[lf + 2 :]


def decode_cte(payload: bytes, cte: str) -> bytes:
    """Undo a Content-Transfer-Encoding (7bit, 8bit and unknown ones are left as they are).

    Raises:
        ValueError: a base64 body that does not decode.
    """
    cte = cte.lower().strip()
    if cte == "quoted-printable":
        return quopri.decodestring(payload)
    if cte == "base64":
        try:
            return base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"bad base64 body: {exc}") from exc
    return payload


def _part_headers(part: bytes) -> tuple[dict[str, str], bytes]:
    # A part may have no headers at all: it then starts with the empty line.
    if part.startswith(b"\n"):
        return {}, part[1:]
    if part.startswith(b"\r\n"):
        return {}, part[2:]
    head, payload = split_head(part)
    if any(ln and not _HEADER_LINE_RE.match(ln) for ln in head.split(b"\n")):
        raise _UnusualShapeError("no header block")
    headers: dict[str, str] = {}
    for name, value in _PART_HEADER_RE.findall(head):
        key = name.lower().decode("ascii")
        if key in headers:
            raise _UnusualShapeError(f"duplicated {key}")
        text = b" ".join(p.strip() for p in value.split(b"\n")).decode("latin-1")
        if "=?" in text:
            raise _UnusualShapeError("encoded word in a part header")
        headers[key] = text
    return headers, payload


def walk(
    content_type: str,
    payload: bytes,
    keep: Callable[[str, str], bool],
    decode_text: Callable[[bytes, str | None], str],
    warnings: list[str],
) -> tuple[list[str], bool] | None:
    """Texts of the leaf parts ``keep(content type, file name)`` selects, and whether
    every leaf was HTML; None when the email package should decide.

    ``content_type`` is the message's Content-Type value with its original case (boundaries
    are case-sensitive); ``payload`` the bytes after the header block.
    """
    texts: list[str] = []
    found: list[str] = []  # the caller's only on success: the email package warns again
    try:
        html_only = _walk(content_type, payload, keep, decode_text, found, texts, 0)
    except _UnusualShapeError:
        return None
    warnings.extend(found)
    return texts, html_only


def _walk(
    content_type: str,
    payload: bytes,
    keep: Callable[[str, str], bool],
    decode_text: Callable[[bytes, str | None], str],
    warnings: list[str],
    texts: list[str],
    depth: int,
) -> bool:
    ctype, cparams = params(content_type)
    boundary = cparams.get("boundary")
    if not boundary or depth >= MAX_DEPTH or ctype == "multipart/digest":
        raise _UnusualShapeError("no boundary")
    html_only = True
    for part in split_parts(payload, boundary.encode("latin-1")):
        headers, body = _part_headers(part)
        part_type = headers.get("content-type", "text/plain")
        ptype, pparams = params(part_type)
        if ptype.startswith("multipart/"):
            html_only &= _walk(part_type, body, keep, decode_text, warnings, texts, depth + 1)
            continue
        if ptype.startswith("message/") or "/" not in ptype:
            raise _UnusualShapeError(ptype or "empty Content-Type")
        _, dparams = params(headers.get("content-disposition", ""))
        filename = dparams.get("filename") or pparams.get("name") or ""
        if ptype == "text/html":
            continue
        html_only = False
        if not keep(ptype, filename):
            continue
        cte = headers.get("content-transfer-encoding", "").strip().lower()
        if cte not in _CTES:
            raise _UnusualShapeError(f"transfer encoding {cte}")
        try:
            data = decode_cte(body, cte)
        except ValueError as exc:
            raise _UnusualShapeError(str(exc)) from exc
        if pparams.get("format", "").lower() == "flowed":
            warnings.append("format=flowed: the mailer may have rewrapped the patch")
        charset = pparams.get("charset", "").lower() or None
        texts.append(decode_text(data, charset).replace("\r\n", "\n"))
    return html_only
