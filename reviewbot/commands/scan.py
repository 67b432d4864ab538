"""``reviewbot scan SOURCE``: incremental scan of a mail archive (cron, systemd timer).

Exit codes: 0 nothing new to look at, 1 new warnings/errors since the previous scan,
2 bad source or arguments, 3 git/state failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reviewbot.config import Settings
from reviewbot.errors import EXIT_OK, BadInputError, ReviewbotError
from reviewbot.pipeline import ReviewOptions
from reviewbot.progress import Progress
from reviewbot.report.scan import render_text
from reviewbot.scan.run import ScanOptions, run_configured_scans, run_scan


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "scan",
        help="scan a public-inbox repository or mail folder for new series (rules only)",
        description="Review what arrived in SOURCE since the previous scan and report the "
        "findings that are new and those that disappeared. SOURCE: a public-inbox v2 inbox "
        "(folder with git/N.git), one bare epoch (N.git), or a folder of mbox/.eml/.patch "
        "files. The position is remembered per source under the state directory.",
    )
    p.add_argument("source", metavar="SOURCE", nargs="?",
                   help="what to scan; omit with --all")
    p.add_argument("--all", action="store_true",
                   help="scan every enabled source of corpus/sources.yaml (or --sources)")
    p.add_argument("--sources", metavar="FILE", type=Path,
                   help="sources file for --all (default: scan.sources_file, else "
                   "corpus/sources.yaml)")
    p.add_argument("--since", metavar="REF",
                   help="start after this commit of the inbox instead of the remembered one")
    p.add_argument("--full", action="store_true",
                   help="rescan everything (after a rules change); unseen findings disappear")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--rules", metavar="DIR", type=Path, help="rule folder to use")
    p.add_argument("--state-dir", metavar="DIR", type=Path,
                   help="where scan positions live (default: scan.state_dir, else "
                   "service.state_dir)")
    p.add_argument("--window-hours", type=float, metavar="H",
                   help="a thread closes H hours after its last mail (default: "
                   "scan.window_hours, else mail.unthreaded_window_hours)")
    p.add_argument("--jobs", "-j", type=int, metavar="N",
                   help="review processes (default: scan.jobs; 0: one per CPU)")
    p.add_argument("--no-progress", action="store_true", help="no progress output on stderr")
    p.add_argument("--offline", action="store_true",
                   help="do not complete partial series from the archive (fetch.complete)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    options = ScanOptions.from_settings(
        settings,
        window_hours=args.window_hours,
        jobs=args.jobs,
        complete=False if args.offline else None,
        review=ReviewOptions(use_tree=False, rules_dir=args.rules),
    )
    progress = None if args.no_progress else Progress(sys.stderr, prefix="scan: ")
    if args.all == bool(args.source):
        raise BadInputError("give either SOURCE or --all")
    if args.all:
        return _run_all(args, settings, options, progress)
    report = run_scan(args.source, settings, since=args.since, full=args.full,
                      options=options, progress=progress, state_dir=args.state_dir)
    if args.format == "json":
        json.dump(report.to_json(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_text(report))
    return report.exit_code


def _run_all(args: argparse.Namespace, settings: Settings, options: ScanOptions,
             progress: Progress | None) -> int:
    results = run_configured_scans(settings, sources_file=args.sources, options=options,
                                   progress=progress, state_dir=args.state_dir)
    docs: list[dict[str, Any]] = []
    code = EXIT_OK
    for result in results:
        if isinstance(result, ReviewbotError):
            docs.append({"error": str(result), "exit_code": result.exit_code})
            code = max(code, result.exit_code)
            if args.format == "text":
                sys.stdout.write(f"scan failed: {result}\n\n")
            continue
        code = max(code, result.exit_code)
        docs.append(result.to_json())
        if args.format == "text":
            sys.stdout.write(render_text(result) + "\n")
    if args.format == "json":
        json.dump(docs, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return code
