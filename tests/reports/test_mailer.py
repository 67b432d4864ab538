"""Delivering replies: the outbox by default, SMTP (a real aiosmtpd on loopback) when enabled."""

from __future__ import annotations

import email
import shutil
import socket
import ssl
import subprocess
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


def test_smtp_sends_to_the_author_and_the_patch_recipients(
    series: Series, smtp_server: tuple[int, _Sink]
) -> None:
    port, sink = smtp_server
    settings = Settings(service=ServiceSettings(smtp_enabled=True, smtp_host="127.0.0.1",
                                                smtp_port=port))
    sent = Mailer(settings).deliver(_replies(series))
    assert len(sent) == 1 and str(sent[0]).startswith("<reviewbot-")
    ((rcpts, data),) = sink.envelopes
    # bot@ci.example.org is Cc'd on the fixture patch; only the configured sender is skipped.
    assert rcpts == ["ann@example.org", "cgroups@vger.kernel.org", "hannes@cmpxchg.org",
                     "mkoutny@suse.com", "bot@ci.example.org", "linux-mm@kvack.org"]
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


class _Auth:
    """aiosmtpd authenticator that accepts one user."""

    def __init__(self) -> None:
        self.logins: list[str] = []

    def __call__(self, server: object, session: object, envelope: object, mechanism: str,
                 auth_data: object) -> object:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"bot" \
            and auth_data.password == b"s3cret"
        if ok:
            self.logins.append(mechanism)
        return AuthResult(success=ok)


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_smtp_starttls_and_login_with_credentials_from_the_environment(
        series: Series, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = _self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    sink, auth = _Sink(), _Auth()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = controller_mod.Controller(
        sink, hostname="localhost", port=port, tls_context=tls, require_starttls=True,
        authenticator=auth, auth_require_tls=True)
    controller.start()
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust the test certificate only
        settings = Settings(service=ServiceSettings(smtp_enabled=True, smtp_host="localhost",
                                                    smtp_port=port))
        env = {"REVIEWBOT_SMTP_USER": "bot", "REVIEWBOT_SMTP_PASSWORD": "s3cret"}
        Mailer(settings, env=env).deliver(_replies(series))
        assert auth.logins and len(sink.envelopes) == 1
        with pytest.raises(InfraError, match="SMTP delivery"):
            # (aiosmtpd stalls after a failed login: the timeout ends the wait.)
            Mailer(settings, env={**env, "REVIEWBOT_SMTP_PASSWORD": "wrong"},
                   timeout_s=2).deliver(_replies(series))
    finally:
        controller.stop()


def test_password_is_never_sent_without_tls(series: Series) -> None:
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    sink, auth = _Sink(), _Auth()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    controller = controller_mod.Controller(sink, hostname="127.0.0.1", port=port,
                                           authenticator=auth, auth_require_tls=False)
    controller.start()
    try:
        settings = Settings(service=ServiceSettings(smtp_enabled=True, smtp_host="127.0.0.1",
                                                    smtp_port=port))
        env = {"REVIEWBOT_SMTP_USER": "bot", "REVIEWBOT_SMTP_PASSWORD": "s3cret"}
        with pytest.raises(InfraError, match="offers no TLS"):
            Mailer(settings, env=env).deliver(_replies(series))
        assert auth.logins == [] and sink.envelopes == []
    finally:
        controller.stop()
