"""``reviewbot check-b4``: b4's external check command (one message on stdin -> JSON).

Configure in git config (see docs/scan.md)::

    [b4]
        review-perpatch-check-cmd = reviewbot check-b4
        review-series-check-cmd = reviewbot check-b4 --series

A patch is reviewed on its own (the series it belongs to is not fetched; rules that need
the whole series say so); a cover letter has nothing to check and passes. The answer is
always JSON on stdout with exit 0 when it could be produced, so that b4 shows our verdict
or our error in its check panel rather than "exited with error code".
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from reviewbot.config import Settings
from reviewbot.errors import BadInputError, ReviewbotError
from reviewbot.mail.fetch import fetch_thread
from reviewbot.mail.ingest import read_bytes
from reviewbot.mail.series import assemble
from reviewbot.model import Message
from reviewbot.pipeline import ReviewOptions, review_series
from reviewbot.report.b4check import check_results, error_result

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "check-b4",
        help="b4 external check: one message on stdin, JSON results on stdout",
        description="Review the patch mail on stdin (rules only unless --tree is given) and "
        "print b4's check results: a JSON list of {tool, status, summary, url, details}.",
    )
    p.add_argument("--series", action="store_true",
                   help="series check: report findings of every patch given on stdin")
    p.add_argument("--tree", metavar="DIR", type=Path,
                   help="apply to this kernel tree (slower; default: rules on the patch only)")
    p.add_argument("--rules", metavar="DIR", type=Path, help="rule folder to use")
    p.add_argument("--url", default="", help="link shown with the result")
    p.add_argument("--no-fetch", action="store_true",
                   help="with --series: do not fetch the thread of a cover letter from "
                   "fetch.public_inbox_url")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    raw = sys.stdin.buffer.read()
    try:
        results = check_message(raw, settings, tree=args.tree, rules_dir=args.rules,
                                series_check=args.series, url=args.url,
                                fetch=args.series and not args.no_fetch)
    except BadInputError as exc:
        results = error_result(f"unusable input: {exc.message}")
    except ReviewbotError as exc:
        results = error_result(f"reviewbot failed: {exc.message}", exc.detail)
    json.dump(results, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


def _read(data: bytes, source: str, settings: Settings) -> list[Message]:
    """The usable messages of an mbox or mail, as ``reviewbot series`` reads them.

    Raises:
        BadInputError: there were messages and none is usable (the first one's problem).
    """
    messages, errors = read_bytes(data, source, settings.mail)
    if errors and not messages:
        first = errors[0]
        raise BadInputError(first.error, source=f"{first.source}#{first.position}")
    return messages


def check_message(raw: bytes, settings: Settings, *, tree: Path | None = None,
                  rules_dir: Path | None = None, series_check: bool = False,
                  url: str = "", fetch: bool = False) -> list[dict[str, str]]:
    """Review the message(s) in RAW and return b4 check results.

    b4 runs the series check on the cover letter alone; with ``fetch`` the whole thread
    is fetched from ``fetch.public_inbox_url`` (as ``reviewbot review MESSAGE-ID`` does)
    so that the series can be reviewed.

    Raises:
        BadInputError: RAW holds no usable mail, or the thread is unknown to the server.
        InfraError: the thread could not be fetched.
    """
    messages = _read(raw, "<stdin>", settings)
    if not messages:
        raise BadInputError("no message on stdin")
    found = assemble(messages, settings.mail)
    if not found.series and fetch:
        thread = fetch_thread(messages[0].message_id, settings)
        # A message of the thread that cannot be used is left out, not the whole check.
        fetched = _read(thread, "t.mbox.gz", settings)
        # Only the series this cover starts: a thread may hold other versions too.
        found = assemble(fetched, settings.mail)
        found.series = [s for s in found.series if s.series_id == messages[0].message_id] \
            or found.series
    if not found.series:
        # A cover letter or a plain reply: nothing b4 would want us to check.
        return [{"tool": "reviewbot", "status": "pass", "summary": "no patch in this message",
                 "url": url, "details": ""}]
    options = ReviewOptions(tree=tree, use_tree=tree is not None, rules_dir=rules_dir)
    results: list[dict[str, str]] = []
    for series in found.series:
        review = review_series(series, settings, options)
        index = None if series_check or len(series.patches) != 1 else series.patches[0].index
        for result in check_results(review, index, url):
            if series_check:
                result["summary"] = (f"{len(series.patches)}/{series.expected} patches: "
                                     f"{result['summary']}")
            results.append(result)
    return results
