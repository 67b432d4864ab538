"""The hand-written multipart path gives the email package's text, or steps aside."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from reviewbot.mail import mime
from reviewbot.mail import parse as mparse
from reviewbot.mail.read import iter_stream

DATA = Path(__file__).resolve().parents[1] / "data" / "mail"


def _both(raw: bytes) -> tuple[tuple[list[str], bool] | None, str | Exception, list[str]]:
    """(fast path result, email package text or its error, fast path warnings)."""
    head, payload = mime.split_head(raw)
    ctype = mparse._first(mparse._parse_headers(head), "content-type") or ""
    warnings: list[str] = []
    fast = mime.walk(ctype, payload, mparse._keep_part, mparse._decode_bytes, warnings)
    try:
        slow: str | Exception = mparse._walk_multipart(raw, [])
    except ValueError as exc:
        slow = exc
    return fast, slow, warnings


def _text(fast: tuple[list[str], bool]) -> str:
    return "\n".join(fast[0])


def _mail(ctype: str, body: str) -> bytes:
    return (f"From: A <a@example.org>\nSubject: [PATCH] x\nMessage-ID: <m@x>\n"
            f"MIME-Version: 1.0\nContent-Type: {ctype}\n\n{body}").encode()


@pytest.mark.parametrize("name", ["alternative.eml", "attachment.eml"])
def test_fixtures_take_the_fast_path_with_the_same_text(name: str) -> None:
    fast, slow, _ = _both((DATA / name).read_bytes())
    assert fast is not None and _text(fast) == slow


def test_signed_mail_keeps_the_text_and_drops_the_signature() -> None:
    raw = _mail('multipart/signed; micalg=pgp-sha256;\n protocol="application/pgp-signature";'
                ' boundary="SiG"',
                "preamble\n--SiG\nContent-Type: text/plain; charset=utf-8\n"
                "Content-Transfer-Encoding: quoted-printable\n\nAcked-by: J=C3=B6rg <j@x>\n"
                "--SiG\nContent-Type: application/pgp-signature; name=\"signature.asc\"\n\n"
                "-----BEGIN PGP SIGNATURE-----\n--SiG--\n")
    fast, slow, _ = _both(raw)
    # the line end before a delimiter belongs to the delimiter (RFC 2046 5.1.1)
    assert fast is not None and _text(fast) == slow == "Acked-by: Jörg <j@x>"


def test_crlf_nested_and_attached_patch() -> None:
    body = ("--out\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n"
            "--in\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
            "--in\r\nContent-Type: text/html\r\n\r\n<p>see</p>\r\n--in--\r\n"
            "--out\r\nContent-Type: application/octet-stream; name=fix.patch\r\n"
            "Content-Disposition: attachment; filename=\"0001-fix.patch\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\nZGlmZiAtLWdpdCBhL3ggYi94Cg==\r\n--out--\r\n")
    raw = ("From: A <a@example.org>\r\nSubject: x\r\nMessage-ID: <m@x>\r\n"
           "Content-Type: multipart/mixed; boundary=out\r\n\r\n" + body).encode()
    fast, slow, _ = _both(raw)
    assert fast is not None and _text(fast) == slow == "see attached\ndiff --git a/x b/x\n"


def test_html_only_is_reported_by_both() -> None:
    raw = _mail("multipart/alternative; boundary=b",
                "--b\nContent-Type: text/html\n\n<p>hi</p>\n--b--\n")
    fast, slow, _ = _both(raw)
    assert fast == ([], True) and isinstance(slow, ValueError)
    with pytest.raises(mparse.BadInputError, match="HTML-only"):
        mparse.parse_message(raw)


def test_flowed_part_warns() -> None:
    raw = _mail("multipart/mixed; boundary=b",
                "--b\nContent-Type: text/plain; format=flowed\n\nhello\n--b--\n")
    fast, slow, warnings = _both(raw)
    assert fast is not None and _text(fast) == slow == "hello"
    assert warnings == ["format=flowed: the mailer may have rewrapped the patch"]


@pytest.mark.parametrize("ctype, body, why", [
    ("multipart/mixed; boundary=b", "--b\nContent-Type: text/plain\n\ncut off here\n",
     "no closing boundary"),
    ("multipart/mixed; boundary=b", "no delimiter at all\n", "no opening boundary"),
    ("multipart/mixed", "--b\n\nx\n--b--\n", "no boundary parameter"),
    ("multipart/mixed; boundary=b",
     "--b\nContent-Type: text/x-patch\nContent-Disposition: attachment;\n"
     " filename*=utf-8''%C3%A9.patch\n\nx\n--b--\n", "RFC 2231 file name"),
    ("multipart/mixed; boundary=b", "--b\nContent-Type: message/rfc822\n\nSubject: y\n\nz\n--b--\n",
     "forwarded message"),
    ("multipart/mixed; boundary=b",
     "--b\nContent-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nx\n--b--\n",
     "uuencode"),
    ("multipart/mixed; boundary=b", "--b\nnot a header line\n\nbody\n--b--\n",
     "part without a header block"),
    ("multipart/mixed; boundary=b", "--bogus\n\nx\n--b--\n", "longer delimiter line"),
    ("multipart/alternative; boundary=b", "\n--b--\n", "a closing delimiter and no part"),
])
def test_unusual_shapes_are_left_to_the_email_package(ctype: str, body: str, why: str) -> None:
    raw = _mail(ctype, body)
    fast, _, _ = _both(raw)
    assert fast is None, why
    mparse.parse_message(raw)  # still a result (or a BadInputError), never an exception


def test_a_year_of_list_mail_gives_the_same_text(shared_dir: Path) -> None:
    with gzip.open(shared_dir / "corpus" / "cgroups-2020.mbox.gz", "rb") as stream:
        raws = [r.data for r in iter_stream(stream, "2020")]  # type: ignore[arg-type]
    multipart = [raw for raw in raws if (mparse._first(mparse._parse_headers(mime.split_head(raw)[0]),
                                                  "content-type") or "").lower().startswith(
                                                      "multipart/")]
    assert len(multipart) == 60
    fast_ones = 0
    for raw in multipart:
        fast, slow, _ = _both(raw)
        if fast is None:
            continue
        fast_ones += 1
        expected = slow if isinstance(slow, str) else None
        assert (_text(fast) if fast[0] or not fast[1] else None) == expected, raw[:300]
    assert fast_ones >= 0.9 * len(multipart)


def test_a_fallback_after_a_warning_does_not_warn_twice() -> None:
    raw = _mail("multipart/mixed; boundary=b",
                "--b\nContent-Type: text/plain; format=flowed\n\nhello\n"
                "--b\nContent-Type: message/rfc822\n\nSubject: y\n\nz\n--b--\n")
    msg = mparse.parse_message(raw)
    assert msg.warnings.count("format=flowed: the mailer may have rewrapped the patch") == 1
