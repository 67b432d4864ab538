"""Addresses in From:, To: and Cc: values, bounded in time and recursion. Pure: no I/O.

``Name <addr>`` (nearly every From header on the lists) is read with one regex. Anything
else went to the stdlib's ``email.utils.parseaddr``/``getaddresses``, which recurse once per
group (``a:``) and per nested comment (``(``): a From of a thousand colons ended in
RecursionError, and a Cc such as ``@example.com`` came back as an "address". So:

* the stdlib parser only sees values it handles in bounded depth: at most
  :data:`MAX_ADDRESS_CHARS` characters and :data:`MAX_NESTING` colons and parentheses;
  others get a linear reading (the last ``<addr>``, else the first ``x@y`` word);
* a To:/Cc: list is split at top-level commas by a small state machine, each entry read as
  a From value, and only entries whose address is a plain ``local@domain`` are kept.
"""

from __future__ import annotations

import re

MAX_ADDRESS_CHARS = 998  # RFC 5322's line limit; no real From value is longer
MAX_NESTING = 8  # colons (groups) and "(" (comments) the stdlib parser recurses on
MAX_RECIPIENTS = 1000  # To: and Cc: entries read for a reply (real lists: a few dozen)
_MAX_LIST_CHARS = 256 * 1024

_ADDR_RE = re.compile(r'^\s*"?([^"<>]*?)"?\s*<([^<>\s]+@[^<>\s]+)>\s*$')
# A bare addr-spec ("Reviewed-by: x@y.z", "Cc: list@vger"): what parseaddr returns for it,
# without its character-by-character loop (1 us a character: seconds on a flood of them).
_BARE_ADDR_RE = re.compile(r"[^\s<>()\[\]\"',;:@]+@[^\s<>()\[\]\"',;:@]+")
_ANGLE_RE = re.compile(r"<([^<>\s]*)>")
_NOT_IN_BARE = frozenset("<>()[]\"',;:@")  # and whitespace
# A dot-atom local part and domain (RFC 5322 atext, plus any non-ASCII character for
# internationalised addresses), or a domain literal: what a reply's Cc: can carry.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\x80-\U0010ffff-]+"
_ADDR_SPEC_RE = re.compile(
    rf"{_ATOM}(?:\.{_ATOM})*@(?:{_ATOM}(?:\.{_ATOM})*|\[[A-Za-z0-9.:]+\])"
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_GROUP_RE = re.compile(r'[^"<>()@,;:\\]*:')  # a group's display name and its colon


def parse_address(value: str) -> tuple[str, str]:
    """(display name, address) of one From-like value; ("", "") when there is none.

    Never raises; time is linear in ``len(value)`` (at most :data:`MAX_ADDRESS_CHARS`
    characters are read).
    """
    if len(value) > MAX_ADDRESS_CHARS:
        return _loose(value[:MAX_ADDRESS_CHARS])
    match = _ADDR_RE.match(value)
    if match:
        return match.group(1).strip(), match.group(2)
    bare = value.strip()
    if _BARE_ADDR_RE.fullmatch(bare):
        return "", bare
    if value.count(":") + value.count("(") > MAX_NESTING:
        return _loose(value)  # "a: a: a: ..." recursed once per colon in parseaddr
    import email.utils  # only addresses our fast path refused (21 ms at start-up)

    return email.utils.parseaddr(value)


def _loose(value: str) -> tuple[str, str]:
    """The last ``<x@y>`` with the text before it as the name, else the first bare ``x@y``."""
    angles = [m for m in _ANGLE_RE.finditer(value) if "@" in m.group(1)]
    if angles:
        last = angles[-1]
        return value[: last.start()].strip().strip('"').strip(), last.group(1)
    return "", _first_bare(value)


def _in_bare(char: str) -> bool:
    return char not in _NOT_IN_BARE and not char.isspace()


def _first_bare(value: str) -> str:
    """The first ``x@y`` word, found from its "@": a regex search for it tried every start
    position and scanned the word from each, quadratic in a long word without "@"."""
    at = value.find("@")
    while at >= 0:
        start = at
        while start > 0 and _in_bare(value[start - 1]):
            start -= 1
        end = at + 1
        while end < len(value) and _in_bare(value[end]):
            end += 1
        if start < at < end - 1:
            return value[start:end]
        at = value.find("@", at + 1)
    return ""


def is_addr_spec(addr: str) -> bool:
    """``local@domain`` as a reply header can carry it: no empty part, no spaces, no
    control characters (``@example.com``, ``a@b@c`` and ``<>`` are not addresses)."""
    return bool(_ADDR_SPEC_RE.fullmatch(addr)) and not _CONTROL_RE.search(addr)


def split_address_list(value: str) -> list[str]:
    """The entries of a To:/Cc: value, split at commas outside quotes, comments and
    angle brackets. One pass, no recursion.

    States: plain text, inside a quoted string (``\\`` escapes one character), inside a
    comment (nesting counted), inside ``<...>``.
    """
    entries: list[str] = []
    start = 0
    quoted = escaped = False
    comment = angle = 0
    for pos, char in enumerate(value):
        if escaped:
            escaped = False
        elif char == "\\" and (quoted or comment):
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif char == '"' and not comment:
            quoted = True
        elif char == "(":
            comment += 1
        elif char == ")" and comment:
            comment -= 1
        elif comment:
            continue
        elif char == "<":
            angle += 1
        elif char == ">" and angle:
            angle -= 1
        elif char in ",;" and not angle:  # ";" ends a group ("list: a@b, c@d;")
            entries.append(value[start:pos])
            start = pos + 1
    entries.append(value[start:])
    return [e.strip() for e in entries if e.strip()]


def parse_address_list(value: str, limit: int = MAX_RECIPIENTS) -> list[tuple[str, str]]:
    """(name, address) of every valid address in a To:/Cc: value, in order, at most
    ``limit`` of them; entries without a usable address are left out. Never raises."""
    out: list[tuple[str, str]] = []
    for entry in split_address_list(value[:_MAX_LIST_CHARS]):
        group = _GROUP_RE.match(entry)
        if group:  # "undisclosed-recipients:", "list: a@b"
            entry = entry[group.end() :].strip()
            if not entry:
                continue
        name, addr = parse_address(entry)
        if is_addr_spec(addr):
            out.append((_CONTROL_RE.sub(" ", name).strip(), addr))
            if len(out) >= limit:
                break
    return out
