"""Base against patched: regressions, failures on base, flakiness and figure-type tests."""

from __future__ import annotations

from reviewbot.boot import compare
from reviewbot.boot.console import ConsoleReport, parse_console


def report(results: dict[str, str], metrics: dict[str, str] | None = None) -> ConsoleReport:
    lines = ["# reviewbot-run: memcg_charge"]
    for key, value in (metrics or {}).items():
        lines.append(f"# metric {key}={value}")
    for i, (name, status) in enumerate(results.items(), start=1):
        lines.append(f"{'ok' if status == 'pass' else 'not ok'} {i} {name}")
    lines.append("# reviewbot-exit: memcg_charge 0")
    return parse_console("\n".join(lines) + "\n")


def by_name(tests: list[compare.TestComparison]) -> dict[str, compare.TestComparison]:
    return {t.name: t for t in tests}


def test_regression_only_when_base_passes_and_patched_fails() -> None:
    base = report({"a": "pass", "b": "fail", "c": "pass", "d": "fail"})
    patched = report({"a": "fail", "b": "fail", "c": "pass", "d": "pass"})
    got = by_name(compare.compare([base], patched))
    assert got["memcg_charge.a"].status == compare.REGRESSION
    assert got["memcg_charge.b"].status == compare.FAILS_ON_BASE
    assert got["memcg_charge.c"].status == compare.PASS
    assert got["memcg_charge.d"].status == compare.FIXED


def test_test_missing_on_patched_is_a_regression() -> None:
    got = by_name(compare.compare([report({"a": "pass"})], report({}), ["memcg_charge.a"]))
    assert got["memcg_charge.a"].patched == "missing"
    assert got["memcg_charge.a"].status == compare.REGRESSION


def test_disagreeing_base_runs_are_flaky_not_regressions() -> None:
    runs = [report({"a": "pass"}), report({"a": "fail"})]
    got = by_name(compare.compare(runs, report({"a": "fail"})))
    assert got["memcg_charge.a"].base == "flaky"
    assert got["memcg_charge.a"].status == compare.FLAKY


def test_clone_vm_payer_change_fails_the_patched_kernel() -> None:
    base = report({"clone_vm_shared": "pass"}, {"clone_vm_shared.payer": "owner"})
    same = report({"clone_vm_shared": "pass"}, {"clone_vm_shared.payer": "owner"})
    other = report({"clone_vm_shared": "pass"}, {"clone_vm_shared.payer": "sharer"})
    assert compare.compare([base], same)[0].status == compare.PASS
    changed = compare.compare([base], other)[0]
    assert changed.status == compare.REGRESSION and "sharer" in changed.detail


def test_exit_cost_regresses_only_when_much_slower() -> None:
    base = report({"exit_path_cost": "pass"}, {"exit_path_cost.usec": "40000"})
    slower = report({"exit_path_cost": "pass"}, {"exit_path_cost.usec": "90000"})
    much = report({"exit_path_cost": "pass"}, {"exit_path_cost.usec": "400000"})
    assert compare.compare([base], slower)[0].status == compare.PASS
    assert compare.compare([base], much)[0].status == compare.REGRESSION


def test_new_splats_are_a_fingerprint_set_difference() -> None:
    splat = "[ 1.0] WARNING: CPU: 0 PID: 5 at mm/memcontrol.c:100 f+0x1/0x2\n[ 1.1]  f+0x1/0x2\n"
    other = "[ 1.0] refcount_t: underflow; use-after-free.\n"
    base = parse_console("# reviewbot-run: p\n" + splat)
    patched = parse_console("# reviewbot-run: p\n" + splat.replace("PID: 5", "PID: 9") + other)
    new = compare.new_splats([base], patched)
    assert [s.kind for s in new] == ["refcount"]


def test_a_regression_that_does_not_happen_again_is_flaky_on_patched() -> None:
    base = [report({"a": "pass", "b": "pass"})]
    first = compare.compare(base, report({"a": "fail", "b": "fail"}))
    second = compare.compare(base, report({"a": "fail", "b": "pass"}))
    got = by_name(compare.confirm(first, second))
    assert got["memcg_charge.a"].status == compare.REGRESSION
    assert got["memcg_charge.b"].status == compare.FLAKY_PATCHED
