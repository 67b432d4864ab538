"""``reviewbot boot [--base REF] [--series PATH]``: build, boot and run the charge tests.

Without --series: the base kernel only (built, booted ``vm.suite_repeats`` times, cached).
With --series: the series is applied by the apply stage, then base and patched kernels are
compared. Prints progress on stderr and a results table (or JSON with --json) on stdout.
Exit: 0 all good, 1 regression / new splat / patched build or boot failure, 2 bad input,
3 infrastructure (base kernel does not build or boot, QEMU missing, no tree).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from reviewbot.boot import profiles
from reviewbot.config import Settings
from reviewbot.errors import EXIT_FINDINGS, EXIT_OK, BadInputError, InfraError
from reviewbot.progress import Progress
from reviewbot.report.boot import render_ktap, render_table
from reviewbot.results import BootResult


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    parser.add_argument("--profile", metavar="NAME",
                        help="build profile from build.profiles: fast or debug (default: "
                             "build.profile; auto picks debug for series touching mm/, "
                             "kernel/cgroup/, exit, fork, memcontrol.h, cgroup*.h)")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="print the stage's JSON instead of a table")
    out.add_argument("--ktap", action="store_true",
                     help="print base and patched results in KTAP (kselftest, KernelCI)")
    parser.set_defaults(func=run)


def _progress() -> Progress:
    """One per command run: its clock starts with the command, and it writes to the
    sys.stderr of that moment (a module-level one kept the stream and clock of its import,
    which a long-lived caller such as a test session had closed or started long before)."""
    return Progress(sys.stderr, prefix="[boot] ", heartbeat_s=60.0)


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.accel:
        settings = dataclasses.replace(settings, vm=dataclasses.replace(settings.vm, accel=args.accel))
    if args.profile:
        profiles.check(settings, args.profile)  # exit 2 before anything is applied or built
    if args.series is not None:
        return _run_series(args, settings)
    # Here, not at the top: `reviewbot --help` imports every command module.
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
    report = run_boot(settings, tree.path, sha, None, progress=_progress(), profile=args.profile)
    _print(report.result, report.status, report.reason, args)
    return EXIT_OK


def _run_series(args: argparse.Namespace, settings: Settings) -> int:
    # Here, not at the top: `reviewbot --help` imports every command module.
    from reviewbot.mail import read_series
    from reviewbot.pipeline import ReviewOptions, review_series

    if not args.series.exists():
        raise BadInputError("no such file", source=str(args.series))
    found = read_series([args.series], settings)
    series = [s for s in found.series if s.latest]
    if not series:
        raise BadInputError("no patch series found", source=str(args.series))
    options = ReviewOptions(tree=args.tree, base=args.base, boot=True, profile=args.profile)
    code = EXIT_OK
    progress = _progress()
    for one in series:
        progress.say(f"series: [v{one.version}] {one.subject}")
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
        result = review.boot
        if boot.status == "error" or result is None:
            raise InfraError(boot.reason, detail=boot.excerpt)
        _print(result, boot.status, boot.reason, args)
        if boot.status == "fail":
            code = EXIT_FINDINGS
    return code


def _print(result: BootResult, status: str, reason: str, args: argparse.Namespace) -> None:
    if args.ktap:
        sys.stdout.write(render_ktap(result, status, reason))
        return
    if args.json:
        json.dump({"status": status, "reason": reason, **result.to_json()}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    print(render_table(result, status, reason))
