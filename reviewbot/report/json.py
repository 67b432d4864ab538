"""Versioned JSON documents: ``reviewbot/series/v1`` and ``reviewbot/review/v1``.

The schemas are documented in docs/json.md; a field is only ever added, never renamed or
removed, within one version.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from reviewbot import __version__
from reviewbot.mail.stable import backport_of
from reviewbot.model import InputError, Message, Patch, Series
from reviewbot.results import SeriesReview

SERIES_SCHEMA = "reviewbot/series/v1"
REVIEW_SCHEMA = "reviewbot/review/v1"


def _date(msg: Message) -> str | None:
    return msg.date.isoformat() if msg.date else None


def patch_json(patch: Patch) -> dict[str, Any]:
    msg = patch.message
    return {
        "index": patch.index,
        "message_id": msg.message_id,
        "subject": msg.subject.raw,
        "author": msg.author,
        "date": _date(msg),
        "patch_id": patch.patch_id,
        "trailers": [
            {"name": t.name, "value": t.value, "from": t.origin, "via": t.origin_message_id}
            for t in patch.trailers
        ],
        "warnings": list(msg.warnings),
    }


def series_json(series: Series) -> dict[str, Any]:
    first = series.cover or (series.patches[0].message if series.patches else None)
    subject = first.subject if first else None
    return {
        "id": series.series_id,
        "version": series.version,
        "version_inferred": subject.version_inferred if subject else True,
        "subject": series.subject,
        "prefixes": list(subject.prefixes) if subject else [],
        "author": series.author,
        "cover": series.cover.message_id if series.cover else None,
        "expected": series.expected,
        "counters_inferred": subject.counters_inferred if subject else True,
        "complete": series.complete,
        "patches": [patch_json(p) for p in series.patches],
        "missing": list(series.missing),
        "base_commit": series.base_commit,
        "superseded_by": series.superseded_by,
        "supersedes": list(series.supersedes),
        "latest": series.latest,
        "threaded": series.threaded,
        "warnings": list(series.warnings),
        "from_archive": list(series.from_archive),
        "backport": backport.to_json() if (backport := backport_of(series)) else None,
    }


def errors_json(errors: list[InputError]) -> list[dict[str, Any]]:
    return [
        {"message_id": e.message_id, "source": e.source, "position": e.position, "error": e.error}
        for e in errors
    ]


def series_set_json(series: list[Series], errors: list[InputError]) -> dict[str, Any]:
    return {
        "schema": SERIES_SCHEMA,
        "tool": {"name": "reviewbot", "version": __version__},
        "series": [series_json(s) for s in series],
        "errors": errors_json(errors),
    }


def review_json(reviews: list[SeriesReview], errors: list[InputError]) -> dict[str, Any]:
    """The review report of several series."""
    return {
        "schema": REVIEW_SCHEMA,
        "tool": {"name": "reviewbot", "version": __version__},
        "series": [review_series_json(r) for r in reviews],
        "errors": errors_json(errors),
    }


def review_series_json(review: SeriesReview) -> dict[str, Any]:
    """One SeriesReview: the series fields, each stage's result, findings per patch."""
    doc = series_json(review.series)
    doc["stages"] = [
        {"name": o.name, "status": o.status, "reason": o.reason, "seconds": o.seconds}
        for o in review.outcomes
    ]
    for outcome in review.outcomes:
        data = outcome.json()
        if outcome.name == "boot":
            # The boot stage's result holds "build", "boot" and "tests" for the top level.
            for key in ("build", "boot"):
                doc[key] = data.get(key, {"status": outcome.status, "reason": outcome.reason})
            doc["tests"] = data.get("tests", [])
            if "coverage" in data:
                doc["coverage"] = data["coverage"]
            continue
        doc[outcome.name] = {"status": outcome.status, "reason": outcome.reason, **data}
    by_patch: dict[int | None, list[dict[str, Any]]] = {}
    for finding in review.findings:
        by_patch.setdefault(finding.patch_index, []).append(finding.to_json())
    for patch in doc["patches"]:
        patch["findings"] = by_patch.get(patch["index"], [])
    doc["findings"] = by_patch.get(None, [])  # series-level (build warnings, splats, ...)
    doc["exit_code"] = review.exit_code
    return doc


def write(document: Any, stream: TextIO | None = None) -> None:
    """Print a JSON document: indented on a terminal, compact (one line) otherwise.

    The stdlib only has a C encoder for compact output; indenting a year of series in
    Python took longer than reading the mail (0.08 s of 0.5 s), and a pipe reads either.
    """
    out = stream or sys.stdout
    json.dump(document, out, indent=2 if out.isatty() else None)
    out.write("\n")
