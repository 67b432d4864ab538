"""Delivers review replies: an outbox folder of .eml files by default, SMTP when enabled.

Sending mail to a public list is something an operator opts into (``service.smtp_enabled``),
as with 0-day's reports: until then every reply lands in ``{state_dir}/outbox`` where it can
be read, checked and sent by hand (``git send-email``/``sendmail -t < file.eml``).
"""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
import time
from collections.abc import Iterable, Mapping
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path

from reviewbot.config import Settings
from reviewbot.errors import InfraError

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


class Mailer:
    """Writes replies to the outbox, or sends them over SMTP when the config enables it.

    Args:
        settings: ``service.smtp_*`` and ``service.state_dir`` are read.
        outbox: override of the outbox folder (tests); default ``{state_dir}/outbox``.
        env: where ``REVIEWBOT_SMTP_USER``/``REVIEWBOT_SMTP_PASSWORD`` come from
            (default ``os.environ``); no user means no login.
        timeout_s: limit of each SMTP operation.
    """

    def __init__(self, settings: Settings, *, outbox: Path | None = None,
                 env: Mapping[str, str] | None = None, timeout_s: float = 60.0) -> None:
        self.settings = settings
        self.timeout_s = timeout_s  # per SMTP operation (connect, each command)
        self.outbox = outbox or settings.path(settings.service.state_dir) / "outbox"
        # Credentials are secrets: from the environment only, read when the mailer is made.
        source = os.environ if env is None else env
        self.smtp_user = source.get("REVIEWBOT_SMTP_USER", "")
        self.smtp_password = source.get("REVIEWBOT_SMTP_PASSWORD", "")

    def deliver(self, msgs: Iterable[EmailMessage]) -> list[Path | str]:
        """Deliver every message; returns the .eml paths written, or the Message-IDs sent.

        The outbox is idempotent: a reply whose Message-ID already has a file is not written
        twice (replies carry deterministic Message-IDs, so a retried run does not duplicate).

        Raises:
            InfraError: the outbox is not writable or the SMTP server refused or failed.
        """
        batch = list(msgs)
        if not batch:
            return []
        if self.settings.service.smtp_enabled:
            return list(self._send_smtp(batch))
        return list(self._write_outbox(batch))

    # -- outbox -------------------------------------------------------------------------

    def _write_outbox(self, msgs: list[EmailMessage]) -> list[Path]:
        try:
            self.outbox.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InfraError(f"cannot create outbox {self.outbox}: {exc.strerror}") from exc
        written: list[Path] = []
        for msg in msgs:
            path = self.outbox / f"{_file_stem(msg)}.eml"
            if path.exists():
                log.info("outbox: %s already written", path.name)
                written.append(path)
                continue
            data = msg.as_bytes(policy=msg.policy.clone(linesep="\n"))
            tmp = path.with_suffix(".eml.tmp")
            try:
                # tmp + fsync + rename: a crash never leaves half a reply in the outbox.
                with open(tmp, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
                _fsync_dir(self.outbox)
            except OSError as exc:
                raise InfraError(f"cannot write {path}: {exc.strerror}") from exc
            written.append(path)
        return written

    # -- SMTP ---------------------------------------------------------------------------

    def _send_smtp(self, msgs: list[EmailMessage]) -> list[str]:
        svc = self.settings.service
        timeout = self.timeout_s
        sent: list[str] = []
        try:
            with self._connect(timeout) as smtp:
                for msg in msgs:
                    if "From" not in msg:
                        msg["From"] = svc.smtp_from
                    rcpts = [a for _, a in getaddresses(msg.get_all("To", []) + msg.get_all("Cc", [])) if a]
                    if not rcpts:
                        raise InfraError(f"reply {msg['Message-ID']} has no recipient")
                    refused = smtp.send_message(msg, to_addrs=rcpts)
                    if refused:
                        log.warning("smtp: %s refused %s", msg["Message-ID"], refused)
                    sent.append(str(msg["Message-ID"]))
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise InfraError(
                f"SMTP delivery to {svc.smtp_host}:{svc.smtp_port} failed after "
                f"{len(sent)} of {len(msgs)} replies: {exc}",
                output=repr(exc),
            ) from exc
        return sent

    def _connect(self, timeout: float) -> smtplib.SMTP:
        """Connect, upgrade to TLS when the server offers it, log in when credentials exist.

        Port 465 is implicit TLS (SMTPS). Elsewhere STARTTLS is used whenever advertised,
        with certificate checks, and required when logging in: a password is never sent
        in clear text.
        """
        svc = self.settings.service
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if svc.smtp_port == 465:
            smtp = smtplib.SMTP_SSL(svc.smtp_host, svc.smtp_port, timeout=timeout,
                                    context=context)
        else:
            smtp = smtplib.SMTP(svc.smtp_host, svc.smtp_port, timeout=timeout)
        try:
            smtp.ehlo_or_helo_if_needed()
            if not isinstance(smtp, smtplib.SMTP_SSL) and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.smtp_user:
                if not isinstance(smtp, smtplib.SMTP_SSL) and smtp.sock is not None \
                        and not isinstance(smtp.sock, ssl.SSLSocket):
                    raise InfraError(f"{svc.smtp_host}:{svc.smtp_port} offers no TLS; "
                                     "refusing to send REVIEWBOT_SMTP_PASSWORD in clear")
                smtp.login(self.smtp_user, self.smtp_password)
        except BaseException:
            smtp.close()
            raise
        return smtp


def _file_stem(msg: EmailMessage) -> str:
    msgid = str(msg.get("Message-ID", "")).strip().strip("<>")
    if not msgid:
        msgid = f"reply-{time.time_ns()}"
    return _UNSAFE.sub("_", msgid)[:180]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
