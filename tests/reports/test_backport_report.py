"""A stable backport in the reports: the text line, the JSON field, the reply's summary."""

from __future__ import annotations

import json

from reportfixtures import PATCH1, make_finding, make_review

from reviewbot.config import ServiceSettings, Settings
from reviewbot.mail.parse import parse_message
from reviewbot.mail.series import assemble
from reviewbot.model import Series
from reviewbot.report.json import review_json, series_json
from reviewbot.report.mail import render_replies
from reviewbot.report.text import render_review, render_series

SHA = "1234abcd5678ef901234abcd5678ef901234abcd"
SETTINGS = Settings(service=ServiceSettings(smtp_from="reviewbot <bot@ci.example.org>"))


def autosel_series() -> Series:
    """The report fixture's patch 1 as the AUTOSEL bot would send it to 6.1."""
    raw = PATCH1.replace(b"[PATCH v2 1/2]", b"[PATCH AUTOSEL 6.1 1/1]").replace(
        b"\nTake a css reference", f"\n[ Upstream commit {SHA} ]\n\nTake a css reference"
        .encode())
    raw = raw.replace(b"In-Reply-To: <cover.v2@example.org>\nReferences: <cover.v2@example.org>\n",
                      b"")
    (found,) = assemble([parse_message(raw)], Settings().mail).series
    return found


LINE = ("  backport: stable backport to 6.1 (AUTOSEL) of upstream commit 1234abcd5678 "
        "(claimed by the patch; whether the diff matches a normal backport of that commit is "
        "not checked offline)")


def test_text_report_says_which_upstream_commit_the_backport_claims() -> None:
    text = render_review(make_review(autosel_series(), []))
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  backport: "))
    joined = lines[start] + "".join(" " + line.strip() for line in lines[start + 1:start + 3])
    assert joined == LINE
    assert all(len(line) <= 88 for line in lines[start:start + 3])
    assert "  backport: " in render_series(autosel_series())  # `reviewbot series` too


def test_json_carries_the_backport_and_null_otherwise(series: Series) -> None:
    doc = review_json([make_review(autosel_series(), [])], [])
    # What a reader of the JSON gets, through the encoder.
    (one,) = json.loads(json.dumps(doc))["series"]
    assert one["backport"] == {
        "target": "6.1", "autosel": True, "upstream": [SHA],
        "evidence": "subject prefix [AUTOSEL 6.1]; upstream commit named in 1 of 1 patch(es)",
        "unclaimed": []}
    assert series_json(series)["backport"] is None  # the fixture's [PATCH v2 1/2]


def test_a_plain_series_has_no_backport_line(series: Series) -> None:
    assert "backport" not in render_review(make_review(series, []))


def test_reply_summary_names_the_claimed_upstream_commit() -> None:
    review = make_review(autosel_series(), [make_finding(2705, "\tcss_get(&memcg->css);")])
    (reply,) = render_replies(review, SETTINGS)
    body = reply.get_content()
    summary = body[body.index("Summary for"):]
    assert "  backport: stable backport to 6.1 (AUTOSEL) of upstream commit\n" \
           "    1234abcd5678" in summary
    assert all(len(line) <= 72 for line in summary.splitlines())

