"""The boot stage's contract with the pipeline, without building anything."""

from __future__ import annotations

from pathlib import Path

from reviewbot.boot import stage
from reviewbot.boot.console import parse_console
from reviewbot.config import Settings
from reviewbot.model import Series
from reviewbot.pipeline import ReviewOptions, ReviewState
from reviewbot.results import (
    BaseBoot,
    BaseBuild,
    BootResult,
    BootSummary,
    BuildSummary,
    TestComparison,
)


def _series() -> Series:
    return Series("id@x", 1, "subject", "a <a@x>", 1, (None, None))


def test_skipped_without_a_worktree() -> None:
    outcome = stage.boot_stage(_series(), ReviewState(), Settings(), ReviewOptions(boot=True))
    assert outcome.status == "skipped" and "apply" in outcome.reason


def test_skipped_when_the_series_did_not_apply(tmp_path: Path) -> None:
    state = ReviewState(worktree=tmp_path, base_commit="0" * 40, applied=False)
    outcome = stage.boot_stage(_series(), state, Settings(), ReviewOptions(boot=True))
    assert outcome.status == "skipped"


class _Run:
    """Stands in for runner.SuiteRun: a completed suite."""

    status = "completed"

    class boot:  # noqa: N801 - stands in for vm.BootRun
        seconds = 1.0
        console_path = Path("/dev/null")
        last_lines = ""


def _result() -> BootResult:
    return BootResult("0" * 40, "cfg", BuildSummary(BaseBuild("success", 1.0, True)),
                      BootSummary("tcg", "given", BaseBoot("completed", 1.0, 1, True, "")))


def test_judge_turns_regressions_and_new_splats_into_findings() -> None:
    base = parse_console("# reviewbot-run: memcg_charge\nok 1 anon_charge\nok 2 v2_migration\n# reviewbot-exit: memcg_charge 0\n# reviewbot-guest: done\n")
    patched = parse_console(
        "# reviewbot-run: memcg_charge\nok 1 anon_charge\n# start v2_migration\n"
        "[ 3.0] BUG: scheduling while atomic: memcg_charge/50/0x00000002\n"
        "# v2_migration: FAIL: new charges landed in the old cgroup\nnot ok 2 v2_migration\n"
        "# reviewbot-exit: memcg_charge 1\n# reviewbot-guest: done\n"
    )

    result = _result()
    report = stage._judge(Settings(), [base], patched, _Run(), result, [])  # type: ignore[arg-type]
    assert report.status == "fail"
    rules = sorted(f.rule for f in report.findings)
    assert rules == ["boot-splat", "boot-test-regression"]
    tests = {t.name: t for t in result.tests}
    assert tests["memcg_charge.v2_migration"].status == "regression"
    assert tests["memcg_charge.anon_charge"].status == "pass"
    assert result.boot is not None and result.boot.splats_new[0].test == "v2_migration"
    data = result.to_json()  # the report's JSON carries the same
    assert data["boot"]["splats_new"][0]["test"] == "v2_migration"  # type: ignore[index]


def test_results_table_lists_every_test_and_the_verdict() -> None:
    from reviewbot.report.boot import render_table

    result = BootResult(
        "604c3f8a730665d8", "abc",
        BuildSummary(BaseBuild("success", 5, True), status="success", seconds=9.5),
        BootSummary("tcg", "KVM probe boot hung", BaseBoot("completed", 30, 2, True, "c.log"),
                    status="completed", seconds=31),
        tests=[TestComparison("memcg_charge.v2_migration", "pass", "fail", "regression",
                              "B=0 KB")],
    )
    table = render_table(result, "fail", "1 regression(s)")
    assert "memcg_charge.v2_migration  pass     fail     regression" in table
    assert "B=0 KB" in table and table.endswith("result: fail - 1 regression(s)")


def test_a_program_that_stopped_is_one_finding_that_says_why() -> None:
    names = ["subtree_control", "min", "low", "high", "max", "oom_events"]
    base = parse_console(
        "# reviewbot-run: test_memcontrol\n"
        + "".join(f"ok {i} test_memcg_{n}\n" for i, n in enumerate(names, 1))
        + "# reviewbot-exit: test_memcontrol 0\n"
        "# reviewbot-run: memcg_charge\nok 1 anon_charge\nok 2 v2_migration\n"
        "# reviewbot-exit: memcg_charge 0\n# reviewbot-guest: done\n")
    # test_memcontrol hangs in test_memcg_high and the guest's timeout kills it (busybox
    # timeout: 143); v2_migration fails on its own.
    patched = parse_console(
        "# reviewbot-run: test_memcontrol\nok 1 test_memcg_subtree_control\n"
        "ok 2 test_memcg_min\nok 3 test_memcg_low\n# reviewbot-exit: test_memcontrol 143\n"
        "# reviewbot-run: memcg_charge\nok 1 anon_charge\n"
        "# v2_migration: FAIL: new charges landed in the old cgroup\nnot ok 2 v2_migration\n"
        "# reviewbot-exit: memcg_charge 1\n# reviewbot-guest: done\n")

    result = _result()
    report = stage._judge(Settings(), [base], patched, _Run(), result, [])  # type: ignore[arg-type]
    failed, stopped = sorted(f.message for f in report.findings
                             if f.rule == "boot-test-regression")
    assert stopped == (
        "test_memcontrol stopped after test_memcg_low on the patched kernel (it timed out "
        "after 120 s (vm.program_timeout_s)); 3 test(s) that pass on the base kernel did not "
        "run: test_memcg_high, test_memcg_max, test_memcg_oom_events")
    assert failed == ("memcg_charge.v2_migration passes on the base kernel and fails with "
                      "this series: v2_migration: FAIL: new charges landed in the old cgroup")
    assert report.reason.startswith("4 regression(s): ") and "stopped after" in report.reason
