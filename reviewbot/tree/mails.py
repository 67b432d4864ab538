"""Mail bytes for ``git am``: the mail package's renderer, or a minimal one until it exists.

``reviewbot.mail.render.patch_mail`` (owned by the mail package) writes a git-am-able mail
with every collected trailer. The fallback below writes the same shape from the
:class:`~reviewbot.model.Patch` fields so the tree stage works on its own.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from email.header import Header
from email.utils import format_datetime, formataddr

from reviewbot.model import Patch

_Renderer = Callable[[Patch], bytes]


def _renderer() -> _Renderer:
    try:
        mod = importlib.import_module("reviewbot.mail.render")
    except ImportError:
        return fallback_patch_mail
    fn: _Renderer | None = getattr(mod, "patch_mail", None)
    return fn or fallback_patch_mail


def patch_mail(patch: Patch) -> bytes:
    """The mail of one patch as ``git am`` reads it."""
    return _renderer()(patch)


def _header(value: str) -> str:
    return value if value.isascii() else Header(value, "utf-8").encode()


def fallback_patch_mail(patch: Patch) -> bytes:
    """A git format-patch style mail: headers, commit message with trailers, ---, diff."""
    msg = patch.message
    name = _header(msg.author_name) if msg.author_name else ""
    lines = [
        "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001",
        f"From: {formataddr((name, msg.author_email)) if name else msg.author_email}",
    ]
    if msg.date is not None:
        lines.append(f"Date: {format_datetime(msg.date)}")
    lines += [
        f"Subject: {_header('[PATCH] ' + msg.subject.subject)}",
        f"Message-ID: <{msg.message_id}>",
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=UTF-8",
        "Content-Transfer-Encoding: 8bit",
        "",
    ]
    body = msg.commit_message.rstrip("\n")
    present = {t.line.lower() for t in msg.trailers} | {
        ln.strip().lower() for ln in body.splitlines()}
    extra = [t.line for t in patch.trailers if t.line.lower() not in present]
    if extra:
        body += "\n" + "\n".join(extra)
    text = "\n".join(lines) + "\n" + body + "\n---\n" + (msg.diff or "")
    if not text.endswith("\n"):
        text += "\n"
    return text.encode("utf-8")
