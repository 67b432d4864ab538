"""The boot stage's contract with the pipeline, without building anything."""

from __future__ import annotations

from pathlib import Path

from reviewbot.boot import stage
from reviewbot.boot.console import parse_console
from reviewbot.config import Settings
from reviewbot.model import Series
from reviewbot.pipeline import ReviewOptions, ReviewState


def _series() -> Series:
    return Series("id@x", 1, "subject", "a <a@x>", 1, (None, None))


def test_skipped_without_a_worktree() -> None:
    outcome = stage.boot_stage(_series(), ReviewState(), Settings(), ReviewOptions(boot=True))
    assert outcome.status == "skipped" and "apply" in outcome.reason


def test_skipped_when_the_series_did_not_apply(tmp_path: Path) -> None:
    state = ReviewState(worktree=tmp_path, base_commit="0" * 40, applied=False)
    outcome = stage.boot_stage(_series(), state, Settings(), ReviewOptions(boot=True))
    assert outcome.status == "skipped"


def test_judge_turns_regressions_and_new_splats_into_findings() -> None:
    base = parse_console("# reviewbot-run: memcg_charge\nok 1 anon_charge\nok 2 v2_migration\n# reviewbot-exit: memcg_charge 0\n# reviewbot-guest: done\n")
    patched = parse_console(
        "# reviewbot-run: memcg_charge\nok 1 anon_charge\n# start v2_migration\n"
        "[ 3.0] BUG: scheduling while atomic: memcg_charge/50/0x00000002\n"
        "# v2_migration: FAIL: new charges landed in the old cgroup\nnot ok 2 v2_migration\n"
        "# reviewbot-exit: memcg_charge 1\n# reviewbot-guest: done\n"
    )

    class Run:
        status = "completed"

        class boot:  # noqa: N801 - stands in for vm.BootRun
            seconds = 1.0
            console_path = Path("/dev/null")
            last_lines = ""

    data = {"boot": {}, "build": {}}
    report = stage._judge(Settings(), [base], patched, Run(), data, [])
    assert report.status == "fail"
    rules = sorted(f.rule for f in report.findings)
    assert rules == ["boot-splat", "boot-test-regression"]
    tests = {t["name"]: t for t in data["tests"]}
    assert tests["memcg_charge.v2_migration"]["status"] == "regression"
    assert tests["memcg_charge.anon_charge"]["status"] == "pass"
    assert data["boot"]["splats_new"][0]["test"] == "v2_migration"


def test_results_table_lists_every_test_and_the_verdict() -> None:
    from reviewbot.commands.boot import render_table

    data = {
        "base_commit": "604c3f8a730665d8",
        "config": "abc",
        "build": {"base": {"status": "success", "seconds": 5, "cached": True}, "status": "success", "seconds": 9.5, "warnings_new": []},
        "boot": {"accel": "tcg", "accel_reason": "KVM probe boot hung", "base": {"status": "completed", "seconds": 30, "runs": 2, "cached": True}, "status": "completed", "seconds": 31, "splats_new": []},
        "tests": [{"name": "memcg_charge.v2_migration", "base": "pass", "patched": "fail", "status": "regression", "detail": "B=0 KB"}],
        "metrics": {},
    }
    table = render_table(data, "fail", "1 regression(s)")
    assert "memcg_charge.v2_migration  pass     fail     regression" in table
    assert "B=0 KB" in table and table.endswith("result: fail - 1 regression(s)")
