"""``reviewbot scan SOURCE``: incremental scan of a mail archive (cron, systemd timer).

Exit codes: 0 nothing new to look at, 1 new warnings/errors since the previous scan,
2 bad source or arguments, 3 git/state failure.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, TextIO

from reviewbot.config import Settings
from reviewbot.errors import EXIT_OK, BadInputError, ReviewbotError
from reviewbot.pipeline import ReviewOptions
from reviewbot.scan import ScanOptions, ScanReport, run_configured_scans, run_scan

LISTED = 200  # findings listed per section in text; JSON always has them all


def register(subparsers: argparse._SubParsersAction) -> None:
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
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    options = ScanOptions.from_settings(
        settings,
        window_hours=args.window_hours,
        jobs=args.jobs,
        review=ReviewOptions(use_tree=False, rules_dir=args.rules),
    )
    progress = None if args.no_progress else make_progress(sys.stderr)
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
             progress: BarProgress | LineProgress | None) -> int:
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


# -- progress -----------------------------------------------------------------------------


class BarProgress:
    """A one-line bar redrawn in place, for a terminal."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.total: int | None = None
        self.last = 0.0

    def start(self, total: int | None, what: str) -> None:
        self.total = total
        self.what = what

    def advance(self, done: int, series: int, findings: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.1:
            return
        self.last = now
        tail = f"{done} {self.what}, {series} series, {findings} new findings"
        if self.total:
            frac = min(1.0, done / self.total)
            bar = "#" * int(frac * 30)
            line = f"\r[{bar:<30}] {frac * 100:5.1f}% {tail}"
        else:
            line = f"\r{tail}"
        self.out.write(line[:120])
        self.out.flush()

    def finish(self) -> None:
        self.last = 0.0
        self.out.write("\r\033[K")
        self.out.flush()


class LineProgress:
    """Plain lines (cron mail, journald): one every 10 seconds at most."""

    def __init__(self, out: TextIO, every_s: float = 10.0) -> None:
        self.out = out
        self.every_s = every_s
        self.total: int | None = None
        self.last = time.monotonic()

    def start(self, total: int | None, what: str) -> None:
        self.total = total
        self.what = what
        known = f"{total} {what} to read" if total is not None else f"reading {what}"
        print(f"scan: {known}", file=self.out, flush=True)

    def advance(self, done: int, series: int, findings: int) -> None:
        if time.monotonic() - self.last < self.every_s:
            return
        self.last = time.monotonic()
        of = f"/{self.total}" if self.total else ""
        print(f"scan: {done}{of} {self.what}, {series} series reviewed, "
              f"{findings} new findings", file=self.out, flush=True)

    def finish(self) -> None:
        pass


def make_progress(out: TextIO) -> BarProgress | LineProgress:
    return BarProgress(out) if out.isatty() else LineProgress(out)


# -- text report --------------------------------------------------------------------------


def render_text(report: ScanReport) -> str:
    data = report.to_json()
    lines = [f"reviewbot scan #{report.scan_id} of {report.source} ({report.kind})"]
    prev = f"previous scan #{report.previous_scan_id}" if report.previous_scan_id \
        else "first scan of this source"
    lines.append(f"  {prev}{', full rescan' if report.full else ''}")
    lines.append(f"  {report.messages} new messages in {report.seconds:.1f} s "
                 f"({report.messages_per_second} msgs/s), {report.parse_errors} unusable")
    lines.append(f"  {_positions(report.positions_before)} -> {_positions(report.positions_after)}")
    s = data["series"]
    lines.append(f"  series: {s['reviewed']} reviewed, {s['already_reviewed']} already "
                 f"reviewed, {s['open']} still open (kept for the next scan)")
    lines.append(f"  findings: {len(report.new)} new, {len(report.disappeared)} "
                 f"disappeared, {report.total_findings} in total")
    for warning in report.warnings:
        lines.append(textwrap.fill(f"warning: {warning}", 100, initial_indent="  ",
                                   subsequent_indent="    "))
    for err in report.errors[:5]:
        lines.append(f"  unusable: {err['source']}#{err['position']}: {err['error']}")
    for title, items in (("New findings", report.new), ("Disappeared", report.disappeared)):
        if not items:
            continue
        lines += ["", f"{title} ({len(items)}):"]
        for rec in items[:LISTED]:
            lines.extend(_finding_lines(rec))
        if len(items) > LISTED:
            lines.append(f"  ... {len(items) - LISTED} more (see --format json)")
    if report.by_rule:
        lines += ["", "Per rule:            total    new   gone"]
        for rule, c in report.by_rule.items():
            lines.append(f"  {rule:<18} {c['total']:>6} {c['new']:>6} {c['disappeared']:>6}")
    return "\n".join(lines) + "\n"


def _finding_lines(rec: dict[str, Any]) -> list[str]:
    where = f"{rec.get('file')}:{rec.get('line')}" if rec.get("line") else str(rec.get("file"))
    if rec.get("function"):
        where += f" {rec['function']}()"
    return [
        f"  [{rec.get('severity')}] {rec.get('rule')}  {where}",
        f"      {rec.get('subject')}",
        f"      <{rec.get('message_id')}>",
        textwrap.fill(str(rec.get("message", "")), 100, initial_indent="      ",
                      subsequent_indent="      "),
    ]


def _positions(pos: dict[str, Any]) -> str:
    if not pos:
        return "(start)"
    parts = []
    for key, value in sorted(pos.items()):
        if isinstance(value, str):
            parts.append(f"{key.split(':', 1)[1]}.git@{value[:12]}")
    files = [v for k, v in pos.items() if k.startswith("file:")]
    if files:
        parts.append(f"{len(files)} files, {sum(int(v.get('messages', 0)) for v in files)} messages")
    return ", ".join(parts) or "(start)"
