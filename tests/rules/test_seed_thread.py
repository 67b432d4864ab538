"""The seed thread's mem_cgroup_attach() hunk, rebuilt as a patch against 6.1, must draw
the reviewers' concerns: duplicated per thread, last writer wins, one css reference per
thread (Balbir Singh, May 2018)."""

from __future__ import annotations

from pathlib import Path

from reviewbot.config import Settings
from reviewbot.engine.stage import rules_stage
from reviewbot.mail import read_series
from reviewbot.pipeline import ReviewOptions, ReviewState

SEED = (
    Path(__file__).resolve().parent.parent.parent
    / "rules/tests/per-mm-update-in-thread-loop/bad-01-seed-mem-cgroup-attach.patch"
)


def _findings():  # type: ignore[no-untyped-def]
    series = read_series([SEED], Settings()).series[0]
    outcome = rules_stage(series, ReviewState(), Settings(), ReviewOptions(use_tree=False))
    return outcome, outcome.findings


def test_seed_fixture_draws_rule_1_and_rule_2() -> None:
    outcome, findings = _findings()
    by_rule = {f.rule: f for f in findings}
    per_mm = by_rule["per-mm-update-in-thread-loop"]
    per_thread_get = by_rule["css-get-in-thread-loop"]
    assert per_mm.function == per_thread_get.function == "mem_cgroup_attach"
    assert "duplicated per thread" in per_mm.message
    assert "last writer wins" in per_mm.message
    assert "task_update_memcg(tsk, new)" in per_mm.message
    assert "one css reference per thread" in per_thread_get.message
    assert per_mm.severity == per_thread_get.severity == "warning"
    assert per_mm.partial and not per_mm.preexisting  # --no-tree: rebuilt from the hunks
    assert per_mm.patch_index == 1
    assert "css_get(css);" in per_thread_get.evidence[0]
    assert outcome.status == "warning"
    assert outcome.json()["mode"] == "hunks"
    assert outcome.json()["rules_run"] >= 13


def test_seed_findings_have_line_independent_fingerprints() -> None:
    _, findings = _findings()
    prints = [f.fingerprint for f in findings]
    assert len(prints) == len(set(prints))
    assert all(len(p) == 16 for p in prints)
