"""Decode one raw RFC 822 message into a :class:`~reviewbot.model.Message`. Pure: no I/O.

Most list mail is a single text/plain part, so headers are parsed by hand and the body is
decoded directly (this is what makes reading a year of a list several times faster than
b4). Well-formed multipart mail is split by :mod:`reviewbot.mail.mime`; anything else
goes through the stdlib ``email`` package. Oddities seen on the lists
are handled where they occur and each has a fixture in tests/data/mail/.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING

import reviewbot.mail.mime as mime
from reviewbot.errors import BadInputError
from reviewbot.mail.address import parse_address, parse_address_list
from reviewbot.mail.charset import decode_text
from reviewbot.mail.lineregex import LineRegex
from reviewbot.mail.rfc2047 import CONTROL_RE as _CONTROL_RE
from reviewbot.mail.rfc2047 import decode_header
from reviewbot.mail.subject import parse_subject
from reviewbot.mail.trailers import commit_trailers, reply_trailers
from reviewbot.model import Message

if TYPE_CHECKING:
    from email.message import Message as EmailMessage

# The stdlib email package is imported where it is used (encoded words, odd addresses and
# dates, multipart mail): most mails need none of it, and `review` of a few patches pays
# its import (7 ms) on every run.

# An id longer than a mail line (998) is no id: it would only travel into every reply.
MAX_MSGID_CHARS = 998
_MSGID_RE = re.compile(rf"<([^<>\s]{{1,{MAX_MSGID_CHARS}}})>")
_MSGID_TOKEN_RE = re.compile(r"[^<>\s]+")
# Limits that keep one message's parse bounded whatever it holds (size caps; the MIME
# nesting limit is below). No real header comes near them.
MAX_HEADER_BYTES = 256 * 1024  # one header, all its copies (a long References: a few KiB)
# multipart/* and message/* parts: the email package recurses once per nesting level; a
# year of the cgroups list has at most 2 in a mail (signed mail with a patch attachment).
MAX_MIME_CONTAINERS = 100
_MIME_CONTAINER_RE = re.compile(rb"content-type:[ \t]*(?:\r?\n[ \t]+)?(?:multipart|message)/", re.I)
# The email package's other superlinear costs, bounded before it runs: every line is tried
# against the boundary of every enclosing part (lines x nesting), and every new part asks
# its parent for its Content-Type by scanning the parent's headers (parts x header lines).
# A 20 MB mail with a year's worst real shape uses a tenth of these; hostile shapes took
# 10-25 s. Only the rare unusual multipart mail (1 of 3,185 in 2020) gets this far.
MAX_EMAIL_LINE_WORK = 8_000_000  # lines x (containers + 1)
# Parts of a multipart mail: each costs microseconds in either walk, so 400,000 empty parts
# (1.3 MB) took 5 s. A series attached to one mail is a few dozen.
MAX_MIME_PARTS = 1000
# A delimiter line: "--" and the boundary ("------=_Part_1" starts with dashes too), not a
# diff's "--- a/file" nor the "-- " signature.
_DELIMITER_RE = re.compile(rb"\n--+[^-\s]")
MAX_EMAIL_PART_WORK = 20_000_000  # lines starting "--" x header-like lines
_HEADER_LIKE_RE = re.compile(rb"\n[!-9;-~]+[ \t]*:")
# The top-level headers the email package needs to walk the parts (the first of each).
_MIME_HEADER_RES = [
    re.compile(rb"(?:^|\n)(" + name + rb"[ \t]*:[^\n]*(?:\n[ \t][^\n]*)*+)", re.I)
    for name in (rb"content-type", rb"content-transfer-encoding")
]
# A diff starts at a git header, or at a ---/+++ pair followed by a hunk (plain `diff -u`).
_DIFF_START_RE = LineRegex(
    r"(?:diff --git |diff -\S+ |Index: \S|--- \S[^\n]*\n\+\+\+ \S[^\n]*\n@@ )"
)
_HUNK_RE = LineRegex(r"@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")
# A git diff may have no hunk at all: pure renames, mode changes, empty new files.
_GIT_META_RE = LineRegex(
    r"(?:rename (?:from|to) |similarity index |old mode |new mode |new file mode "
    r"|deleted file mode |copy (?:from|to) )"
)
_GIT_BINARY_RE = LineRegex(r"(?:GIT binary patch|Binary files )")
_SEPARATOR_RE = LineRegex(r"---\s*$")
_DIFFSTAT_LINE_RE = re.compile(r" \S[^\n]*\|")  # " mm/memcontrol.c | 2 +-"
_DIFFSTAT_SUMMARY_RE = re.compile(r" \d+ files? changed")
_BASE_COMMIT_RE = re.compile(r"^base-commit:\s*([0-9a-f]{7,64})\s*$", re.MULTILINE)
_CHANGE_ID_RE = re.compile(r"^change-id:\s*(\S+)\s*$", re.MULTILINE)
_PREREQ_RE = re.compile(r"^prerequisite-patch-id:\s*([0-9a-f]{40,64})\s*$", re.MULTILINE)
_PATCH_FILENAME_RE = re.compile(r"\.(?:patch|diff)$", re.IGNORECASE)
_PATCH_CONTENT_TYPES = {"text/x-patch", "text/x-diff", "text/x-p", "application/x-patch"}


class MailParseError(BadInputError):
    """One message cannot be used: what is wrong, and its Message-ID when it names one."""

    def __init__(self, problem: str, *, source: str, message_id: str | None = None) -> None:
        super().__init__(f"<{message_id}>: {problem}" if message_id else problem, source=source)
        self.problem = problem
        self.message_id = message_id


def _decode_bytes(data: bytes, charset: str | None, warnings: list[str] | None = None) -> str:
    """Decode with the declared charset if it is one mail uses (:mod:`reviewbot.mail.charset`);
    undeclared 8-bit falls back to UTF-8 then Latin-1, unknown charsets read as UTF-8."""
    return decode_text(data, charset, warnings)


# Only these headers are ever read; skipping the Received:/DKIM/X-* bulk of list mail
# without decoding it was the largest single saving in parsing a year of the list. One
# regex finds them with their folded lines; it starts with a literal newline (the block
# gets one in front) because Python's re tries a MULTILINE "^" pattern at every byte.
# The folded lines are matched possessively ("*+"): a plain "*" kept a backtracking entry
# per line, 577 MB for a header folded over 3 million lines.
_WANTED_RE = re.compile(
    rb"\n(from|subject|message-id|in-reply-to|references|date|content-type"
    rb"|content-transfer-encoding|to|cc)[ \t]*:([^\n]*(?:\n[ \t][^\n]*)*+)",
    re.IGNORECASE,
)


# To: and Cc: run over many folded lines on list mail and only a reply mail reads them
# (Message.recipients() unfolds them then): unfolding every one cost 5% of a year's parse.
_KEPT_FOLDED = frozenset({"to", "cc"})
# The lower-cased spelling of each wanted header -> its key. Bounded: a cache of every
# spelling seen ("Message-Id", "CC", "cOnTeNt-TyPe", ...) grew without limit in `serve`.
_HEADER_KEYS: dict[bytes, str] = {
    name: name.decode("ascii")
    for name in (b"from", b"subject", b"message-id", b"in-reply-to", b"references", b"date",
                 b"content-type", b"content-transfer-encoding", b"to", b"cc")
}


def _parse_headers(block: bytes) -> dict[str, list[str]]:
    """Folded and duplicated headers -> lower-case name to list of unfolded values.

    Undeclared 8-bit bytes in headers (seen from some mailers) are read as UTF-8, else
    Latin-1; encoded words are decoded later, per header.

    Raises:
        ValueError: one header value is over MAX_HEADER_BYTES.
    """
    out: dict[str, list[str]] = {}
    for name, value in _WANTED_RE.findall(b"\n" + block):
        key = _HEADER_KEYS[name.lower()]  # the regex only matches these names
        if len(value) > MAX_HEADER_BYTES:  # refused before the work of unfolding it
            raise ValueError(f"{key} header is {len(value)} bytes, over {MAX_HEADER_BYTES}")
        if b"\n" in value and key not in _KEPT_FOLDED:
            # Unfold: each line stripped, joined by one space (CR of CRLF mail included).
            value = b" ".join(p.strip() for p in value.split(b"\n"))
        else:
            value = value.strip()
        try:  # _decode_bytes(value, None), inlined: ten values per message
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = value.decode("latin-1")
        values = out.get(key)
        if values is None:
            out[key] = [text]
        else:
            values.append(text)
    return out


def _oversized_header(headers: dict[str, list[str]]) -> str | None:
    """The first header whose copies together exceed MAX_HEADER_BYTES, if any."""
    for key, values in headers.items():
        size = sum(len(v) for v in values)
        if size > MAX_HEADER_BYTES:
            return f"{key} header is {size} bytes, over {MAX_HEADER_BYTES}"
    return None


def _no_controls(value: str) -> str:
    """A Message-ID-bearing value without control characters: a CR, LF or NUL inside an
    id (raw, or a lone CR that survived unfolding) must not reach a reply's headers."""
    return _CONTROL_RE.sub("", value) if _CONTROL_RE.search(value) else value


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def _param(value: str, param: str) -> str | None:
    """A parameter of a Content-Type value (already lower-cased by the caller)."""
    at = value.find(param)
    if at < 0:
        return None
    match = re.match(r'\s*=\s*"?([^";\s]+)"?', value[at + len(param) :])
    return match.group(1) if match else None


def _keep_part(ctype: str, filename: str) -> bool:
    """Inline text/plain parts and patch attachments are the text of a multipart mail."""
    if ctype in _PATCH_CONTENT_TYPES or _PATCH_FILENAME_RE.search(filename):
        return True
    return ctype == "text/plain"


def _body_from_multipart(head: bytes, payload: bytes, content_type: str, warnings: list[str]) -> str:
    """Text of a MIME message: inline text/plain parts and patch attachments, in order.

    Well-formed mail is split by :mod:`reviewbot.mail.mime` (given the Content-Type value
    and the bytes after the headers); anything else goes through the email package.
    """
    # The email package recurses once per nesting level (RecursionError at a few hundred);
    # the number of multipart/message parts bounds the depth it can meet.
    containers = len(_MIME_CONTAINER_RE.findall(payload)) + 1
    if containers > MAX_MIME_CONTAINERS:
        raise ValueError(f"{containers} multipart/message parts, over {MAX_MIME_CONTAINERS}")
    if payload.count(b"\n--") > MAX_MIME_PARTS:  # an upper bound, and then the count
        parts = sum(1 for _ in _DELIMITER_RE.finditer(payload))
        if parts > MAX_MIME_PARTS:
            raise ValueError(f"{parts} MIME delimiter lines, over {MAX_MIME_PARTS}")
    if content_type.lower().startswith("multipart/"):
        noted: list[str] = []  # charset notes, kept only if the fast path decides

        def decode(data: bytes, charset: str | None) -> str:
            return _decode_bytes(data, charset, noted)

        fast = mime.walk(content_type, payload, _keep_part, decode, warnings)
        if fast is not None:
            warnings.extend(noted)
            texts, html_only = fast
            if not texts and html_only:
                raise ValueError("HTML-only mail: no text/plain part")
            return "\n".join(texts)
    _check_email_work(payload, containers)
    # Only the headers that shape the MIME tree: thousands of duplicated To: lines made
    # every part's lookup of its parent's Content-Type slow.
    mime_head = b"\n".join(m.group(1) for r in _MIME_HEADER_RES if (m := r.search(head)))
    try:
        return _walk_multipart(mime_head + b"\n\n" + payload, warnings)
    except (LookupError, TypeError, AttributeError, AssertionError) as exc:
        # The stdlib's MIME code trips over some broken structures; that is bad input.
        raise ValueError(f"unreadable MIME structure ({type(exc).__name__}: {exc})") from exc


def _check_email_work(payload: bytes, containers: int) -> None:
    """Raises ValueError when the email package would do more than MAX_EMAIL_*_WORK."""
    lines = payload.count(b"\n") + 1
    if lines * containers > MAX_EMAIL_LINE_WORK:
        raise ValueError(f"MIME structure too large to walk: {lines} lines in "
                         f"{containers} nested multipart/message parts")
    delimiters = payload.count(b"\n--") + 1
    # Header-like lines are at most all lines; counted only when that bound is over.
    if delimiters * lines > MAX_EMAIL_PART_WORK:
        header_lines = sum(1 for _ in _HEADER_LIKE_RE.finditer(payload)) + 1
        if delimiters * header_lines > MAX_EMAIL_PART_WORK:
            raise ValueError(f"MIME structure too large to walk: {delimiters} delimiter "
                             f"lines and {header_lines} header lines")


def _walk_multipart(raw: bytes, warnings: list[str]) -> str:
    import email  # only odd multipart mail needs the email package (21 ms at start-up)

    msg = email.message_from_bytes(raw)  # the default policy is compat32 (no email.policy import)
    if msg.defects and any("Boundary" in type(d).__name__ for d in msg.defects):
        warnings.append("broken MIME structure: " + ", ".join(type(d).__name__ for d in msg.defects))
    texts: list[str] = []
    html_only = True
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        filename = _part_param(part, "filename", "content-disposition") or _part_param(part, "name")
        if ctype == "text/html":
            continue
        html_only = False
        if not _keep_part(ctype, filename):
            continue
        texts.append(_part_text(part, warnings))
    if not texts and html_only:
        raise ValueError("HTML-only mail: no text/plain part")
    return "\n".join(texts)


def _part_text(part: EmailMessage, warnings: list[str]) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    if str(part.get_param("format") or "").lower() == "flowed":
        warnings.append("format=flowed: the mailer may have rewrapped the patch")
    text = _decode_bytes(payload, _part_param(part, "charset"), warnings)
    return text.replace("\r\n", "\n")


def _part_param(part: EmailMessage, name: str, header: str = "content-type") -> str:
    """A MIME parameter, RFC 2231 values decoded by the charset allow-list.

    Not get_filename()/get_content_charset(): they decode RFC 2231 values
    (``filename*=punycode''...``) with any codec Python has, in quadratic time for some.
    """
    value = part.get_param(name, None, header)
    if isinstance(value, tuple):  # (charset, language, text) of an RFC 2231 value
        charset, _, text = value
        return _decode_bytes(str(text).encode("raw-unicode-escape"), charset or "us-ascii").strip()
    # compat32 hands back Header objects for headers with raw 8-bit bytes: str() them.
    return str(value or "").strip()


# "Mon, 1 Jun 2020 10:00:00 +0200", what nearly every mailer writes, parsed without
# email.utils (a tenth of the cost); anything else, and "-0000" (no zone: a naive
# datetime there), goes to parsedate_to_datetime, whose results these equal.
_RFC2822_DATE_RE = re.compile(
    r"\s*(?:[A-Za-z]{3},\s*)?(\d{1,2}) ([A-Za-z]{3}) (\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)(?:\s|$)"
)
_MONTHS = {
    m: n for n, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
_ZONES: dict[int, timezone] = {}


def _date(value: str | None) -> datetime | None:
    """The Date header as a datetime; None when there is none or it cannot be read
    (offsets of a day or more, "+2400", years beyond 9999, garbage)."""
    if not value:
        return None
    m = _RFC2822_DATE_RE.match(value)
    if m is not None:
        day, mon, year, hh, mm, ss, sign, zh, zm = m.groups()
        month = _MONTHS.get(mon.lower())
        minutes = (int(zh) * 60 + int(zm)) * (-1 if sign == "-" else 1)
        # A zone of 24 hours or more ("+2400", seen in spam) makes timezone() raise; such
        # dates go to the stdlib below, which refuses them too.
        if month is not None and (minutes or sign == "+") and int(zh) < 24 and int(zm) < 60:
            zone = _ZONES.get(minutes)
            if zone is None:
                zone = _ZONES[minutes] = timezone(timedelta(minutes=minutes))
            try:
                return datetime(int(year), month, int(day), int(hh), int(mm), int(ss), tzinfo=zone)
            except ValueError:
                pass  # "Feb 30", second 60: let the stdlib decide
    import email.utils  # only a Date our fast parser refused (21 ms at start-up)

    try:
        return email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):  # OverflowError: year 10**30
        return None


def split_body(body: str) -> tuple[str, str | None]:
    """Split a patch body into (commit message, diff).

    The commit message ends at the first ``---`` line that precedes the diff (what git am
    does), or at the diff itself when there is no separator. The diff ends at the ``-- ``
    signature that git send-email appends.
    """
    # Most list mail is discussion: cheap substring tests before the regex scan.
    if "diff " not in body and "--- " not in body and "Index: " not in body:
        return body, None
    match = _DIFF_START_RE.search(body)
    if not match or not (
        _HUNK_RE.search(body, match.start())
        or _GIT_BINARY_RE.search(body)
        or _GIT_META_RE.search(body, match.start())
    ):
        return body, None
    head = body[: match.start()]
    sep = _SEPARATOR_RE.search(head)
    # Without a "---" line (patches pasted or attached by hand) a diffstat may still sit
    # right above the diff; it is not part of the commit message.
    commit_message = head[: sep.start()] if sep else _strip_diffstat_tail(head)
    diff = body[match.start() :]
    sig = diff.find("\n-- \n")
    if sig >= 0:
        diff = diff[: sig + 1]
    return commit_message.rstrip() + "\n", diff


def _strip_diffstat_tail(head: str) -> str:
    """``head`` without the diffstat that ends it (stat lines, then the "N files changed"
    line, then only blanks); unchanged when it ends otherwise.

    Read backwards from the end: the MULTILINE regex it replaces (stat lines, then the
    summary, then the end) started over at every stat line, quadratic in thousands of
    them (2.6 s for 8,000).
    """
    text = head.rstrip()
    summary = text.rfind("\n") + 1
    if not text or not _DIFFSTAT_SUMMARY_RE.match(text, summary):
        return head
    start = summary
    while start > 0:
        line = text.rfind("\n", 0, start - 1) + 1
        if not _DIFFSTAT_LINE_RE.match(text, line, start - 1):
            break
        start = line
    return head if start == summary else head[:start]


def _trailer_region(body: str, commit_message: str) -> str:
    """The text b4 looks for trailers in: above the ``---`` line, else above the diff."""
    match = _DIFF_START_RE.search(body)
    if not match:
        return commit_message
    head = body[: match.start()]
    sep = _SEPARATOR_RE.search(head)
    return head[: sep.start()] if sep else head


def message_id_of(raw: bytes) -> str | None:
    """The Message-ID of a mail that is not parsed (over a limit), to name it in its error."""
    head, _ = mime.split_head(raw)
    try:
        values = _parse_headers(head).get("message-id")
    except ValueError:
        return None
    found = _MSGID_RE.search(_no_controls(values[0])) if values else None
    return found.group(1) if found else None


def synthetic_message_id(raw: bytes) -> str:
    return "reviewbot-" + hashlib.sha1(raw).hexdigest()[:20] + "@localhost"


def parse_message(raw: bytes, position: int = 0, source: str = "") -> Message:
    """Parse one raw message.

    Args:
        raw: the message bytes (mbox separator and >From quoting already removed).
        position: its 0-based position in the input, used in errors.
        source: the file it came from, used in errors.
    Returns:
        A Message. A message without Message-ID gets a synthetic one (flagged).
    Raises:
        MailParseError: the bytes are not a usable mail (no headers, no body text, a
            header or MIME structure over the limits above).
    """
    where = f"{source}#{position}" if source else f"message #{position}"
    warnings: list[str] = []
    head, payload = mime.split_head(raw)
    try:
        headers = _parse_headers(head)
    except ValueError as exc:
        raise MailParseError(str(exc), source=where) from exc
    if not headers or not ({"from", "subject", "message-id"} & headers.keys()):
        raise MailParseError("no mail headers (From/Subject/Message-ID) found", source=where)
    msgid_header = _no_controls(_first(headers, "message-id") or "")
    bracketed = _MSGID_RE.search(msgid_header)
    bare = None if bracketed else _MSGID_TOKEN_RE.search(msgid_header)  # "id@host", no <>
    message_id = bracketed.group(1) if bracketed else (bare.group(0) if bare else "")
    if len(message_id) > MAX_MSGID_CHARS:
        message_id = ""
    if len(head) > MAX_HEADER_BYTES:  # only then can one header be over the limit
        oversized = _oversized_header(headers)
        if oversized:
            raise MailParseError(oversized, source=where, message_id=message_id or None)
    synthesised = not message_id
    if synthesised:
        message_id = synthetic_message_id(raw)
    try:
        ctype = (_first(headers, "content-type") or "text/plain").lower()
        if ctype.startswith("multipart/") or ctype.startswith("message/"):
            body = _body_from_multipart(head, payload, _first(headers, "content-type") or "",
                                        warnings)
        elif ctype.startswith("text/html"):
            raise ValueError("HTML-only mail: no text/plain part")
        else:
            if "format=flowed" in ctype.replace(" ", ""):
                warnings.append("format=flowed: the mailer may have rewrapped the patch")
            data = mime.decode_cte(payload, _first(headers, "content-transfer-encoding") or "")
            body = _decode_bytes(data, _param(ctype, "charset"), warnings).replace("\r\n", "\n")
    except ValueError as exc:
        raise MailParseError(str(exc), source=where, message_id=message_id) from exc

    subject = parse_subject(decode_header(_first(headers, "subject")))
    name, addr = parse_address(decode_header(_first(headers, "from")))
    refs = tuple(_MSGID_RE.findall(_no_controls(" ".join(headers.get("references", [])))))
    irt_ids = _MSGID_RE.findall(_no_controls(_first(headers, "in-reply-to") or ""))
    commit_message, diff = split_body(body)
    # A patch's trailers are its commit message's; anything else is a reply or a cover
    # letter, whose tags count only under b4's stricter rules for follow-ups (a maintainer's
    # "applied, thanks" reply often carries the whole patch with its Cc: lines).
    if diff is not None and not subject.is_reply:
        # Trailers come from the last paragraph above the diff as b4 sees it, diffstat
        # included: in a pull request the shortlog above the diffstat ("cgroup: fix x")
        # would otherwise look like trailers.
        own_trailers = commit_trailers(_trailer_region(body, commit_message))
    else:
        own_trailers = reply_trailers(body, name, addr)
    # These lines are rare; a substring test first keeps regexes off most bodies.
    base = _BASE_COMMIT_RE.search(body) if "base-commit:" in body else None
    change = _CHANGE_ID_RE.search(body) if "change-id:" in body else None
    prereqs = _PREREQ_RE.findall(body) if "prerequisite-patch-id:" in body else []
    date_header = _first(headers, "date")
    date = _date(date_header)
    if date is None and date_header:
        warnings.append(f"unreadable Date header {date_header[:60]!r}")
    return Message(
        message_id=message_id,
        subject=subject,
        author_name=name,
        author_email=addr,
        date=date,
        in_reply_to=irt_ids[0] if irt_ids else None,
        references=tuple(r for r in refs if r != message_id),
        body=body,
        commit_message=commit_message,
        diff=diff,
        trailers=tuple(own_trailers),
        base_commit=base.group(1) if base else None,
        change_id=change.group(1) if change else None,
        prerequisite_patch_ids=tuple(prereqs),
        position=position,
        source=source,
        warnings=tuple(warnings),
        message_id_synthesised=synthesised,
        to_header=", ".join(headers.get("to", ())),
        cc_header=", ".join(headers.get("cc", ())),
    )


def recipients(msg: Message) -> list[tuple[str, str]]:
    """(name, address) of every valid To: and Cc: recipient of ``msg``, in order, without
    duplicates; entries that are not ``local@domain`` (``@example.com``) are left out."""
    seen: set[str] = set()
    out = []
    for name, addr in [*parse_address_list(decode_header(msg.to_header)),
                       *parse_address_list(decode_header(msg.cc_header))]:
        if addr.lower() not in seen:
            seen.add(addr.lower())
            out.append((name, addr))
    return out
