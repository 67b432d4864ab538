from __future__ import annotations

from pathlib import Path

import pytest

from reviewbot.diff import parse_diff
from reviewbot.errors import BadInputError
from reviewbot.mail.parse import parse_message, split_body


def load(mail_data: Path, name: str):  # type: ignore[no-untyped-def]
    return parse_message((mail_data / name).read_bytes(), 0, name)


@pytest.mark.parametrize(
    "name",
    ["plain.eml", "crlf.eml", "quoted-printable.eml", "base64.eml", "latin1-8bit.eml",
     "undeclared-8bit.eml", "alternative.eml", "flowed.eml", "encoded-words.eml",
     "folded-duplicate-headers.eml"],
)
def test_every_encoding_yields_the_same_diff(mail_data: Path, name: str) -> None:
    msg = load(mail_data, name)
    assert msg.diff is not None
    assert msg.diff.startswith("diff --git a/mm/memcontrol.c b/mm/memcontrol.c\n")
    assert "\r" not in msg.diff
    assert "-\t\tmemcg = mem_cgroup_from_task(rcu_dereference(mm->owner));\n" in msg.diff
    assert msg.diff.rstrip().endswith("} while (!css_tryget(&memcg->css));")  # signature cut
    assert msg.commit_message.startswith("memcg: fold the owner lookup")
    (file_diff,) = parse_diff(msg.diff)  # a well-formed hunk, whatever the transfer encoding
    assert file_diff.new_path == "mm/memcontrol.c"


def test_plain_patch_fields(mail_data: Path) -> None:
    msg = load(mail_data, "plain.eml")
    assert msg.message_id == "plain-1@example.org"
    assert msg.author == "Ann Author <ann@example.org>"
    assert msg.subject.subject == "memcg: fold the owner lookup into get_mem_cgroup_from_mm"
    assert [t.line for t in msg.trailers] == ["Signed-off-by: Ann Author <ann@example.org>"]
    assert msg.date is not None and msg.date.year == 2026


def test_quoted_printable_non_ascii_decoded(mail_data: Path) -> None:
    assert "(struct mm_struct *mm) été=" in (load(mail_data, "quoted-printable.eml").diff or "")


def test_declared_and_undeclared_latin1(mail_data: Path) -> None:
    for name in ("latin1-8bit.eml", "undeclared-8bit.eml"):
        msg = load(mail_data, name)
        assert "Jörg Müller" in msg.commit_message, name


def test_attachment_patch_is_found(mail_data: Path) -> None:
    msg = load(mail_data, "attachment.eml")
    assert msg.diff is not None and "mm/memcontrol.c" in msg.diff
    assert "Signed-off-by: Ann Author" in msg.commit_message
    assert " 1 file changed" not in msg.commit_message
    # As in b4 am: a diffstat paragraph right above the diff is the last paragraph, so the
    # sign-off above it is not taken as a trailer.
    assert msg.trailers == ()


def test_alternative_prefers_text(mail_data: Path) -> None:
    assert "<html>" not in load(mail_data, "alternative.eml").body


def test_flowed_is_warned(mail_data: Path) -> None:
    assert any("format=flowed" in w for w in load(mail_data, "flowed.eml").warnings)


def test_html_only_is_a_clear_error(mail_data: Path) -> None:
    with pytest.raises(BadInputError, match=r"html-1@example.org.*HTML-only"):
        load(mail_data, "html-only.eml")


def test_encoded_words(mail_data: Path) -> None:
    msg = load(mail_data, "encoded-words.eml")
    assert msg.author_name == "Jörg Müller"
    assert msg.subject.raw == "[PATCH v2] memcg: über owner lookup"
    assert msg.subject.version == 2


def test_folded_and_duplicated_headers(mail_data: Path) -> None:
    msg = load(mail_data, "folded-duplicate-headers.eml")
    assert msg.author_email == "ann@example.org"
    assert msg.subject.subject == "memcg: folded subject line"
    assert (msg.subject.index, msg.subject.total, msg.subject.version) == (2, 5, 3)
    assert msg.message_id == "folded-1@example.org"
    assert msg.references == ("cover-x@example.org", "other@example.org")
    assert msg.parent_id == "cover-x@example.org"


def test_missing_message_id_is_synthesised_and_flagged(mail_data: Path) -> None:
    msg = load(mail_data, "no-message-id.eml")
    assert msg.message_id_synthesised
    assert msg.message_id.startswith("reviewbot-")


def test_not_a_mail() -> None:
    with pytest.raises(BadInputError, match="no mail headers"):
        parse_message(b"just some text\nwith lines\n", 3, "x.txt")


def test_quoted_diff_is_not_a_diff() -> None:
    body = "> diff --git a/x b/x\n> --- a/x\n> +++ b/x\n> @@ -1 +1 @@\n> -a\n> +b\n"
    assert split_body(body)[1] is None


def test_plain_diff_u_without_git_header() -> None:
    body = "fix\n\nSigned-off-by: A <a@b.c>\n---\n--- a/x.c\n+++ b/x.c\n@@ -1 +1 @@\n-a\n+b\n"
    message, diff = split_body(body)
    assert diff is not None and diff.startswith("--- a/x.c")
    assert message.strip().endswith("Signed-off-by: A <a@b.c>")


def test_base_commit_and_change_id() -> None:
    raw = (
        b"From: A <a@b.c>\nSubject: [PATCH 0/2] x\nMessage-ID: <c@b.c>\n\ncover text\n\n"
        b"---\nbase-commit: 0123456789abcdef0123456789abcdef01234567\nchange-id: 20260101-x-1234\n"
        b"prerequisite-patch-id: " + b"ab" * 20 + b"\n"
    )
    msg = parse_message(raw)
    assert msg.base_commit == "0123456789abcdef0123456789abcdef01234567"
    assert msg.change_id == "20260101-x-1234"
    assert msg.prerequisite_patch_ids == ("ab" * 20,)


def test_pure_rename_without_hunks_is_a_patch() -> None:
    body = (
        "mm: rename\n\nSigned-off-by: A <a@b.c>\n---\n a.c => b.c | 0\n\n"
        "diff --git a/mm/a.c b/mm/b.c\nsimilarity index 100%\nrename from mm/a.c\n"
        "rename to mm/b.c\n-- \n2.39.5\n"
    )
    message, diff = split_body(body)
    assert diff == (
        "diff --git a/mm/a.c b/mm/b.c\nsimilarity index 100%\nrename from mm/a.c\n"
        "rename to mm/b.c\n"
    )
    assert message.strip().endswith("Signed-off-by: A <a@b.c>")


def test_charset_with_a_nul_byte_falls_back_instead_of_raising() -> None:
    # Found by the fuzz test: Python raises ValueError, not LookupError, for such a codec.
    raw = (
        b"From: =?\x00UTF-8?Q?J=C3=B6rg?= <joerg@example.org>\nSubject: [PATCH] x\n"
        b"Message-ID: <nul@example.org>\nContent-Type: text/plain; charset=\"ut\x00f-8\"\n\nbody\n"
    )
    msg = parse_message(raw)
    assert msg.author_email == "joerg@example.org" and msg.body == "body\n"


@pytest.mark.parametrize("value", [
    "Mon, 1 Jun 2020 10:00:00 +0000", "Mon, 1 Jun 2020 10:00:00 -0000",
    "Tue, 30 Feb 2021 10:00:00 +0100", "Fri, 21 Feb 20 10:45:54 GMT",
    "1 Jun 2020 23:59:60 +0530", "Wed, 03 Jun 2020 08:17:42 -0700 (PDT)",
    "Mon,  1 Jun 2020 10:00:00 +0200", "Thu, 1 Jan 2026 00:00:00 +0000", "not a date",
])
def test_date_fast_path_equals_the_stdlib(value: str) -> None:
    import email.utils

    from reviewbot.mail.parse import _date

    try:
        want = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        want = None
    got = _date(value)
    assert got == want
    assert (got is None) or (got.utcoffset() == want.utcoffset())  # type: ignore[union-attr]
