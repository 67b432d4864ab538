"""Fingerprints that survive line shifts, so that "new in this series" is a set difference.

The line numbers inside a message ("taken at line 412") and the whitespace of the evidence
change when unrelated code moves; the rule, the file, the function, the message's words and
the flagged code do not.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

_NUMBERS = re.compile(r"\b(?:line|lines|at)\s+\d+\b|\b\d+\b")
_SPACE = re.compile(r"\s+")


def normalize_message(message: str) -> str:
    return _SPACE.sub(" ", _NUMBERS.sub("#", message)).strip()


def fingerprint(
    rule: str, file: str, function: str | None, message: str, evidence: Iterable[str] = ()
) -> str:
    parts = [rule, file, function or "", normalize_message(message)]
    parts += [_SPACE.sub(" ", e).strip() for e in evidence]
    return hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]
