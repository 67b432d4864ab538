"""``reviewbot review PATH|MESSAGE-ID``: series assembly, then every pipeline stage."""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

from reviewbot.boot import profiles
from reviewbot.config import Settings
from reviewbot.errors import EXIT_BAD_INPUT, EXIT_OK, BadInputError
from reviewbot.mail import SeriesSet, read_series
from reviewbot.mail.complete import Archive, complete
from reviewbot.mail.complete import offline as is_offline
from reviewbot.mail.series import read_messages
from reviewbot.pipeline import ReviewOptions, SeriesReview, review_series
from reviewbot.report.json import errors_json, review_json, review_series_json
from reviewbot.report.text import render_errors, render_review

_MSGID_RE = re.compile(r"^<?[^<>\s/]+@[^<>\s/]+>?$")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "review",
        help="review patch series: apply, rules, and (with --boot) build, boot, charge tests",
        description="Review every series in PATH (mbox, maildir, .eml/.patch file or folder, "
        "gzip, - for stdin) or the thread of MESSAGE-ID fetched from the configured "
        "public-inbox. Exit 0: nothing to report; 1: findings, no apply or regressions; "
        "2: bad input; 3: infrastructure failure.",
    )
    parser.add_argument("inputs", nargs="+", metavar="PATH|MESSAGE-ID")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--tree", type=Path, metavar="DIR", help="kernel tree (tree init)")
    where.add_argument("--no-tree", action="store_true", help="skip applying (rules only)")
    parser.add_argument("--base", metavar="REF", help="base to try after base-commit:")
    parser.add_argument("--boot", action="store_true", help="build, boot and run charge tests")
    parser.add_argument("--profile", metavar="NAME",
                        help="with --boot: build profile (fast, debug; default: build.profile)")
    parser.add_argument("--rules", type=Path, metavar="DIR", help="rules folder to use")
    parser.add_argument("--format", choices=("text", "json", "mail"), default="text")
    parser.add_argument("--offline", action="store_true",
                        help="do not complete partial series from the archive (fetch.complete)")
    parser.add_argument(
        "--all-versions", action="store_true",
        help="also review versions superseded by a newer one in the input",
    )
    parser.set_defaults(func=run)


def _looks_like_msgid(arg: str) -> bool:
    return not Path(arg).exists() and bool(_MSGID_RE.match(arg))


def load_inputs(inputs: list[str], settings: Settings, offline: bool = False) -> SeriesSet:
    """Read paths, fetching Message-IDs from the public-inbox first; then complete partial
    series from the archive (mail/complete.py) unless offline."""
    paths: list[str | Path] = []
    archive = Archive(settings)
    with tempfile.TemporaryDirectory(prefix="reviewbot-fetch-") as tmp:
        for arg in inputs:
            if _looks_like_msgid(arg):
                from reviewbot.mail.fetch import (  # requests: Message-IDs only
                    fetch_thread,
                    normalise_message_id,
                )

                data = fetch_thread(arg.strip("<>"), settings)
                archive.threads[normalise_message_id(arg)] = data  # fetched once, not twice
                target = Path(tmp) / f"{len(paths)}.mbox"
                target.write_bytes(data)
                paths.append(target)
            else:
                paths.append(arg)
        found = read_series(paths, settings)
        if is_offline(settings, offline):
            return found
        return complete(found, lambda: read_messages(paths, settings.mail), settings, archive)


def options_from_args(args: argparse.Namespace) -> ReviewOptions:
    return ReviewOptions(
        tree=args.tree,
        use_tree=not args.no_tree,
        base=args.base,
        boot=args.boot,
        profile=args.profile,
        rules_dir=args.rules,
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.profile:
        profiles.check(settings, args.profile)  # exit 2 before anything is read or applied
    found = load_inputs(args.inputs, settings, args.offline)
    if not found.series:
        if found.errors:
            print(render_errors(found.errors), file=sys.stderr)
        raise BadInputError(
            f"no patch series found ({found.messages} messages read)",
            source=", ".join(args.inputs),
        )
    selected = found.series if args.all_versions else [s for s in found.series if s.latest]
    options = options_from_args(args)
    code = EXIT_OK
    out = _Output(args.format, settings, found)
    try:
        for series in selected:
            if args.format == "text":
                print(f"reviewing [v{series.version}] {series.subject} ...", file=sys.stderr)
            review = review_series(series, settings, options)
            # Written as soon as it is done and then dropped: only one series' review is
            # held at a time, however many patches the folder has.
            out.add(review)
            code = max(code, review.exit_code)
    finally:
        # Also when a stage raised (exit 3): the JSON document stays valid and lists the
        # series reviewed before the failure.
        out.close()
    return code if code else (EXIT_OK if not found.errors or selected else EXIT_BAD_INPUT)


class _Output:
    """Writes each series' report as it is reviewed: text, mail, or one JSON document
    (``reviewbot/review/v1``) streamed element by element."""

    def __init__(self, fmt: str, settings: Settings, found: SeriesSet) -> None:
        self.fmt, self.settings, self.found = fmt, settings, found
        self.first = True
        self.indent = 2 if sys.stdout.isatty() else None
        if fmt == "json":
            head = review_json([], [])  # schema and tool; series and errors follow
            del head["series"], head["errors"]
            sys.stdout.write(json.dumps(head, indent=self.indent)[:-1].rstrip() + ', "series": [')

    def add(self, review: SeriesReview) -> None:
        if self.fmt == "json":
            element = json.dumps(review_series_json(review), indent=self.indent)
            sys.stdout.write(("" if self.first else ",") + ("\n" if self.indent else "") + element)
        elif self.fmt == "mail":
            from reviewbot.report.mail import render_replies  # --format mail only

            for msg in render_replies(review, self.settings):
                sys.stdout.write("From reviewbot Thu Jan  1 00:00:00 1970\n")
                sys.stdout.write(msg.as_string())
                sys.stdout.write("\n")
        else:
            print(render_review(review))
            print()
        sys.stdout.flush()
        self.first = False

    def close(self) -> None:
        if self.fmt == "json":
            errors = json.dumps(errors_json(self.found.errors), indent=self.indent)
            sys.stdout.write(f'], "errors": {errors}}}\n')
        elif self.fmt == "text" and self.found.errors:
            print(render_errors(self.found.errors))
