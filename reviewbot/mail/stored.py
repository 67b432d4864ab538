"""A parsed :class:`~reviewbot.model.Message` as bytes, so that the service parses each
mail once: the worker stores the message as assembly keeps it (prepared: patch-id computed,
reply bodies dropped) next to the raw mail, and every later assembly of its thread reads it
back instead of parsing the raw bytes again.

The encoding is zlib-compressed JSON with a format number; bytes of another format (or
damaged ones) decode to None, and the caller parses the raw mail as before.
"""

from __future__ import annotations

import json
import zlib
from datetime import datetime
from typing import Any

from reviewbot.model import Message, Subject, Trailer

FORMAT = 1  # bump when Message, Subject or Trailer change shape


def encode(msg: Message) -> bytes:
    doc = {name: getattr(msg, name) for name in Message.__dataclass_fields__}
    doc["subject"] = {n: getattr(msg.subject, n) for n in Subject.__dataclass_fields__}
    doc["trailers"] = [[t.name, t.value, t.origin, t.origin_message_id] for t in msg.trailers]
    doc["date"] = msg.date.isoformat() if msg.date is not None else None
    return zlib.compress(json.dumps({"format": FORMAT, "message": doc}).encode(), 1)


def decode(data: bytes | None) -> Message | None:
    """The message ``encode`` wrote; None for bytes of another format or damaged ones."""
    if not data:
        return None
    try:
        top = json.loads(zlib.decompress(data))
        if not isinstance(top, dict) or top.get("format") != FORMAT:
            return None
        return _message(top["message"])
    except (ValueError, TypeError, KeyError, zlib.error):
        return None


def _message(doc: dict[str, Any]) -> Message:
    subject = dict(doc["subject"])
    subject["prefixes"] = tuple(subject["prefixes"])
    fields = dict(doc)
    fields["subject"] = Subject(**subject)
    fields["trailers"] = tuple(Trailer(*t) for t in doc["trailers"])
    fields["date"] = datetime.fromisoformat(doc["date"]) if doc["date"] else None
    for name in ("references", "prerequisite_patch_ids", "warnings"):
        fields[name] = tuple(doc[name])
    return Message(**fields)
