from __future__ import annotations

from pathlib import Path

from reviewbot.config import MailSettings, Settings
from reviewbot.mail import read_series
from reviewbot.model import Patch


def thread(mail_data: Path):  # type: ignore[no-untyped-def]
    found = read_series([mail_data / "series-thread.mboxrd"], Settings())
    by_version = {s.version: s for s in found.series}
    return found, by_version[1], by_version[2]


def trailer_lines(patch: Patch) -> list[tuple[str, str]]:
    return [(t.line, t.origin) for t in patch.trailers]


def test_versions_stay_separate_and_newest_is_marked(mail_data: Path) -> None:
    found, v1, v2 = thread(mail_data)
    assert len(found.series) == 2
    assert v1.superseded_by == v2.series_id == "v2-cover@example.org"
    assert v2.latest and v2.supersedes == ("v1-cover@example.org",)


def test_cover_and_slots(mail_data: Path) -> None:
    _, v1, v2 = thread(mail_data)
    assert v1.cover is not None and v1.cover.message_id == "v1-cover@example.org"
    assert [p.index for p in v1.patches] == [1, 2, 3]
    assert v2.missing == (2,)
    assert v2.slots[2] is None
    assert v2.base_commit == "0123456789abcdef0123456789abcdef01234567"


def test_reply_trailers_attach_to_the_patch_they_answer(mail_data: Path) -> None:
    _, v1, _ = thread(mail_data)
    p1, p2, p3 = v1.patches
    assert trailer_lines(p2) == [
        ("Signed-off-by: Ann Author <ann@example.org>", "patch"),
        ("Reviewed-by: Rita Reviewer <rita@example.org>", "reply"),
        ("Tested-by: Tom Tester <tom@example.org>", "reply"),
        ("Acked-by: Michal Reviewer <michal@example.org>", "cover"),
    ]
    # patch 1 got its own ack; the cover's identical ack is not repeated
    assert trailer_lines(p1)[1:] == [("Acked-by: Michal Reviewer <michal@example.org>", "reply")]


def test_quoted_diff_reply_is_not_a_patch_and_foreign_tags_are_ignored(mail_data: Path) -> None:
    _, v1, _ = thread(mail_data)
    p3 = v1.patches[2]
    assert p3.message_id == "v1-3@example.org"
    assert all("Bob" not in t.value for t in p3.trailers)


def test_trailers_carry_over_to_unchanged_patch_of_next_version(mail_data: Path) -> None:
    _, v1, v2 = thread(mail_data)
    assert v2.patches[0].patch_id == v1.patches[0].patch_id
    assert v2.patches[1].patch_id != v1.patches[2].patch_id
    assert ("Acked-by: Michal Reviewer <michal@example.org>", "reply") in trailer_lines(
        v2.patches[0]
    )
    assert len(v2.patches[1].trailers) == 1  # the reworked patch keeps only its own


def test_unthreaded_series_grouped_within_window(mail_data: Path) -> None:
    found = read_series([mail_data / "unthreaded.mboxo"], Settings())
    grouped = [s for s in found.series if len(s.patches) == 3]
    assert len(grouped) == 1 and not grouped[0].threaded
    assert [p.message_id for p in grouped[0].patches] == [
        "un-1@example.org", "un-2@example.org", "un-3@example.org",
    ]
    late = [s for s in found.series if s.series_id == "un-late@example.org"]
    assert late and late[0].missing == (2, 3)


def test_window_is_configurable(mail_data: Path) -> None:
    settings = Settings(mail=MailSettings(unthreaded_window_hours=400))
    found = read_series([mail_data / "unthreaded.mboxo"], settings)
    # The late copy of 1/3 cannot join (slot taken) but nothing is lost.
    assert sum(len(s.patches) for s in found.series) == 4


def test_bad_messages_reported_rest_processed(mail_data: Path) -> None:
    found = read_series(
        [mail_data / "html-only.eml", mail_data / "plain.eml"], Settings()
    )
    assert len(found.series) == 1
    assert len(found.errors) == 1 and "HTML-only" in found.errors[0].error
    assert found.errors[0].source.endswith("html-only.eml")


def test_oversized_message_is_an_error(mail_data: Path) -> None:
    settings = Settings(mail=MailSettings(max_message_bytes=100))
    found = read_series([mail_data / "plain.eml"], settings)
    assert not found.series and "max_message_bytes" in found.errors[0].error


def test_patch_sent_by_someone_else_stays_in_the_cover_series(tmp_path: Path) -> None:
    def mail(mid: str, subject: str, sender: str, body: str, parent: str | None = None) -> str:
        head = f"From: {sender}\nSubject: {subject}\nMessage-ID: <{mid}>\nDate: Mon, 2 Mar 2026 10:00:00 +0000\n"
        if parent:
            head += f"In-Reply-To: <{parent}>\nReferences: <{parent}>\n"
        return "From mboxrd@z Thu Jan  1 00:00:00 1970\n" + head + "\n" + body + "\n\n"

    diff = "x\n\nSigned-off-by: B <b@x.org>\n---\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1 +1 @@\n-a\n+b\n"
    mbox = (
        mail("c@x", "[PATCH 0/2] two", "A <a@x.org>", "cover")
        + mail("p1@x", "[PATCH 1/2] one", "A <a@x.org>", diff, "c@x")
        + mail("p2@x", "[PATCH 2/2] two", "B <b@x.org>", diff.replace("+b", "+c"), "c@x")
    )
    (tmp_path / "t.mbox").write_text(mbox)
    (series,) = read_series([tmp_path / "t.mbox"], Settings()).series
    assert [p.message_id for p in series.patches] == ["p1@x", "p2@x"]


def test_parallel_parse_gives_the_same_series(mail_data: Path) -> None:
    paths = [mail_data / "series-thread.mboxrd", mail_data / "unthreaded.mboxo", mail_data / "html-only.eml"]
    one = read_series(paths, Settings(mail=MailSettings(parse_jobs=1)))
    many = read_series(paths, Settings(mail=MailSettings(parse_jobs=2, parallel_min_bytes=0)))
    assert one.series == many.series
    assert one.errors == many.errors and len(many.errors) == 1


def test_an_unversioned_patch_in_a_versioned_thread_fills_its_free_slot(tmp_path: Path) -> None:
    """b4 adopts "[PATCH 3/3]" sent inside a "[PATCH v3 0/3]" thread (same thread, same
    count, free slot); so do we, with a warning."""
    def mail(mid: str, subject: str, body: str, parent: str | None = None) -> str:
        head = (f"From: A <a@x.org>\nSubject: {subject}\nMessage-ID: <{mid}>\n"
                "Date: Mon, 2 Mar 2026 10:00:00 +0000\n")
        if parent:
            head += f"In-Reply-To: <{parent}>\nReferences: <{parent}>\n"
        return "From mboxrd@z Thu Jan  1 00:00:00 1970\n" + head + "\n" + body + "\n\n"

    def diff(n: int) -> str:
        return (f"change {n}\n\nSigned-off-by: A <a@x.org>\n---\ndiff --git a/f{n} b/f{n}\n"
                f"--- a/f{n}\n+++ b/f{n}\n@@ -1 +1 @@\n-a\n+b\n")

    mbox = (mail("c3@x", "[PATCH v3 0/3] three", "cover")
            + mail("p1@x", "[PATCH v3 1/3] one", diff(1), "c3@x")
            + mail("p2@x", "[PATCH v3 2/3] two", diff(2), "c3@x")
            + mail("p3@x", "[PATCH 3/3] three", diff(3), "c3@x"))
    (tmp_path / "t.mbox").write_text(mbox)
    (series,) = read_series([tmp_path / "t.mbox"], Settings()).series
    assert series.version == 3 and series.complete
    assert [p.message_id for p in series.patches] == ["p1@x", "p2@x", "p3@x"]
    assert any("<p3@x> has no version" in w for w in series.warnings)

    # A taken slot is not overwritten: the stray stays a series of its own.
    (tmp_path / "u.mbox").write_text(mbox + mail("p3b@x", "[PATCH 3/3] three again",
                                                  diff(4), "c3@x"))
    found = read_series([tmp_path / "u.mbox"], Settings()).series
    v3 = next(s for s in found if s.version == 3)
    assert [p.message_id for p in v3.patches] == ["p1@x", "p2@x", "p3@x"]
    assert any(p.message_id == "p3b@x" for s in found if s.version == 1 for p in s.patches)
