"""The one way from mail bytes to :class:`~reviewbot.model.Message`, under one policy.

Every reader calls this module: the CLI's files, folders, mboxes and stdin
(:mod:`reviewbot.mail.series` through :mod:`reviewbot.mail.parallel`), the scanner, the
webhook and the b4 check. The ``mail.max_*`` limits (message size, diff lines) are applied
here and only here, so that the webhook refuses what the CLI refuses; a problem is an
:class:`~reviewbot.model.InputError` entry (readers of many mails) or a
:class:`~reviewbot.errors.BadInputError` (one mail: the webhook, the scanner).
"""

from __future__ import annotations

import io
import logging

from reviewbot.config import MailSettings
from reviewbot.errors import BadInputError
from reviewbot.mail.parse import MailParseError, message_id_of, parse_message
from reviewbot.mail.patchid import patch_id
from reviewbot.mail.read import HEAD_KEPT, RawMessage, iter_stream
from reviewbot.model import InputError, Message

log = logging.getLogger(__name__)


def read_raw(raw: RawMessage, settings: MailSettings, *, prepared: bool = True
             ) -> Message | InputError:
    """One raw message as every reader keeps it (:func:`parse_raw`, then, unless
    ``prepared`` is False, :func:`prepare`: patch-id, reply bodies dropped).

    Each message is an edge: an exception that escapes the parser (a bug; the fuzz suite
    looks for them) becomes this message's error entry, and the rest of the input is read.
    The traceback is logged at debug level (``-vv``).
    """
    try:
        item = parse_raw(raw, settings)
        return prepare(item, settings) if prepared and isinstance(item, Message) else item
    except Exception as exc:
        log.debug("internal error reading %s#%d", raw.source, raw.position, exc_info=exc)
        return InputError(
            raw.source, raw.position, None,
            f"internal error (please report; -vv shows the traceback): {type(exc).__name__}: "
            f"{str(exc)[:200]}",
        )


def parse_raw(raw: RawMessage, settings: MailSettings) -> Message | InputError:
    """Parse one raw message within the mail.max_* limits; unusable -> InputError."""
    if raw.size > settings.max_message_bytes:
        return InputError(
            raw.source, raw.position, message_id_of(raw.data[:HEAD_KEPT]),
            f"message is {raw.size} bytes, over mail.max_message_bytes "
            f"({settings.max_message_bytes})",
        )
    try:
        msg = parse_message(raw.data, raw.position, raw.source)
    except MailParseError as exc:
        return InputError(raw.source, raw.position, exc.message_id, exc.problem)
    except BadInputError as exc:
        return InputError(raw.source, raw.position, None, exc.reason)
    if msg.diff is not None and msg.diff.count("\n") > settings.max_patch_lines:
        return InputError(
            raw.source, raw.position, msg.message_id,
            f"diff has {msg.diff.count(chr(10))} lines, over mail.max_patch_lines "
            f"({settings.max_patch_lines})",
        )
    return msg


def prepare(msg: Message, settings: MailSettings) -> Message:
    """What assembly keeps of a message (also done in-process; idempotent)."""
    if msg.is_patch:
        pid = patch_id(msg.diff or "") if settings.compute_patch_id and msg.patch_id is None else msg.patch_id
        return _replace(msg, body="", patch_id=pid)
    if msg.is_cover:
        return msg
    return _replace(msg, body="", commit_message="", diff=None, to_header="", cc_header="")


def _replace(msg: Message, **changes: object) -> Message:
    """dataclasses.replace() for a Message without running its __init__ again: that was a
    tenth of the time of preparing a year of mail. Message has no __post_init__ and its
    fields are plain values, so copying them is all __init__ would do."""
    new = object.__new__(Message)
    new.__dict__.update(msg.__dict__)
    new.__dict__.update(changes)
    return new




def parse_one(data: bytes, settings: MailSettings, *, source: str, position: int = 0) -> Message:
    """One mail handed over whole (a webhook POST, a scanned archive entry), as assembly
    keeps it.

    Raises:
        BadInputError: the mail is unusable or over a limit; the message names it.
    """
    item = read_raw(RawMessage(data, position, source), settings)
    if isinstance(item, InputError):
        where = f"{source}#{position}" if position else source
        raise BadInputError(item.error, source=where)
    return item


def read_bytes(data: bytes, source: str, settings: MailSettings
               ) -> tuple[list[Message], list[InputError]]:
    """The messages of an mbox or of one mail held in memory, as ``read_series`` keeps
    them, and the entries of those that could not be used."""
    messages: list[Message] = []
    errors: list[InputError] = []
    for raw in iter_stream(io.BytesIO(data), source, max_bytes=settings.max_message_bytes):
        item = read_raw(raw, settings)
        if isinstance(item, InputError):
            errors.append(item)
        else:
            messages.append(item)
    return messages, errors
