"""KTAP output of boot results (reviewbot boot --ktap)."""

from __future__ import annotations

from reviewbot.report.boot import render_ktap
from reviewbot.results import BootResult, TestComparison


def _result(*tests: TestComparison) -> BootResult:
    return BootResult("0" * 40, "cfg", None, None, tests=list(tests))


def test_base_and_patched_are_subtests_with_one_line_per_test() -> None:
    result = _result(
        TestComparison("memcg_charge.anon_charge", "pass", "pass", "pass"),
        TestComparison("memcg_charge.zombie_leader", "pass", "fail", "regression",
                       "charged the leader's cgroup"),
        TestComparison("test_kmem.test_percpu_basic", "fail", "fail", "fails-on-base"),
        TestComparison("test_memcontrol.test_memcg_sock", "skip", "missing", "skip"),
        TestComparison("weird#name", "flaky", "pass", "flaky-on-base"),
    )
    text = render_ktap(result, "fail", "1 regression(s): memcg_charge.zombie_leader")
    assert text.splitlines() == [
        "KTAP version 1",
        "1..2",
        "  KTAP version 1",
        "  # Subtest: base",
        "  1..5",
        "  ok 1 memcg_charge.anon_charge",
        "  ok 2 memcg_charge.zombie_leader",
        "  not ok 3 test_kmem.test_percpu_basic",
        "  ok 4 test_memcontrol.test_memcg_sock # SKIP",
        "  not ok 5 weird_name # flaky: runs of the base kernel disagree",
        "not ok 1 base",
        "  KTAP version 1",
        "  # Subtest: patched",
        "  1..5",
        "  ok 1 memcg_charge.anon_charge",
        "  not ok 2 memcg_charge.zombie_leader",
        "  not ok 3 test_kmem.test_percpu_basic",
        "  not ok 4 test_memcontrol.test_memcg_sock # did not report a result",
        "  ok 5 weird_name",
        "not ok 2 patched # 1 regression(s): memcg_charge.zombie_leader",
    ]


def test_base_only_run_has_one_subtest() -> None:
    result = _result(TestComparison("memcg_charge.anon_charge", "pass", "not-run", "pass"))
    text = render_ktap(result, "success", "")
    assert text.splitlines()[:2] == ["KTAP version 1", "1..1"]
    assert text.splitlines()[-1] == "ok 1 base"
