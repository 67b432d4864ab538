"""Reply mails in kernel reviewer style: threading, quoting, wrapping, summary."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from reportfixtures import PATCH1, make_finding, make_review

from reviewbot.config import ServiceSettings, Settings
from reviewbot.model import Patch, Series
from reviewbot.pipeline import StageOutcome
from reviewbot.report.mail import plan_quotes, render_replies
from reviewbot.results import (
    BaseBoot,
    BaseBuild,
    BootResult,
    BootSummary,
    BuildSummary,
    TestComparison,
)

SETTINGS = Settings(service=ServiceSettings(smtp_from="reviewbot <bot@ci.example.org>"))


def _body(msg: object) -> str:
    return msg.get_content()  # type: ignore[attr-defined,no-any-return]


def test_a_patch_finding_is_a_reply_to_that_patch(series: Series) -> None:
    review = make_review(series, [make_finding(2705, "\tcss_get(&memcg->css);")])
    (reply,) = render_replies(review, SETTINGS)
    assert reply["Subject"] == "Re: [PATCH v2 1/2] mm: memcg: pin the css while charging"
    assert reply["In-Reply-To"] == "<p1.v2@example.org>"
    assert reply["References"] == "<cover.v2@example.org> <p1.v2@example.org>"
    assert reply["To"] == "Ann Author <ann@example.org>"
    assert reply["From"] == "reviewbot <bot@ci.example.org>"
    assert reply["Message-ID"].endswith("@ci.example.org>")


def test_reply_all_ccs_the_lists_and_people_once_but_not_the_author_or_the_bot(
    series: Series,
) -> None:
    review = make_review(series, [make_finding(2705, "\tcss_get(&memcg->css);")])
    (reply,) = render_replies(review, SETTINGS)
    assert reply["Cc"] == ("cgroups@vger.kernel.org, Johannes Weiner <hannes@cmpxchg.org>, "
                           "Michal Koutný <mkoutny@suse.com>, linux-mm@kvack.org")
    author_only = Settings(service=ServiceSettings(smtp_from="reviewbot <bot@ci.example.org>",
                                                   reply_cc=False))
    (reply,) = render_replies(review, author_only)
    assert reply["Cc"] is None and reply["To"] == "Ann Author <ann@example.org>"


def test_flagged_line_is_quoted_and_the_finding_follows_it(series: Series) -> None:
    review = make_review(series, [make_finding(2705, "\tcss_get(&memcg->css);")])
    lines = _body(render_replies(review, SETTINGS)[0]).splitlines()
    flagged = lines.index("> +\tcss_get(&memcg->css);")
    assert lines[flagged + 1] == ""
    comment = " ".join(lines[flagged + 2:flagged + 4])
    assert comment.startswith("[error] css-get-leak (high confidence), "
                              "mm/memcontrol.c:2705 in try_charge():")
    assert "> diff --git a/mm/memcontrol.c b/mm/memcontrol.c" in lines
    assert any(x.startswith("> @@ -2700,8 +2700,13 @@") for x in lines)
    # The quote stops at the flagged line: what follows is the reviewer's text.
    assert "> \tif (consume_stock(memcg, nr_pages))" not in lines[:flagged]


def test_two_findings_in_one_hunk_quote_each_line_once(series: Series) -> None:
    review = make_review(series, [
        make_finding(2707, "\t\treturn 0; /* this return leaks the css reference taken just "
                     "above it */", rule="early-return"),
        make_finding(2705, "\tcss_get(&memcg->css);"),
    ])
    body = _body(render_replies(review, SETTINGS)[0])
    lines = body.splitlines()
    assert lines.count("> +\tcss_get(&memcg->css);") == 1
    assert lines.index("> +\tcss_get(&memcg->css);") < next(
        i for i, x in enumerate(lines) if x.startswith("[error] early-return"))
    assert sum(1 for x in lines if x.startswith("> @@")) == 1


def test_prose_fits_72_columns_and_code_is_not_rewrapped(series: Series) -> None:
    review = make_review(series, [make_finding(2707, "\t\treturn 0; /* this return leaks "
                                               "the css reference taken just above it */")])
    body = _body(render_replies(review, SETTINGS)[0])
    for line in body.splitlines():
        if not line.startswith(">") and not line.startswith("  reviewbot review"):
            assert len(line) <= 72, line
    assert "> +\t\treturn 0; /* this return leaks the css reference taken just above it */" \
        in body.splitlines()


def test_summary_and_how_to_reproduce(series: Series) -> None:
    review = make_review(series, [make_finding(2705, "\tcss_get(&memcg->css);")])
    body = _body(render_replies(review, SETTINGS)[0])
    assert "  apply: skipped (--no-tree)" in body
    assert "  boot: skipped (not requested (use --boot))" in body
    assert "  reviewbot review '<cover.v2@example.org>' --no-tree" in body
    assert body.splitlines().count("-- ") == 1


def test_series_level_results_go_to_the_cover(series: Series) -> None:
    tests = [TestComparison(f"memcg_charge.t{i}", "pass", "pass", "pass") for i in range(11)]
    tests.append(TestComparison("memcg_charge.stock_leak", "pass", "fail", "regression"))
    result = BootResult("0" * 40, "cfg",
                        BuildSummary(BaseBuild("success", 1, True), status="success"),
                        BootSummary("tcg", "given", BaseBoot("completed", 1, 2, True, "c"),
                                    status="completed", console="p"),
                        tests=tests)
    boot = StageOutcome("boot", "fail", "charge test memcg_stock_leak failed", result)
    review = make_review(series, [make_finding(None, "", patch_index=None,
                                               rule="series-order", severity="warning",
                                               message="patch 2 depends on patch 1")],
                         extra=[boot])
    (reply,) = render_replies(review, SETTINGS)
    assert reply["In-Reply-To"] == "<cover.v2@example.org>"
    assert reply["Subject"] == "Re: [PATCH v2 0/2] mm: memcg: tidy the charge path"
    body = _body(reply)
    assert "The boot stage failed: charge test memcg_stock_leak failed" in body
    assert "    build: success" in body and "    boot: completed" in body
    assert "    tests: fail (1 of 12 regressed)" in body
    assert "--boot" in body


def test_a_clean_review_sends_nothing(series: Series) -> None:
    assert render_replies(make_review(series, []), SETTINGS) == []


def test_findings_below_min_severity_are_left_out(series: Series) -> None:
    from reviewbot.config import RulesSettings

    settings = Settings(rules=RulesSettings(min_severity="warning"))
    info = make_finding(2705, "\tcss_get(&memcg->css);", severity="info")
    assert render_replies(make_review(series, [info]), settings) == []


def test_message_id_is_stable_for_the_same_review(series: Series) -> None:
    review = make_review(series, [make_finding(2705, "\tcss_get(&memcg->css);")])
    first = render_replies(review, SETTINGS)[0]["Message-ID"]
    assert render_replies(review, SETTINGS)[0]["Message-ID"] == first


def test_a_finding_off_the_diff_is_still_reported(series: Series) -> None:
    review = make_review(series, [make_finding(9999, "\tsomething_else();")])
    body = _body(render_replies(review, SETTINGS)[0])
    assert "could not be matched to a line" in body
    assert "> \tsomething_else();" in body


def test_quote_plan_places_by_evidence_when_line_is_unknown(series: Series) -> None:
    plan = plan_quotes(series.patches[0].message.diff or "",
                       [make_finding(None, "\tcss_put(&memcg->css);")])
    assert not plan.unplaced
    assert plan.blocks[0].quoted[-1] == "> +\tcss_put(&memcg->css);"


def test_real_rules_review_becomes_a_reply_quoting_the_leak(series: Series) -> None:
    # The whole path the service takes: pipeline (rules only) -> reply mail. Patch 1 of the
    # fixture returns early after css_get(), which the shipped rules must flag.
    from reviewbot.pipeline import ReviewOptions, review_series

    review = review_series(series, Settings(), ReviewOptions(use_tree=False))
    rules = review.outcome("rules")
    assert rules is not None and rules.status not in ("fail", "error"), rules.reason
    replies = render_replies(review, SETTINGS)
    to_p1 = [r for r in replies if r["In-Reply-To"] == "<p1.v2@example.org>"]
    assert to_p1, [r["Subject"] for r in replies]
    body = _body(to_p1[0])
    assert "> +\tcss_get(&memcg->css);" in body or "> +\t\treturn 0;" in body


def test_reply_cc_narrowed_to_lists_and_away_from_never_patterns(series: Series) -> None:
    review = make_review(series, [make_finding(2705, "\tcss_get(&memcg->css);")])
    lists_only = Settings(service=ServiceSettings(
        smtp_from="reviewbot <bot@ci.example.org>",
        reply_cc_only=("*@vger.kernel.org", "LINUX-MM@kvack.org"),
    ))
    (reply,) = render_replies(review, lists_only)
    assert reply["Cc"] == "cgroups@vger.kernel.org, linux-mm@kvack.org"
    no_mm = Settings(service=ServiceSettings(
        smtp_from="reviewbot <bot@ci.example.org>", reply_cc_never=("*@kvack.org", "hannes@*"),
    ))
    (reply,) = render_replies(review, no_mm)
    assert reply["Cc"] == "cgroups@vger.kernel.org, Michal Koutný <mkoutny@suse.com>"


def test_reproduce_names_the_input_file_when_the_message_id_was_made_up(
    tmp_path: Path,
) -> None:
    # `git format-patch` output mailed nowhere has no Message-ID: the parser makes one up
    # that no inbox knows, so the command must name the file (quoted for the shell).
    from reviewbot.mail import read_series

    path = tmp_path / "it's a fix.patch"
    path.write_bytes(re.sub(rb"(Message-ID|In-Reply-To|References): .*\n", b"", PATCH1))
    (found,) = read_series([path], Settings()).series
    assert found.patches[0].message.message_id_synthesised
    review = make_review(found, [make_finding(2705, "\tcss_get(&memcg->css);")])
    body = _body(render_replies(review, SETTINGS)[0])
    command = f"  reviewbot review {shlex.quote(str(path))} --no-tree"
    assert command in body.splitlines()
    assert "reviewbot-" not in body.split("To reproduce:")[1]  # no synthetic id
    assert shlex.split(command)[2] == str(path)


def test_reproduce_from_stdin_says_to_save_the_mail_instead_of_a_made_up_id() -> None:
    from reviewbot.mail.parse import parse_message
    from reviewbot.mail.series import assemble

    raw = re.sub(rb"(Message-ID|In-Reply-To|References): .*\n", b"", PATCH1)
    (found,) = assemble([parse_message(raw, source="<stdin>")], Settings().mail).series
    review = make_review(found, [make_finding(2705, "\tcss_get(&memcg->css);")])
    tail = _body(render_replies(review, SETTINGS)[0]).split("To reproduce:")[1]
    assert "  reviewbot review MBOX --no-tree" in tail.splitlines()
    assert "reviewbot-" not in tail and "<stdin>" not in tail


def test_an_author_address_the_header_registry_refuses_is_used_bare() -> None:
    from reviewbot.report.mail import _address

    assert _address('"\\"x', "@@bad") in ("@@bad", '"\\"x <@@bad>')


def test_only_plain_message_ids_reach_the_reply_headers(series: Series) -> None:
    """A Message-ID from a mail goes into In-Reply-To/References only when it is a plain
    msg-id: an encoded word can decode to spaces, non-ASCII or CR LF (issue 12)."""
    import dataclasses

    patch = series.slots[1]
    assert isinstance(patch, Patch)
    odd = dataclasses.replace(patch.message, message_id="p1 v2\r\nBcc: x@evil@example.org",
                              references=("cover.v2@example.org", "späť@example.org"))
    slots = (series.slots[0], dataclasses.replace(patch, message=odd), *series.slots[2:])
    review = make_review(dataclasses.replace(series, slots=slots),
                         [make_finding(2705, "\tcss_get(&memcg->css);")])
    (reply,) = render_replies(review, SETTINGS)
    assert reply["In-Reply-To"] is None
    assert reply["References"] == "<cover.v2@example.org>"
    text = reply.as_string()
    assert "Bcc" not in text and "späť" not in text
