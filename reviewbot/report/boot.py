"""The text table of one boot run (``reviewbot boot``; the JSON is BootResult.to_json())."""

from __future__ import annotations

from reviewbot.results import BootResult


def render_table(result: BootResult, status: str, reason: str) -> str:
    """The results table: one line per test, then build/boot figures and splats."""
    lines = []
    build, boot = result.build, result.boot
    if build is not None and boot is not None:
        lines.append(f"base {result.base_commit[:12]}  config {result.config}  accel {boot.accel} ({boot.accel_reason})")
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
    for splat in boot.splats_new if boot else []:
        lines.append(f"new splat [{splat.kind}] {splat.title} (fingerprint {splat.fingerprint})")
    lines.append("")
    lines.append(f"result: {status}" + (f" - {reason}" if reason else ""))
    return "\n".join(lines)
