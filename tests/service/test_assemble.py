"""When a series is queued for review: complete, waited out, superseded, never twice."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_mails import reply_mail, series_mails

from reviewbot.config import Settings, settings_from_mapping
from reviewbot.mail.parse import parse_message
from reviewbot.service.assemble import SeriesTracker, mail_meta
from reviewbot.service.store import Store


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.clock = Clock()
        self.queued: list[int] = []
        self.tracker = SeriesTracker(store, settings, self.queued.append, self.clock)

    def post(self, raw: bytes) -> list[str]:
        """Store one mail as the webhook does and run intake; returns the actions taken."""
        msg = parse_message(raw)
        added = self.store.add_mail(
            raw, mail_meta(msg), hashlib.sha256(raw).hexdigest(), now=self.clock()
        )
        self.clock.now += 1
        return [d.action for d in self.tracker.on_mail(added.mail_id)]

    def runs(self) -> list[dict]:  # type: ignore[type-arg]
        return self.store.run_rows(limit=1000)

    def series(self) -> list[dict]:  # type: ignore[type-arg]
        return self.store.series_rows(limit=1000)


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    settings = settings_from_mapping(
        {"service": {"series_wait_s": 600}, "mail": {"compute_patch_id": False}}
    )
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.migrate()
    yield Harness(store, settings)
    store.close()


def test_complete_series_is_queued_once_when_its_last_patch_arrives(h: Harness) -> None:
    mails = series_mails("fix-a", 3)
    actions = [h.post(m) for m in mails]
    assert actions[-1] == ["queued"]
    assert all("queued" not in a for a in actions[:-1])
    assert len(h.queued) == 1
    run = h.runs()[0]
    assert run["state"] == "queued" and not run["partial"]
    assert run["series_id"] == "fix-a-v1-0@example.org"


def test_out_of_order_arrival_still_queues_once(h: Harness) -> None:
    mails = series_mails("fix-b", 4)
    for m in [mails[3], mails[1], mails[4], mails[0], mails[2]]:
        h.post(m)
    assert len(h.queued) == 1 and len(h.runs()) == 1


def test_patches_wait_briefly_for_their_cover_letter(h: Harness) -> None:
    cover, *patches = series_mails("fix-j", 2)
    for m in patches:
        assert h.post(m) == ["waiting"]
    assert h.series()[0]["reason"] == "waiting for the cover letter"
    assert h.post(cover) == ["queued"]
    assert h.runs()[0]["series_id"] == "fix-j-v1-0@example.org"
    assert "fix-j-v1-0@example.org" in h.runs()[0]["message_ids"]


def test_late_cover_letter_and_replies_do_not_queue_again(h: Harness) -> None:
    cover, *patches = series_mails("fix-c", 2)
    for m in patches:
        h.post(m)
    assert h.queued == []
    h.clock.now += 61  # service.cover_wait_s: reviewed without the cover
    assert [d.action for d in h.tracker.expire_waiting()] == ["queued"]
    assert len(h.queued) == 1
    h.post(cover)
    h.post(reply_mail("fix-c", "fix-c-v1-1@example.org", "fix-c-v1-0@example.org"))
    assert len(h.queued) == 1
    assert len(h.series()) == 1  # the cover joined the same series row


def test_resend_with_new_message_ids_is_not_reviewed_twice(h: Harness) -> None:
    for m in series_mails("fix-d", 2):
        h.post(m)
    for m in series_mails("fix-d", 2, domain="resend.example.org"):
        h.post(m)
    assert len(h.queued) == 1
    assert len(h.queued) == 1
    states = sorted(s["state"] for s in h.series())
    assert states == ["queued", "queued"]  # both rows point at the one run
    assert len({s["run_id"] for s in h.series()}) == 1


def test_incomplete_series_waits_then_is_reviewed_with_missing_slots(h: Harness) -> None:
    mails = series_mails("fix-e", 3)
    for m in mails[:3]:  # cover, 1, 2: patch 3 never comes
        h.post(m)
    assert h.queued == [] and h.series()[0]["state"] == "waiting"
    h.clock.now += 100
    assert h.tracker.expire_waiting() == [] or h.queued == []
    h.clock.now += 600
    actions = [d.action for d in h.tracker.expire_waiting()]
    assert actions == ["queued"]
    run = h.runs()[0]
    assert run["partial"] and run["missing"] == [3]
    # Patch 3 arrives after all: the complete series is new content, reviewed once more.
    assert h.post(mails[3]) == ["queued"]
    assert len(h.queued) == 2
    assert h.tracker.expire_waiting() == []


def test_newer_version_supersedes_pending_older_one(h: Harness) -> None:
    v1 = series_mails("fix-f", 3, version=1, subject="mm: memcg: fix leak")
    v2 = series_mails("fix-f", 3, version=2, subject="mm: memcg: fix leak")
    for m in v1[:3]:  # v1 incomplete: waiting
        h.post(m)
    for m in v2:
        h.post(m)
    by_version = {s["version"]: s for s in h.series()}
    assert by_version[1]["state"] == "superseded"
    assert by_version[1]["superseded_by"] == by_version[2]["id"]
    assert by_version[2]["state"] == "queued"
    # The rest of v1 arriving late is not reviewed: v2 exists.
    assert h.post(v1[3]) == ["known"]
    assert len(h.queued) == 1


def test_queued_run_of_older_version_is_dropped(h: Harness) -> None:
    for m in series_mails("fix-g", 2, version=1, subject="mm: memcg: fix race"):
        h.post(m)
    [run_v1] = h.queued
    for m in series_mails("fix-g", 2, version=2, subject="mm: memcg: fix race"):
        h.post(m)
    got = h.store.get_run(run_v1)
    assert got is not None and got["state"] == "superseded"
    assert h.store.claim_run(run_v1, "w", lease_s=10) is None  # a worker will skip it
    assert len(h.queued) == 2


def test_unthreaded_patches_are_grouped_by_author_version_and_total(h: Harness) -> None:
    raw = series_mails("fix-h", 2, cover=False)
    # Strip the threading headers: each patch sent as its own thread.
    plain = [b"\n".join(ln for ln in m.split(b"\n") if not ln.startswith((b"In-Reply-To",
                                                                         b"References")))
             for m in raw]
    h.post(plain[0])
    h.post(plain[1])
    runs = h.runs()
    assert len(runs) == 1 and not runs[0]["partial"]
    assert sorted(runs[0]["message_ids"]) == ["fix-h-v1-1@example.org", "fix-h-v1-2@example.org"]


def test_identical_newer_version_reuses_the_dropped_run(h: Harness) -> None:
    """v2 that changes nothing but the tag: the same content is reviewed once, for v2."""
    for m in series_mails("fix-i", 2, version=1, subject="mm: memcg: fix x"):
        h.post(m)
    [run_v1] = h.queued
    v2 = series_mails("fix-i", 2, version=2, subject="mm: memcg: fix x")
    # Give v2 v1's diffs: same content, new version tag and Message-IDs.
    same = [m.replace(b"_v2 */", b"_v1 */") for m in v2]
    for m in same:
        h.post(m)
    got = h.store.get_run(run_v1)
    assert got is not None and got["state"] == "queued"
    assert got["series_id"] == "fix-i-v2-0@example.org"
    assert len(h.runs()) == 1


def test_a_from_that_makes_the_stdlib_parser_recurse_is_read_in_bounded_time() -> None:
    from reviewbot.service.assemble import header_meta

    raw = (b"From: " + b"a:" * 5000 + b" <x@example.com>\r\nMessage-ID: <m@x>\r\n"
           b"Subject: [PATCH] x\r\n\r\nbody\r\n")
    meta = header_meta(raw)
    assert meta is not None and meta.message_id == "m@x"
