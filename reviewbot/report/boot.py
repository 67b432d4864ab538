"""The text table of one boot run (``reviewbot boot``; the JSON is BootResult.to_json())."""

from __future__ import annotations

from reviewbot.results import BootResult, CoverageSummary


def render_table(result: BootResult, status: str, reason: str) -> str:
    """The results table: one line per test, then build/boot figures and splats."""
    lines = []
    build, boot = result.build, result.boot
    if build is not None and boot is not None:
        lines.append(f"base {result.base_commit[:12]}  config {result.config}  accel {boot.accel} ({boot.accel_reason})")
        if result.profile:
            lines.append(f"profile: {result.profile} ({result.profile_reason})")
        lines.append(
            f"build: base {build.base.status} {build.base.seconds} s{' (cached)' if build.base.cached else ''}"
            + (f"; patched {build.status} {build.seconds} s" if build.status is not None else "")
        )
        lines.append(
            f"boot:  base {boot.base.status} {boot.base.seconds} s x{boot.base.runs}{' (cached)' if boot.base.cached else ''}"
            + (f"; patched {boot.status} {boot.seconds} s" if boot.status is not None else "")
        )
        lines.append("")
    width = max([len(t.name) for t in result.tests] + [4])
    lines.append(f"{'test':<{width}}  {'base':<8} {'patched':<8} status")
    for test in result.tests:
        lines.append(f"{test.name:<{width}}  {test.base:<8} {test.patched:<8} {test.status}")
        if test.detail:
            lines.append(f"{'':<{width}}    {test.detail}")
    for key, value in result.metrics.items():
        lines.append(f"metric {key}: base {list(value.base)} patched {value.patched}")
    for warning in build.warnings_new if build else []:
        lines.append(f"new warning: {warning.file}:{warning.line}: {warning.message}")
    if boot is not None and boot.status is None:  # the base alone: what it printed
        for splat in boot.base.splats:
            lines.append(f"base splat [{splat.kind}] x{splat.count} {splat.title} (fingerprint {splat.fingerprint})")
    for splat in boot.splats_new if boot else []:
        lines.append(f"new splat [{splat.kind}] {splat.title} (fingerprint {splat.fingerprint})")
    if result.coverage is not None:
        lines.append("")
        lines += render_coverage(result.coverage)
    lines.append("")
    lines.append(f"result: {status}" + (f" - {reason}" if reason else ""))
    return "\n".join(lines)


# A changed function with no counter on its changed lines: a comment, a declaration, or code
# this configuration compiles out (VM_BUG_ON without DEBUG_VM); nothing for a test to run.
NO_CODE = "no code on its changed lines (comments, or compiled out here)"


NO_FUNCTION = "changes no function body (declarations, struct fields, macros)"


def render_coverage(summary: CoverageSummary, indent: str = "") -> list[str]:
    """The coverage table: per touched file, its changed functions, whether a test program
    ran them (and which), and how many of the changed lines ran."""
    head = "coverage of the changed code (gcov on the patched kernel, counted per test program)"
    if summary.status != "measured":
        return [f"{indent}{head}: {summary.status}" + (f" ({summary.reason})" if summary.reason else "")]
    lines = [f"{indent}{head}:"]
    for covered in summary.files:
        if covered.status != "measured":
            lines.append(f"{indent}  {covered.path}: {covered.status} ({covered.reason})")
            continue
        if not covered.functions:
            lines.append(f"{indent}  {covered.path}: {NO_FUNCTION}")
            continue
        ran = sum(1 for f in covered.functions if f.executed_by)
        lines.append(f"{indent}  {covered.path}: {ran} of {len(covered.functions)} changed function(s) ran, "
                     + _lines_ran(covered.executed_lines, covered.changed_lines))
        width = max([len(f.name) + 2 for f in covered.functions] + [4])
        for fn in covered.functions:
            who = (f"ran in {', '.join(fn.executed_by)}" if fn.executed_by
                   else "NOT EXERCISED" if fn.changed_lines else NO_CODE)
            lines.append(f"{indent}    {fn.name + '()':<{width}} line {fn.line:<6} "
                         f"{fn.changed_executed}/{fn.changed_lines} lines  {who}")
        if covered.not_executed:
            lines.append(f"{indent}    changed lines no test ran: {_ranges(covered.not_executed)}")
    return lines


def _lines_ran(executed: int, changed: int) -> str:
    if not changed:
        return "no changed line has code of its own"
    return f"{executed} of {changed} changed line(s) with code ran"


def _ranges(numbers: list[int]) -> str:
    out: list[str] = []
    for n in sorted(numbers):
        if out and "-" not in out[-1] and int(out[-1]) == n - 1:
            out[-1] = f"{out[-1]}-{n}"
        elif out and "-" in out[-1] and int(out[-1].split("-")[1]) == n - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{n}"
        else:
            out.append(str(n))
    return ", ".join(out)


# KTAP result words for our per-test states (Documentation/dev-tools/ktap.rst): "ok",
# "not ok", and the SKIP directive; a test that did not run at all is reported "not ok"
# with the reason, as kselftest does for a test that crashed before printing its result.
_KTAP = {"pass": ("ok", ""), "fail": ("not ok", ""), "skip": ("ok", " # SKIP"),
         "flaky": ("not ok", " # flaky: runs of the base kernel disagree"),
         "missing": ("not ok", " # did not report a result"),
         "not-run": ("ok", " # SKIP not run")}


def _ktap_name(name: str) -> str:
    # A KTAP test name may not hold "#" (it starts a directive) nor a line break.
    return name.replace("#", "_").replace("\n", " ")


def render_ktap(result: BootResult, status: str, reason: str) -> str:
    """Base and patched results as KTAP version 1 (what kselftest and KernelCI read): one
    subtest per kernel, each with one line per test; the top line's result is the review's
    verdict (``not ok`` when the patched kernel regressed)."""
    kernels = [("base", [t.base for t in result.tests])]
    if any(t.patched != "not-run" for t in result.tests):
        kernels.append(("patched", [t.patched for t in result.tests]))
    out = ["KTAP version 1", f"1..{len(kernels)}"]
    for number, (kernel, states) in enumerate(kernels, start=1):
        out += ["  KTAP version 1", f"  # Subtest: {kernel}", f"  1..{len(states)}"]
        failed = False
        for i, (test, state) in enumerate(zip(result.tests, states, strict=True), start=1):
            word, directive = _KTAP.get(state, ("not ok", f" # {state}"))
            failed |= word == "not ok" and state not in ("flaky",)
            out.append(f"  {word} {i} {_ktap_name(test.name)}{directive}")
        if kernel == "patched":
            verdict = "not ok" if status == "fail" else "ok"
            note = f" # {_ktap_name(reason)}" if status == "fail" and reason else ""
        else:
            verdict, note = ("not ok" if failed else "ok"), ""
        out.append(f"{verdict} {number} {kernel}{note}")
    return "\n".join(out) + "\n"
