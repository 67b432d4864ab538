"""The boot stage: build base and patched kernels, boot both, run the suite, compare.

``boot_stage(series, state, settings, options) -> StageOutcome`` for the pipeline, and
:func:`run_boot` for ``reviewbot boot`` (which has no series and may have no patched tree).

Both give a :class:`~reviewbot.results.BootResult`: base and patched build, base and
patched boots, one comparison per test and the figures the suite printed.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from reviewbot.boot import cache, compare, coverage, kbuild, leaks, profiles, vm
from reviewbot.boot.console import ConsoleReport
from reviewbot.boot.guest import programs
from reviewbot.boot.runner import (
    SuiteRun,
    base_source,
    boot_timeout_s,
    build,
    locked,
    out_dir,
    prepare_guest,
    program_timeout_s,
    repo_of,
    run_suite,
)
from reviewbot.config import Settings
from reviewbot.errors import InfraError
from reviewbot.gitcmd import git
from reviewbot.model import Finding, Series
from reviewbot.progress import Progress
from reviewbot.results import (
    BaseBoot,
    BaseBuild,
    BootResult,
    BootSummary,
    BuildSummary,
    CompilerWarning,
    CoverageSummary,
    CoveredFunction,
    Metric,
    ReviewOptions,
    ReviewState,
    SplatSummary,
    StageOutcome,
    TestComparison,
)

log = logging.getLogger(__name__)

EXPECTED = tuple(f"memcg_charge.{t}" for t in programs.CHARGE_TESTS)


@dataclass
class BootReport:
    """What :func:`run_boot` found."""

    status: str  # success | warning | fail | error
    reason: str
    result: BootResult
    findings: list[Finding] = field(default_factory=list)


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def base_key(settings: Settings, base_commit: str, profile: profiles.Profile | None = None) -> str:
    """The base-result cache key: base commit, build profile, Kconfig fragments, guest.

    The profile's name is in the key as well as its fragments' hash: two profiles with the
    same fragments still differ in kernel command line and time limits."""
    profile = profile or profiles.choose(settings, ())
    config = kbuild.config_key(kbuild.fragment_paths(settings, profile))
    guest = programs.guest_key(settings.vm.selftests)
    return f"{base_commit[:16]}-{profile.name}-{config}-{guest}"


def _enough(cached: cache.BaseResult | None, repeats: int) -> cache.BaseResult | None:
    return cached if cached is not None and len(cached.runs) >= repeats else None


def ensure_base(
    settings: Settings, repo: Path, base_commit: str, accel: str | None, progress: Progress,
    profile: profiles.Profile | None = None,
) -> tuple[cache.BaseResult, bool, str, str]:
    """Base results from the cache, or build + boot the base ``vm.suite_repeats`` times.

    Returns (result, cached, accel, accel_reason). Raises InfraError when the base kernel
    does not build or boot: that is not the series' fault.
    """
    if accel is None and settings.vm.accel in ("kvm", "tcg"):
        accel = settings.vm.accel  # forced in config.yaml or by `reviewbot boot --accel`
    profile = profile or profiles.choose(settings, ())
    key = base_key(settings, base_commit, profile)
    repeats = max(1, settings.vm.suite_repeats)
    # The key leaves out suite_repeats so that a base run twice also answers a config that
    # asks for one run (CI's debug job); a base cached with fewer runs than asked is run again.
    cached = _enough(cache.load(settings, key), repeats)
    out = out_dir(settings, base_commit, "base", profile)
    if cached is not None:
        progress.say(f"base: cached results ({key})")
        chosen, why = accel or cached.runs[0].accel, "as the cached base runs"
        return cached, True, chosen, why
    src = base_source(settings, repo, base_commit)
    with locked(out.parent / "base.lock"):
        cached = _enough(cache.load(settings, key), repeats)  # another run may have filled it while we waited
        if cached is not None:
            progress.say(f"base: cached results ({key})")
            return cached, True, accel or cached.runs[0].accel, "as the cached base runs"
        result = build(settings, "base", src, out, progress, profile)
        if not result.ok:
            raise InfraError(f"base kernel {base_commit[:12]} does not build: {result.reason}", detail=result.excerpt)
        chosen, why = (accel, "given") if accel else vm.choose_accel(settings, result.image, out / "probe")
        progress.say(f"accel: {chosen} ({why})")
        initrds, _ = prepare_guest(settings, src, out, profile)
        runs = []
        for index in range(repeats):
            run = run_suite(settings, f"base run {index + 1}", result.image, initrds,
                            out / f"console-{index + 1}.log", chosen, progress, profile)
            if run.status == "timeout":
                raise InfraError(f"base kernel: boot timeout after {boot_timeout_s(settings, profile)} s",
                                 detail=run.boot.last_lines)
            runs.append((chosen, run.status, run.boot.seconds, run.boot.console_path))
        build_info = {
            "status": result.status,
            "seconds": round(result.seconds, 1),
            "warnings": [w.to_json() for w in kbuild.recorded_warnings(out)],
        }
        return cache.save(settings, key, build_info, runs), False, chosen, why


def touched_files(worktree: Path, base_commit: str) -> list[str]:
    result = git(["diff", "--name-only", base_commit, "HEAD"], cwd=worktree, timeout=120)
    return [line for line in result.stdout.splitlines() if line] if result.ok else []


def run_boot(
    settings: Settings,
    repo: Path,
    base_commit: str,
    patched_tree: Path | None,
    *,
    progress: Progress | None = None,
    accel: str | None = None,
    profile: str | None = None,
) -> BootReport:
    """Base (cached) and, when ``patched_tree`` is given, patched: build, boot, compare.

    ``profile`` (``--profile``) forces a build profile; otherwise build.profile decides, by
    default from the files the series touches (reviewbot/boot/profiles.py).
    """
    say = progress or Progress.silent()
    touched = touched_files(patched_tree, base_commit) if patched_tree is not None else []
    chosen_profile = profiles.choose(settings, touched, profile)
    say.say(f"profile: {chosen_profile.name} ({chosen_profile.reason})")
    base, cached, chosen, why = ensure_base(settings, repo, base_commit, accel, say, chosen_profile)
    base_reports = base.reports()
    result = BootResult(
        base_commit=base_commit,
        config=kbuild.config_key(kbuild.fragment_paths(settings, chosen_profile)),
        profile=chosen_profile.name,
        profile_reason=chosen_profile.reason,
        build=BuildSummary(BaseBuild(str(base.build["status"]), float(base.build["seconds"]),
                                     cached)),
        boot=BootSummary(chosen, why, BaseBoot(
            status=_worst(r.status for r in base.runs),
            seconds=round(max(r.seconds for r in base.runs), 1),
            runs=len(base.runs),
            cached=cached,
            console=str(base.runs[0].console),
            splats=compare.base_splats(base_reports),
        )),
    )
    assert result.build is not None and result.boot is not None
    build_sum, boot_sum = result.build, result.boot
    findings: list[Finding] = []
    if patched_tree is None:
        tests = compare.compare(base_reports, None, EXPECTED)
        result.tests = [_base_only(t) for t in tests]
        result.metrics = _metrics(base_reports, None)
        failing = [t.name for t in tests if t.base != "pass" and t.base != "skip"]
        status = "warning" if failing else "success"
        return BootReport(status, f"fails on base: {', '.join(failing)}" if failing else "", result, findings)

    # One O= per worktree: the apply stage may keep several worktrees (slots) per base, and
    # make's mtime checks only work when an O= directory always sees the same worktree.
    out = out_dir(settings, base_commit, f"patched-{patched_tree.name}", chosen_profile)
    cov_plan = coverage.plan(patched_tree, touched) if settings.build.coverage else None
    if cov_plan is not None and cov_plan.objects:
        say.say(f"patched: gcov on {', '.join(cov_plan.objects)}")
    with locked(out.parent / f"{out.name}.lock"):
        built = build(settings, "patched", patched_tree, out, say, chosen_profile,
                      cov_plan.variables if cov_plan else ())
        base_warnings = [CompilerWarning(str(w["file"]), int(w["line"]), str(w["message"]), str(w["flag"])) for w in base.build.get("warnings", [])]
        fresh = kbuild.new_warnings(base_warnings, built.warnings, touched)
        build_sum.status = built.status
        build_sum.seconds = round(built.seconds, 1)
        build_sum.reason = built.reason
        build_sum.log = str(built.log_path)
        build_sum.warnings_new = fresh
        findings += [_warning_finding(w) for w in fresh]
        if not built.ok:
            boot_sum.status, boot_sum.seconds = "skipped", 0
            result.tests = list(compare.compare(base_reports, None, EXPECTED))
            why_fail = built.reason or built.status
            return BootReport("fail", f"patched kernel: {why_fail}", result, findings)
        initrds, _ = prepare_guest(settings, patched_tree, out, chosen_profile)
        run = run_suite(settings, "patched", built.image, initrds, out / "console.log", chosen, say, chosen_profile)
        tests = compare.compare(base_reports, run.report, EXPECTED)
        suspects = [t.name for t in tests if t.status == compare.REGRESSION]
        if suspects and run.status != "timeout":
            # Confirm before blaming the series: boot the patched kernel once more and keep
            # only the regressions that happen again (test_memcg_min/low failed once in
            # ~10 base runs on a busy host; base runs alone cannot catch every such flake).
            # The second boot runs only what regressed: memcg_charge's tests one by one, a
            # selftest program whole (its tests cannot be picked), a boot with none dropped.
            say.say(f"patched: {len(suspects)} regression(s), confirming with a second boot of those tests")
            confirm_initrds, _ = prepare_guest(settings, patched_tree, out, chosen_profile, only=suspects)
            again = run_suite(settings, "patched (confirm)", built.image, confirm_initrds,
                              out / "console-confirm.log", chosen, say, chosen_profile)
            tests = compare.confirm(tests, compare.compare(base_reports, again.report, EXPECTED))
            boot_sum.confirm_console = str(again.boot.console_path)
        if cov_plan is not None:
            result.coverage = _coverage(settings, patched_tree, base_commit, out, cov_plan, run.report)
    leak_sites = leaks.LeakSites(touched, lambda path: _read_source(patched_tree, path))
    return _judge(settings, base_reports, run.report, run, result, findings, tests,
                  profile=chosen_profile, leak_sites=leak_sites)


def _coverage(settings: Settings, tree: Path, base_commit: str, out: Path, cov_plan: coverage.Plan,
              report: ConsoleReport) -> CoverageSummary:
    """The first patched run's counters, read while the build's .gcno files are still the
    ones that run produced (the O= directory is locked until we return)."""
    src_prefix, build_prefix, _ = kbuild.make_sandbox(settings, tree, out).paths()
    counts = coverage.read_counts(report.gcov, out, (build_prefix, str(out)), (src_prefix, str(tree)))
    return coverage.summarise(coverage.changed_lines(tree, base_commit), cov_plan, counts,
                              coverage.SourceReader(tree), coverage.BuiltCheck(out))


def _read_source(tree: Path, path: str) -> str | None:
    try:
        return (tree / path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _judge(
    settings: Settings,
    base: list[ConsoleReport],
    patched: ConsoleReport,
    run: SuiteRun,
    result: BootResult,
    findings: list[Finding],
    tests: list[TestComparison] | None = None,
    *,
    profile: profiles.Profile | None = None,
    leak_sites: leaks.LeakSites | None = None,
) -> BootReport:
    tests = tests if tests is not None else compare.compare(base, patched, EXPECTED)
    new = compare.new_splats(base, patched)
    # kmemleak reports are compared like splats, but only a leak allocated in code the series
    # touches is a finding: kmemleak has false positives (objects whose only pointer is
    # hidden, or still on their way through RCU), and an untouched allocation site is not
    # the series' doing.
    splats = [s for s in new if s.kind != "kmemleak"]
    leak_findings = leak_sites.findings([s for s in new if s.kind == "kmemleak"]) if leak_sites else []
    boot_sum = result.boot
    assert boot_sum is not None
    boot_sum.status = "boot timeout" if run.status == "timeout" else run.status
    boot_sum.seconds = round(run.boot.seconds, 1)
    boot_sum.console = str(run.boot.console_path)
    boot_sum.splats = compare.unique_splats(patched)
    boot_sum.splat_count = len(patched.splats)
    boot_sum.splats_new = new  # kmemleak records too: listed, a finding only in touched code
    boot_sum.kmemleak_scanned = patched.kmemleak_scanned
    if run.status == "timeout":
        boot_sum.last_lines = run.boot.last_lines
    result.tests = list(tests)
    result.metrics = _metrics(base, patched)
    regressions = [t for t in tests if t.status == compare.REGRESSION]
    # One finding per cause: a program that stopped early is one finding for all the
    # tests it did not run, not one "regression" per missing test.
    groups = compare.regression_groups(tests, patched, program_timeout_s(settings, profile))
    findings += [_regression_finding(g) for g in groups]
    findings += [_splat_finding(s) for s in splats]
    findings += leak_findings
    quiet = coverage.not_exercised(result.coverage) if result.coverage else []
    findings += _not_exercised_findings(result.coverage, quiet)
    reasons = []
    if run.status == "timeout":
        reasons.append(f"boot timeout after {boot_timeout_s(settings, profile)} s")
    elif run.status != "completed":
        reasons.append("the patched guest did not finish the suite")
    if regressions:
        reasons.append(f"{len(regressions)} regression(s): "
                       + "; ".join(g.message if g.cause == "stopped" else ", ".join(g.tests)
                                   for g in groups))
    if splats:
        reasons.append(f"{len(splats)} new kernel splat(s): " + "; ".join(s.title for s in splats[:3]))
    if leak_findings:
        reasons.append(f"{len(leak_findings)} new kmemleak report(s) in code the series touches: "
                       + "; ".join(f.message for f in leak_findings[:3]))
    if reasons:
        return BootReport("fail", "; ".join(reasons), result, findings)
    noisy = [t.name for t in tests if t.status in (compare.FAILS_ON_BASE, compare.FLAKY, compare.FLAKY_PATCHED)]
    if noisy:
        return BootReport("warning", "fails or flaky on base (not counted): " + ", ".join(noisy), result, findings)
    if quiet and result.coverage is not None:
        names = ", ".join(f"{f.name}()" for f in quiet[:6]) + (", ..." if len(quiet) > 6 else "")
        ran = [f for f in result.coverage.functions if f.executed_by]
        if not ran:
            # A pass over code nothing ran is not a pass: say so, without failing the review.
            return BootReport("warning", f"no regression, but not exercised: no test ran the changed code ({names})",
                              result, findings)
        return BootReport("success", f"not exercised by any test: {names}", result, findings)
    return BootReport("success", "", result, findings)


def _not_exercised_findings(summary: CoverageSummary | None, quiet: list[CoveredFunction]) -> list[Finding]:
    """One info finding per file: its changed functions that no test program ran."""
    if summary is None:
        return []
    out = []
    for covered in summary.files:
        mine = [f for f in quiet if f in covered.functions]
        if not mine:
            continue
        names = ", ".join(f"{f.name}() (line {f.line})" for f in mine)
        out.append(Finding(
            rule="boot-not-exercised",
            severity="info",
            confidence="high",
            file=covered.path,
            line=mine[0].line,
            function=mine[0].name,
            message=f"changed code that no test ran on the patched kernel: {names}; "
                    f"the boot verdict says nothing about it",
            fingerprint=_fingerprint("boot-not-exercised", covered.path, *(f.name for f in mine)),
            category="boot",
        ))
    return out


def _worst(statuses: Iterable[str]) -> str:
    values = list(statuses)
    return next((s for s in ("timeout", "exited") if s in values), "completed")


def _base_only(test: TestComparison) -> TestComparison:
    return TestComparison(test.name, test.base, "not-run", test.base)


def _metrics(base: list[ConsoleReport], patched: ConsoleReport | None) -> dict[str, Metric]:
    keys = sorted({k for r in base for k in r.metrics} | (set(patched.metrics) if patched else set()))
    return {k: Metric(tuple(r.metrics.get(k) for r in base), patched.metrics.get(k) if patched else None) for k in keys}


def _regression_finding(group: compare.RegressionGroup) -> Finding:
    return Finding(
        rule="boot-test-regression",
        severity="error",
        confidence="high",
        file="",
        line=None,
        function=None,
        message=group.message,
        # One failing test keeps the fingerprint it always had (replies and runs compare them).
        fingerprint=_fingerprint("boot-test-regression", group.tests[0])
        if group.cause == "failed" and len(group.tests) == 1
        else _fingerprint("boot-test-regression", group.cause, *group.tests),
        evidence=group.evidence,
        category="boot",
    )


def _splat_finding(splat: SplatSummary) -> Finding:
    where = f" during {splat.program}.{splat.test}" if splat.test else (f" during {splat.program}" if splat.program else " while booting")
    return Finding(
        rule="boot-splat",
        severity="error",
        confidence="high",
        file="",
        line=None,
        function=None,
        message=f"kernel {splat.kind}{where}: {splat.title}",
        fingerprint=splat.fingerprint,
        evidence=tuple(splat.excerpt.splitlines()[:12]),
        category="boot",
    )


def _warning_finding(warning: CompilerWarning) -> Finding:
    return Finding(
        rule="build-warning",
        severity="warning",
        confidence="high",
        file=warning.file,
        line=warning.line,
        function=None,
        message=f"new compiler warning: {warning.message}" + (f" [{warning.flag}]" if warning.flag else ""),
        fingerprint=_fingerprint("build-warning", warning.file, warning.message, warning.flag),
        category="build",
    )


def boot_stage(series: Series, state: ReviewState, settings: Settings, options: ReviewOptions) -> StageOutcome:
    """Pipeline entry: needs the apply stage's worktree and base commit."""
    if state.worktree is None or state.base_commit is None:
        return StageOutcome("boot", "skipped", "no applied worktree (the apply stage did not run)")
    if not state.applied:
        return StageOutcome("boot", "skipped", "the series did not apply completely")
    progress = Progress(sys.stderr, prefix="[boot] ", heartbeat_s=60.0)
    try:
        repo = repo_of(state.worktree)
        report = run_boot(settings, repo, state.base_commit, state.worktree, progress=progress,
                          profile=options.profile)
    except InfraError as exc:
        failed = BootResult(state.base_commit, "", None, None, error=str(exc), detail=exc.detail)
        return StageOutcome("boot", "error", str(exc), failed)
    return StageOutcome("boot", report.status, report.reason, report.result, report.findings)
