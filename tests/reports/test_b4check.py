"""b4's external check protocol: our JSON as b4 itself parses it."""

from __future__ import annotations

import dataclasses
import email
import json
import subprocess
import sys
from email import policy
from pathlib import Path

import pytest
from reportfixtures import COVER, PATCH1, make_finding, make_review

from reviewbot.model import Series
from reviewbot.pipeline import StageOutcome
from reviewbot.report.b4check import check_results

REPO = Path(__file__).resolve().parents[2]
KEYS = {"tool", "status", "summary", "url", "details"}


def _check_b4(stdin: bytes, *args: str) -> tuple[int, list[dict[str, str]]]:
    proc = subprocess.run([sys.executable, "-m", "reviewbot", "check-b4", *args], input=stdin,
                          capture_output=True, cwd=REPO, timeout=300)
    return proc.returncode, json.loads(proc.stdout)


def test_error_findings_fail_and_details_list_each_one(series: Series) -> None:
    review = make_review(series, [make_finding(2705, "\tcss_get(&memcg->css);"),
                                  make_finding(2707, "x", rule="r2", severity="warning")])
    (result,) = check_results(review, 1)
    assert set(result) == KEYS
    assert result["status"] == "fail"
    assert result["summary"] == "1 error, 1 warning"
    details = json.loads(result["details"])
    assert details[0]["status"] == "fail"
    assert details[0]["description"].startswith("mm/memcontrol.c:2705: error: [css-get-leak]")
    assert details[0]["srcline"] == "css_get(&memcg->css);"


def test_warnings_only_warn_and_preexisting_pass(series: Series) -> None:
    warn = make_finding(2705, "x", severity="warning")
    assert check_results(make_review(series, [warn]), 1)[0]["status"] == "warn"
    old = make_finding(2705, "x", severity="error")
    old = dataclasses.replace(old, preexisting=True)
    assert check_results(make_review(series, [old]), 1)[0]["status"] == "pass"


def test_per_patch_check_shows_only_that_patch(series: Series) -> None:
    review = make_review(series, [make_finding(2705, "x", patch_index=2)])
    assert check_results(review, 1)[0]["status"] == "pass"
    assert check_results(review, None)[0]["status"] == "fail"


def test_a_failed_stage_fails_the_check(series: Series) -> None:
    review = make_review(series, [], extra=[StageOutcome("boot", "fail", "kernel panic")])
    (result,) = check_results(review, 1)
    assert result["status"] == "fail" and "boot failed" in result["summary"]


def test_cli_answers_json_for_a_patch() -> None:
    rc, results = _check_b4(PATCH1)
    assert rc == 0
    assert results and all(set(r) == KEYS for r in results)
    assert results[0]["tool"] == "reviewbot"
    # Patch 1 of the fixture leaks a css reference on an early return: the shipped
    # rules flag it, and the engine must have run (not failed on the mail).
    assert results[0]["status"] in ("warn", "fail")
    assert "rules failed" not in results[0]["summary"]


def test_cli_passes_a_cover_letter_and_fails_garbage() -> None:
    assert _check_b4(COVER)[1][0]["summary"] == "no patch in this message"
    rc, results = _check_b4(b"\x00\x01 not a mail")
    assert rc == 0 and results[0]["status"] == "fail"
    assert results[0]["summary"].startswith("unusable input")


def test_b4_reads_our_output() -> None:
    checks = pytest.importorskip("b4.review.checks")
    msg = email.message_from_bytes(PATCH1, policy=policy.EmailPolicy(utf8=True))
    cmd = [sys.executable, "-m", "reviewbot", "check-b4"]
    results = checks._run_external_cmd(cmd, msg, str(REPO))
    assert results and results[0]["tool"] == "reviewbot"
    # b4 turns anything it cannot parse into "invalid JSON output" or an exit-code failure.
    assert not results[0]["summary"].startswith(("invalid JSON", "exited with error"))
