"""Trailers: ``Key: value`` lines in a commit message or in a review reply.

The acceptance rules for replies follow b4 (``LoreMessage.find_trailers(followup=True)``), so
that reviewbot collects the same set that ``b4 am`` writes into a patch: a person trailer must
carry an e-mail address, a URL only counts in link trailers, ``Fixes:`` needs a hash, text
below the ``-- `` signature is ignored, and a person trailer in a reply must name the sender.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from reviewbot.mail.address import parse_address
from reviewbot.model import TRAILER_FROM_PATCH, Trailer

KNOWN = {
    name.lower(): name
    for name in (
        "Signed-off-by",
        "Acked-by",
        "Reviewed-by",
        "Tested-by",
        "Reported-by",
        "Suggested-by",
        "Co-developed-by",
        "Fixes",
        "Closes",
        "Link",
        "Cc",
        "Reported-and-tested-by",
        "Requested-by",
        "Originally-by",
        "Debugged-by",
        "Analyzed-by",
        "Message-ID",
        "BugLink",
    )
}
LINK_TRAILERS = {"link", "buglink", "closes"}
NON_PERSON = LINK_TRAILERS | {"fixes", "subject", "date", "obsoleted-by", "change-id", "base-commit"}
# Lines that look like trailers but are not (b4's ignore list).
_IGNORED = {"phone", "mail", "email", "e-mail", "prerequisite-message-id"}
_HEADERS = {"subject", "date", "from"}
# In replies these are patch metadata, not review tags (b4's "badtrailers").
_NOT_FROM_REPLIES = {
    "from",
    "author",
    "cc",
    "to",
    "date",
    "subject",
    "subscribe",
    "unsubscribe",
    "base-commit",
    "change-id",
    "message-id",
}

_TRAILER_RE = re.compile(r"^\s*(\w\S+):\s+(\S.*)")
# "Fixes: abcd0123 (foo bar\n baz)" and "Signed-off-by: Long Name\n<mail>" wrapped by mailers.
# The parenthesis stays on its line: with "[^)]+" every "Fixes: x (" scanned to the end of
# the text, quadratic in a body of such lines (20 s for 400 KB).
_WRAPPED_FIXES_RE = re.compile(r"^(\S+:[ \t]+[\da-f]+[ \t]+\([^)\n]+)\n([^\n]+\))", re.MULTILINE)
_WRAPPED_ADDR_RE = re.compile(r"^(\S+:\s+[^<\n]+)\n(<[^>\n]+>)$", re.MULTILINE)
# A trailer line: its first word ends with ":" and a value follows. Matched at a line start
# found from a ": " (see _trailer_lines); a MULTILINE "^" regex would try every character.
# "*+" (possessive): backtracking into the first run was quadratic in a long first word.
_TRAILER_AT_RE = re.compile(r"[ \t]*(\w[^\s:]*+\S*?):[ \t]+(\S[^\n]*)")
_COLON_RE = re.compile(r":[ \t]+\S")
_HASH_RE = re.compile(r"^[0-9a-f]{6,}")
_SIGNATURE = "\n-- \n"


def canonical_name(name: str) -> str:
    """``signed-off-by`` -> ``Signed-off-by``; unknown keys are kept as written."""
    return KNOWN.get(name.lower(), name)


def find_trailers(text: str, *, followup: bool = False) -> list[Trailer]:
    """Find trailer lines in a body.

    Args:
        text: a commit message (followup=False) or the body of a reply (followup=True).
        followup: apply b4's stricter filters for review replies.
    Returns:
        The trailers in order of appearance, with canonical names.
    """
    body = text.split(_SIGNATURE, 1)[0].strip() + "\n"
    if "ixes:" in body:  # only Fixes: lines wrap this way; the sub is a full scan
        body = _WRAPPED_FIXES_RE.sub(r"\1 \2", body)
    if "\n<" in body:
        body = _WRAPPED_ADDR_RE.sub(r"\1 \2", body)
    found: list[Trailer] = []
    prose_at: int | None = None  # where the first non-trailer line starts, found once
    for match in _trailer_lines(body):
        name, value = match.group(1), match.group(2).rstrip()
        lname = name.lower()
        if lname in _IGNORED:
            continue
        if lname in _HEADERS:
            # b4 takes Subject:/Date:/From: lines only before any other content.
            if prose_at is None:
                prose_at = _first_prose(body)
            if prose_at < match.start():
                continue
        if followup:
            if not lname.isascii():
                continue
            if lname not in NON_PERSON and not _has_email(value):
                continue
            if re.search(r"https?://", value) and lname not in LINK_TRAILERS:
                continue
        if lname == "fixes" and not _HASH_RE.match(value):
            continue
        found.append(Trailer(canonical_name(name), normalize_value(lname, value), TRAILER_FROM_PATCH))
    return found


def _trailer_lines(body: str) -> Iterator[re.Match[str]]:
    """Matches of _TRAILER_AT_RE at line starts, in order: what the same regex with
    MULTILINE and a leading ``^`` finds.

    Every such line holds a ": " (colon, blank, value), so only the lines holding one are
    tried: six times faster on replies, which are mostly quoted text.
    """
    line_end = -1  # end of the line last tried
    for colon in _COLON_RE.finditer(body):
        if colon.start() < line_end:
            continue  # a second ": " on a line already tried (no rfind: quadratic on a
            # line of thousands of them)
        start = body.rfind("\n", 0, colon.start()) + 1
        line_end = body.find("\n", colon.start())
        if line_end < 0:
            line_end = len(body)
        match = _TRAILER_AT_RE.match(body, start)
        if match is not None:
            yield match


_UTILITY = {"fixes", "link", "buglink", "closes", "obsoleted-by", "message-id", "change-id",
            "base-commit", "based-on"}
_BARE_ADDR_RE = re.compile(r"[^\s<>()\[\]\"',;:@]+@[^\s<>()\[\]\"',;:@]+")


def normalize_value(lname: str, value: str) -> str:
    """Normalise a person trailer as b4 does: ``<mailto:..>`` dropped, ``Name <addr>``
    rebuilt, anything after the address ("[5.4+]") dropped; a ``# comment`` is kept."""
    if lname in _UTILITY or "://" in value or not _has_email(value):
        return value
    value, extinfo = _split_extinfo(value)
    value = re.sub(r"<mailto:[^>]+>", "", value)
    name_addr = _split_name_addr(value)
    if name_addr:
        name, addr = name_addr[0].strip(), name_addr[1].strip()
    elif _BARE_ADDR_RE.fullmatch(value):
        name, addr = "", value  # "Cc: linux-mm@kvack.org": what parseaddr returns, 20x faster
    else:
        name, addr = parse_address(value)  # parseaddr, bounded
    if not (name or addr):
        return value + extinfo
    return (f"{name} <{addr}>" if name else addr) + extinfo


# The three helpers below do what a regex did, in one pass: the regexes backtracked
# quadratically on long trailer lines ("Reviewed-by: xxx...", " #" repeated, "<<<...").


def _has_email(value: str) -> bool:
    r"""``re.search(r"\S+@\S+\.\S+", value)``: a word with an "@" that has something
    before it, and a "." with something on each side after it."""
    for word in value.split():
        at = word.find("@", 1)
        if at > 0 and word.rfind(".", 0, len(word) - 1) >= at + 2:
            return True
    return False


def _split_extinfo(value: str) -> tuple[str, str]:
    r"""``(.*\S)(\s+#[^#]+)$``: a trailing ``# comment`` (after the last "#") split off."""
    hash_at = value.rfind("#")
    if hash_at < 0 or hash_at == len(value) - 1 or "\n" in value:
        return value, ""
    head = value[:hash_at].rstrip()
    if not head or len(head) == hash_at:  # nothing before it, or no blank before the "#"
        return value, ""
    return head, value[len(head) :]


def _split_name_addr(value: str) -> tuple[str, str] | None:
    r"""``^(.*?)\s*<([^>]+)>\s*$``: (text before, inside) of the ``<...>`` that ends the
    value: its "<" is the first one after the last ">" but one."""
    text = value.rstrip()
    if not text.endswith(">") or "\n" in text:
        return None
    lt = text.find("<", text.rfind(">", 0, len(text) - 1) + 1)
    if lt < 0 or lt > len(text) - 3:
        return None
    return text[:lt], text[lt + 1 : -1]


def _first_prose(body: str) -> int:
    """Offset of the first non-blank line that is not a trailer line (len(body): none).
    Computed once per body: asked per Subject:/From: line it was quadratic."""
    pos = 0
    for line in body.split("\n"):
        if line.strip() and not _TRAILER_RE.match(line):
            return pos
        pos += len(line) + 1
    return len(body)


def commit_trailers(commit_message: str) -> list[Trailer]:
    """Trailers of a commit message: the ``Key: value`` lines of its last paragraph.

    As in b4, other lines in that paragraph do not disqualify it: "Signed-off-by: X" followed
    by "--" and a changelog (no blank line between) is common, and its sign-off counts.
    """
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", commit_message.strip("\n")) if p.strip()]
    return find_trailers(paragraphs[-1]) if paragraphs else []


def reply_trailers(body: str, sender_name: str, sender_email: str) -> list[Trailer]:
    """Review trailers given in a reply, restricted as b4 does.

    Quoted lines (``> Acked-by: ...``) never match because the pattern requires a word
    character at the start. Person trailers count only when they name the sender (by e-mail,
    or by exact name), so that a reply quoting someone else's tag unquoted is not taken.
    """
    result: list[Trailer] = []
    for trailer in find_trailers(body, followup=True):
        lname = trailer.name.lower()
        if lname in _NOT_FROM_REPLIES:
            continue
        if lname not in NON_PERSON:
            name, addr = parse_address(trailer.value)
            if addr and "@" in addr and not _names_sender(name, addr, sender_name, sender_email):
                continue
        result.append(trailer)
    return result


def _names_sender(name: str, addr: str, sender_name: str, sender_email: str) -> bool:
    if addr.lower() == sender_email.lower():
        return True
    hname = sender_name.lower()
    if name and name.lower() == hname:
        return True
    # "Last, First" in the From header: every part must occur (b4's fuzzy match)
    return "," in hname and all(part.strip() in hname for part in hname.split(","))
