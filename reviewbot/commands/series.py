"""``reviewbot series PATH... [--json]``: the series found in mail files."""

from __future__ import annotations

import argparse
import sys

from reviewbot.config import Settings
from reviewbot.errors import EXIT_BAD_INPUT, EXIT_OK
from reviewbot.mail import read_series
from reviewbot.report.json import series_set_json
from reviewbot.report.json import write as write_json
from reviewbot.report.text import render_errors, render_series_set


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "series",
        help="list the patch series found in mail files",
        description="Read mbox/maildir/.eml/.patch files (gzip too; - for stdin) and list "
        "each series: version, subject, author, patches present and missing, trailers.",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="mail input(s); - for stdin")
    parser.add_argument("--json", action="store_true", help="print reviewbot/series/v1 JSON")
    parser.add_argument(
        "--latest", action="store_true", help="only the newest version of each series"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    found = read_series(args.paths, settings)
    series = [s for s in found.series if s.latest] if args.latest else found.series
    if args.json:
        write_json(series_set_json(series, found.errors))
    else:
        sys.stdout.write(render_series_set(series, found.errors))
    if not found.series:
        if not args.json:
            print(
                f"reviewbot: no patch series found in {', '.join(map(str, args.paths))} "
                f"({found.messages} messages read)",
                file=sys.stderr,
            )
        elif found.errors:
            print(render_errors(found.errors), file=sys.stderr)
        return EXIT_BAD_INPUT
    return EXIT_OK
