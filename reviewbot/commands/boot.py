"""``reviewbot boot [--base REF] [--series PATH]``: build, boot and run the charge tests.

Without --series: the base kernel only (built, booted ``vm.suite_repeats`` times, cached).
With --series: the series is applied by the apply stage, then base and patched kernels are
compared. Prints progress on stderr and a results table (or JSON with --json) on stdout.
Exit: 0 all good, 1 regression / new splat / patched build or boot failure, 2 bad input,
3 infrastructure (base kernel does not build or boot, QEMU missing, no tree).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reviewbot.config import Settings
from reviewbot.errors import EXIT_FINDINGS, EXIT_OK, BadInputError, InfraError


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "boot",
        help="build, boot and run the memcg charge tests (base, or base against a series)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base", metavar="REF", help="base commit (default: the tree's imported base)")
    parser.add_argument("--series", type=Path, metavar="PATH", help="mbox/maildir/patch with the series")
    parser.add_argument("--tree", type=Path, metavar="DIR", help="kernel tree (default: tree.path)")
    parser.add_argument("--accel", choices=("kvm", "tcg"), help="skip the KVM probe and use this")
    parser.add_argument("--json", action="store_true", help="print the stage's JSON instead of a table")
    parser.set_defaults(func=run)


def _progress(message: str) -> None:
    print(f"[boot] {message}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.accel:
        import dataclasses

        settings = dataclasses.replace(settings, vm=dataclasses.replace(settings.vm, accel=args.accel))
    if args.series is not None:
        return _run_series(args, settings)
    from reviewbot.boot.stage import run_boot
    from reviewbot.tree.bases import resolve
    from reviewbot.tree.repo import open_tree

    tree = open_tree(args.tree or Path(settings.path(settings.tree.path)))
    ref = args.base or tree.default_base
    if not ref:
        raise BadInputError("no base: pass --base REF", source=str(tree.path))
    sha, message = resolve(tree.path, ref)
    if sha is None:
        raise BadInputError(f"base {ref!r} does not resolve: {message}", source=str(tree.path))
    report = run_boot(settings, tree.path, sha, None, progress=_progress)
    _print(report.data, report.status, report.reason, args.json)
    return EXIT_OK


def _run_series(args: argparse.Namespace, settings: Settings) -> int:
    from reviewbot.mail import read_series
    from reviewbot.pipeline import ReviewOptions, review_series

    if not args.series.exists():
        raise BadInputError("no such file", source=str(args.series))
    found = read_series([args.series], settings)
    series = [s for s in found.series if s.latest]
    if not series:
        raise BadInputError("no patch series found", source=str(args.series))
    options = ReviewOptions(tree=args.tree, base=args.base, boot=True)
    code = EXIT_OK
    for one in series:
        _progress(f"series: [v{one.version}] {one.subject}")
        review = review_series(one, settings, options)
        apply = review.outcome("apply")
        boot = review.outcome("boot")
        if boot is None or boot.status == "skipped":
            why = boot.reason if boot else "no boot stage"
            if apply is not None and apply.status != "success":
                why = f"apply {apply.status}: {apply.reason}"
            print(f"boot skipped: {why}", file=sys.stderr)
            code = max(code, EXIT_FINDINGS)
            continue
        if boot.status == "error":
            raise InfraError(boot.reason, detail=str(boot.data.get("detail", "")))
        _print(boot.data, boot.status, boot.reason, args.json)
        if boot.status == "fail":
            code = EXIT_FINDINGS
    return code


def _print(data: dict[str, Any], status: str, reason: str, as_json: bool) -> None:
    if as_json:
        json.dump({"status": status, "reason": reason, **data}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    print(render_table(data, status, reason))


def render_table(data: dict[str, Any], status: str, reason: str) -> str:
    """The results table: one line per test, then build/boot figures and splats."""
    lines = []
    build = data.get("build", {})
    boot = data.get("boot", {})
    base_build = build.get("base", {})
    base_boot = boot.get("base", {})
    lines.append(f"base {str(data.get('base_commit', ''))[:12]}  config {data.get('config', '')}  accel {boot.get('accel')} ({boot.get('accel_reason', '')})")
    lines.append(
        f"build: base {base_build.get('status')} {base_build.get('seconds')} s{' (cached)' if base_build.get('cached') else ''}"
        + (f"; patched {build.get('status')} {build.get('seconds')} s" if "status" in build else "")
    )
    lines.append(
        f"boot:  base {base_boot.get('status')} {base_boot.get('seconds')} s x{base_boot.get('runs')}{' (cached)' if base_boot.get('cached') else ''}"
        + (f"; patched {boot.get('status')} {boot.get('seconds')} s" if "status" in boot else "")
    )
    lines.append("")
    width = max([len(t["name"]) for t in data.get("tests", [])] + [4])
    lines.append(f"{'test':<{width}}  {'base':<8} {'patched':<8} status")
    for test in data.get("tests", []):
        lines.append(f"{test['name']:<{width}}  {test['base']:<8} {test['patched']:<8} {test['status']}")
        if test.get("detail"):
            lines.append(f"{'':<{width}}    {test['detail']}")
    for key, value in data.get("metrics", {}).items():
        lines.append(f"metric {key}: base {value['base']} patched {value['patched']}")
    for warning in build.get("warnings_new", []):
        lines.append(f"new warning: {warning['file']}:{warning['line']}: {warning['message']}")
    for splat in boot.get("splats_new", []):
        lines.append(f"new splat [{splat['kind']}] {splat['title']} (fingerprint {splat['fingerprint']})")
    lines.append("")
    lines.append(f"result: {status}" + (f" - {reason}" if reason else ""))
    return "\n".join(lines)
