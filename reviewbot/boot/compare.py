"""Base kernel against patched kernel: which tests regressed, which splats are new.

A test is a regression only when it passes on every base run and fails on the patched
kernel. A test that fails on base is reported as such and does not fail the review; one
whose base runs disagree is "flaky" and does not either. Two memcg_charge results are
figures rather than pass/fail, compared here:
- clone_vm_shared.payer: which cgroup pays for a CLONE_VM sharer's pages; the patched kernel
  fails the test when its answer differs from the base kernel's.
- exit_path_cost.usec: the owner + sharers exit time; the patched kernel fails when it is
  more than EXIT_COST_FACTOR times slower and EXIT_COST_MIN_US slower in absolute terms
  (TCG timing is noisy; small differences mean nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reviewbot.boot.console import ConsoleReport
from reviewbot.results import SplatSummary, TestComparison

EXIT_COST_FACTOR = 3.0
EXIT_COST_MIN_US = 100_000

# Status of one test in the comparison (the "status" key of the JSON "tests" list).
REGRESSION = "regression"
PASS = "pass"
FIXED = "fixed"  # fails on base, passes patched
FAILS_ON_BASE = "fails-on-base"
FLAKY = "flaky-on-base"
FLAKY_PATCHED = "flaky-on-patched"  # failed once on the patched kernel, passed the second time
SKIP = "skip"


def base_status(runs: Sequence[ConsoleReport], name: str) -> str:
    """One status over every base run: flaky when the runs disagree."""
    seen = {r.results[name].status if name in r.results else "missing" for r in runs}
    if len(seen) == 1:
        return seen.pop()
    return "flaky"


def _metric_verdict(name: str, base: Sequence[ConsoleReport], patched: ConsoleReport) -> str:
    """A reason the patched kernel fails a figure-type test, or ""."""
    if name == "memcg_charge.clone_vm_shared":
        payers = {r.metrics.get("clone_vm_shared.payer") for r in base}
        mine = patched.metrics.get("clone_vm_shared.payer")
        if len(payers) == 1 and mine is not None and mine not in payers:
            return f"the {mine}'s cgroup pays for a CLONE_VM sharer's pages; on base the {payers.pop()}'s does"
    if name == "memcg_charge.exit_path_cost":
        values = [int(r.metrics["exit_path_cost.usec"]) for r in base if "exit_path_cost.usec" in r.metrics]
        mine_raw = patched.metrics.get("exit_path_cost.usec")
        if values and mine_raw is not None:
            worst_base = max(values)
            mine_us = int(mine_raw)
            if mine_us > worst_base * EXIT_COST_FACTOR and mine_us - worst_base > EXIT_COST_MIN_US:
                return f"owner + sharers exit took {mine_us / 1000:.0f} ms, base {worst_base / 1000:.0f} ms"
    return ""


def compare(base: Sequence[ConsoleReport], patched: ConsoleReport | None, expected: Sequence[str] = ()) -> list[TestComparison]:
    """Per-test comparison, in base console order, then tests only the patched kernel ran.

    Args:
        base: the reports of every base run (at least one).
        patched: the patched kernel's report; None when it did not boot or build.
        expected: names that must appear (a test missing on both sides is still listed).
    """
    names: list[str] = list(expected)
    for report in [*base, *([patched] if patched else [])]:
        names += [n for n in report.results if n not in names]
    out = []
    for name in names:
        b = base_status(base, name)
        if patched is None:
            p = "not-run"
        else:
            p = patched.results[name].status if name in patched.results else "missing"
        detail = ""
        if patched is not None and p == "pass" and b == "pass":
            detail = _metric_verdict(name, base, patched)
            if detail:
                p = "fail"
        if patched is not None and p == "fail" and not detail and name in patched.results:
            diags = patched.results[name].diagnostics
            detail = next((d for d in reversed(diags) if "FAIL" in d or "kernel" in d), diags[-1] if diags else "")
        out.append(TestComparison(name, b, p, _status(b, p), detail))
    return out


def confirm(first: list[TestComparison], second: list[TestComparison]) -> list[TestComparison]:
    """Keep a regression only when the second patched run regresses the same test too."""
    again = {t.name: t for t in second}
    out = []
    for test in first:
        if test.status == REGRESSION and again.get(test.name, test).status != REGRESSION:
            test = TestComparison(test.name, test.base, "flaky", FLAKY_PATCHED, f"failed once, passed on a second boot: {test.detail}")
        out.append(test)
    return out


def _status(base: str, patched: str) -> str:
    if base == "flaky":
        return FLAKY
    if base == "pass":
        return PASS if patched == "pass" else (SKIP if patched == "not-run" else REGRESSION)
    if base in ("fail", "missing"):
        return FIXED if patched == "pass" else FAILS_ON_BASE
    return SKIP


MAX_SPLATS = 20


def unique_splats(report: ConsoleReport) -> list[SplatSummary]:
    """One entry per fingerprint, first occurrence, with a count: a mutant that breaks every
    exit printed 881 splats of three kinds."""
    seen: dict[str, SplatSummary] = {}
    # kmemleak's records last (a debug kernel's scan may list dozens): they must not push a
    # lockdep or KASAN report of the second boot out of the first MAX_SPLATS
    for splat in sorted(report.splats, key=lambda s: s.kind == "kmemleak"):
        entry = seen.get(splat.fingerprint)
        if entry is None:
            seen[splat.fingerprint] = SplatSummary(
                splat.kind, splat.title, splat.fingerprint, splat.program, splat.test,
                "\n".join(splat.excerpt))
        else:
            entry.count += 1
    return list(seen.values())[:MAX_SPLATS]


def base_splats(base: Sequence[ConsoleReport]) -> list[SplatSummary]:
    """Every base run's splats, one per fingerprint, counted over all runs."""
    merged = ConsoleReport({}, {}, [s for r in base for s in r.splats], {})
    return unique_splats(merged)


def new_splats(base: Sequence[ConsoleReport], patched: ConsoleReport) -> list[SplatSummary]:
    """Splats of the patched boot whose fingerprint no base run showed (one per fingerprint)."""
    known = {s.fingerprint for r in base for s in r.splats}
    return [s for s in unique_splats(patched) if s.fingerprint not in known]


@dataclass(frozen=True)
class RegressionGroup:
    """Regressions with one cause: a program that stopped early (its tests after that point
    reported nothing), or tests that failed the same way."""

    program: str
    cause: str  # "stopped" | "failed"
    tests: tuple[str, ...]
    message: str
    evidence: tuple[str, ...] = ()


def why_stopped(program: str, patched: ConsoleReport | None, program_timeout_s: int) -> str:
    """Why ``program`` reported no more results on the patched kernel, from its exit code
    (the guest's init prints it) and the kernel splats printed while it ran."""
    if patched is None or program not in patched.programs:
        return "it never started: the guest stopped before it"
    rc = patched.programs[program]
    if rc is None:
        why = "it never exited: the guest stopped while it ran"
    elif rc in (124, 143):
        why = f"it timed out after {program_timeout_s} s (vm.program_timeout_s)"
    elif rc == 137:
        why = "it was killed by SIGKILL (the OOM killer, most likely)"
    elif rc > 128:
        why = f"it was killed by signal {rc - 128}"
    else:
        why = f"it exited with code {rc}"
    splat = next((s for s in patched.splats if s.program == program), None)
    if splat is not None:
        why += f"; kernel {splat.kind} while it ran: {splat.title}"
    return why


def regression_groups(tests: Sequence[TestComparison], patched: ConsoleReport | None,
                      program_timeout_s: int) -> list[RegressionGroup]:
    """The regressions grouped by program and cause, in test order: one finding each."""
    regressions = [t for t in tests if t.status == REGRESSION]
    programs: dict[str, list[TestComparison]] = {}
    for t in regressions:
        programs.setdefault(t.name.split(".", 1)[0], []).append(t)
    out: list[RegressionGroup] = []
    for program, group in programs.items():
        missing = [t for t in group if t.patched == "missing"]
        if missing:
            ran = [r.name for r in (patched.results.values() if patched else [])
                   if r.program == program]
            where = f"after {ran[-1]}" if ran else "before its first test"
            why = why_stopped(program, patched, program_timeout_s)
            names = tuple(t.name for t in missing)
            short = ", ".join(n.split(".", 1)[1] for n in names)
            splat = next((s for s in (patched.splats if patched else [])
                          if s.program == program), None)
            out.append(RegressionGroup(
                program, "stopped", names,
                f"{program} stopped {where} on the patched kernel ({why}); "
                f"{len(names)} test(s) that pass on the base kernel did not run: {short}",
                tuple(splat.excerpt[:12]) if splat else ()))
        by_detail: dict[str, list[TestComparison]] = {}
        for t in group:
            if t.patched != "missing":
                by_detail.setdefault(t.detail, []).append(t)
        for detail, same in by_detail.items():
            names = tuple(t.name for t in same)
            what = names[0] if len(names) == 1 else \
                f"{len(names)} tests of {program} ({', '.join(n.split('.', 1)[1] for n in names)})"
            verb = "passes" if len(names) == 1 else "pass"
            verb2 = "fails" if len(names) == 1 else "fail"
            out.append(RegressionGroup(
                program, "failed", names,
                f"{what} {verb} on the base kernel and {verb2} with this series"
                + (f": {detail}" if detail else "")))
    return out
