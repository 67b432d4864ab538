"""Render a patch back into a mail that ``git am`` applies, with every collected trailer."""

from __future__ import annotations

import email.utils
from email.header import Header

from reviewbot.mail.subject import rebuild_subject
from reviewbot.mail.trailers import commit_trailers
from reviewbot.model import Patch


def commit_message_with_trailers(patch: Patch) -> str:
    """The commit message with its own trailer block replaced by ``patch.trailers``.

    The trailers collected from replies and the cover letter go after the patch's own, the
    same order ``b4 am`` writes them.
    """
    msg = patch.message
    text = msg.commit_message.rstrip()
    own = commit_trailers(text)
    if own:
        # Drop the existing trailer paragraph; it is rewritten below in full.
        paragraphs = text.rsplit("\n\n", 1)
        text = paragraphs[0].rstrip() if len(paragraphs) == 2 else ""
    lines = [t.line for t in patch.trailers]
    body = (text + "\n\n" if text else "") + "\n".join(lines)
    return body.rstrip() + "\n"


def _one_line(value: str) -> str:
    """A header value on one line: a CR or LF inside would start a header (or the body)
    of git am's own choosing."""
    return " ".join(value.replace("\0", " ").split())


def _author(name: str, addr: str) -> str:
    name, addr = _one_line(name), _one_line(addr)
    if not addr.isascii():
        # formataddr() raises on a non-ASCII address; git am reads UTF-8 headers as they are.
        return f"{name} <{addr}>" if name else addr
    return email.utils.formataddr((str(Header(name, "utf-8")) if not name.isascii() else name, addr))


def patch_mail(patch: Patch) -> bytes:
    """A git-am-able mail: From/Date/Subject/Message-ID, message, trailers, ``---``, diff."""
    msg = patch.message
    subject = _one_line(rebuild_subject(msg.subject, patch.index))
    author = _author(msg.author_name, msg.author_email)
    date = email.utils.format_datetime(msg.date) if msg.date else email.utils.formatdate()
    headers = [
        f"From: {author}",
        f"Date: {date}",
        f"Subject: {subject}",
        f"Message-ID: <{_one_line(msg.message_id)}>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=UTF-8",
        "Content-Transfer-Encoding: 8bit",
    ]
    diff = msg.diff or ""
    text = "\n".join(headers) + "\n\n" + commit_message_with_trailers(patch) + "---\n" + diff
    if not text.endswith("\n"):
        text += "\n"
    try:
        return text.encode("utf-8", errors="surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate in text handed in by an API caller
        return text.encode("utf-8", errors="replace")


def series_mbox(patches: list[Patch]) -> bytes:
    """An mbox of patches in order, as ``git am`` and ``b4 am`` write them."""
    out = []
    for patch in patches:
        out.append(b"From git@z Thu Jan  1 00:00:00 1970\n" + patch_mail(patch) + b"\n")
    return b"".join(out)
