"""Delivering replies: the outbox by default, SMTP (a real aiosmtpd on loopback) when enabled."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from email import policy
from pathlib import Path

import pytest
from reportfixtures import make_finding, make_review

from reviewbot.config import ServiceSettings, Settings
from reviewbot.errors import InfraError
from reviewbot.model import Series
from reviewbot.report.mail import render_replies
from reviewbot.service.mailer import Mailer


def _replies(series: Series) -> list[email.message.EmailMessage]:
    review = make_review(series, [make_finding(2705, "\tcss_get(&memcg->css);")])
    return render_replies(review, Settings())


def test_outbox_is_the_default_and_is_under_the_state_dir(series: Series, tmp_path: Path) -> None:
    settings = Settings(service=ServiceSettings(state_dir=str(tmp_path / "state")))
    (path,) = Mailer(settings).deliver(_replies(series))
    assert isinstance(path, Path)
    assert path.parent == tmp_path / "state" / "outbox"
    msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert msg["In-Reply-To"] == "<p1.v2@example.org>"
    assert "> +\tcss_get(&memcg->css);" in msg.get_content()  # type: ignore[attr-defined]
    assert not list(path.parent.glob("*.tmp"))


def test_delivering_the_same_reply_twice_writes_one_file(series: Series, tmp_path: Path) -> None:
    mailer = Mailer(Settings(), outbox=tmp_path)
    first = mailer.deliver(_replies(series))
    second = mailer.deliver(_replies(series))
    assert first == second
    assert len(list(tmp_path.glob("*.eml"))) == 1


class _Sink:
    def __init__(self) -> None:
        self.envelopes: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        self.envelopes.append((list(envelope.rcpt_tos), envelope.original_content))  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, _Sink]]:
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    sink = _Sink()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = controller_mod.Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, sink
    finally:
        controller.stop()


def test_smtp_sends_to_the_patch_author(series: Series, smtp_server: tuple[int, _Sink]) -> None:
    port, sink = smtp_server
    settings = Settings(service=ServiceSettings(smtp_enabled=True, smtp_host="127.0.0.1",
                                                smtp_port=port))
    sent = Mailer(settings).deliver(_replies(series))
    assert len(sent) == 1 and str(sent[0]).startswith("<reviewbot-")
    ((rcpts, data),) = sink.envelopes
    assert rcpts == ["ann@example.org"]
    msg = email.message_from_bytes(data, policy=policy.default)
    assert msg["Subject"] == "Re: [PATCH v2 1/2] mm: memcg: pin the css while charging"
    assert msg["References"] == "<cover.v2@example.org> <p1.v2@example.org>"


def test_smtp_failure_is_an_infrastructure_error(series: Series) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    settings = Settings(service=ServiceSettings(smtp_enabled=True, smtp_host="127.0.0.1",
                                                smtp_port=port))
    with pytest.raises(InfraError, match="SMTP delivery"):
        Mailer(settings).deliver(_replies(series))
