"""Nightly corpus scan: stream a mail archive, review the series in it, diff with last night.

SOURCE is a public-inbox v2 inbox (folder with ``git/N.git`` epochs, or one bare epoch),
or a folder of mbox/.eml/.patch files (or one such file). Only what arrived since the last
scan is read: the last commit of every epoch, or size/mtime/message count of every file,
is remembered in the per-source state (:mod:`reviewbot.scan.state`).

Memory stays flat however large the archive: messages are never all held. They are
grouped per thread (the first References entry, as series assembly does; unthreaded patches
per author/version/total) in a buffer of *open* threads. A thread closes when the archive's
clock (the newest plausible Date seen) has moved one thread window past its last message;
closed threads are assembled into series, reviewed and dropped. Threads still open at the
end are reviewed as they are and kept (raw, compressed) in the state, so that patches
arriving tomorrow join their series instead of starting a new one. A hard cap on buffered
messages closes the oldest threads first when dates are missing or absurd.

A reply's body is dropped on arrival (only its links and trailers matter to assembly), and
a reply to a thread that is not open (no patch in it, or closed long ago) is not kept.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
import os
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from reviewbot import __version__
from reviewbot.config import Settings, project_root
from reviewbot.errors import EXIT_FINDINGS, EXIT_OK, BadInputError, ReviewbotError
from reviewbot.mail.complete import Archive, complete_one, needs_completion
from reviewbot.mail.complete import offline as completion_off
from reviewbot.mail.ingest import parse_one
from reviewbot.mail.series import assemble
from reviewbot.model import Message, Series
from reviewbot.pipeline import ReviewOptions, SeriesReview
from reviewbot.progress import Progress
from reviewbot.scan.pool import ReviewPool, ReviewResult, review_for_scan
from reviewbot.scan.source import Reader, open_source
from reviewbot.scan.state import ScanState, finding_record, state_file
from reviewbot.scan.threads import Thread, Threads

log = logging.getLogger(__name__)

SCHEMA = "reviewbot/scan/v1"
CHECK_EVERY = 64  # messages between two looks for threads to close
MAX_ERRORS_LISTED = 20

Reviewer = Callable[[Series], SeriesReview]


@dataclass(frozen=True)
class ScanOptions:
    """Knobs of one scan. Defaults suit a mailing-list archive."""

    window_hours: float | None = None  # None: settings.mail.unthreaded_window_hours
    max_buffered: int = 5000  # messages held in open threads before the oldest close
    jobs: int = 0  # review processes; 0: one per CPU
    reviews_per_worker: int = 100  # a review process is replaced after this many series
    complete: bool = True  # complete partial series from fetch.public_inbox_url (--offline)
    review: ReviewOptions = field(default_factory=lambda: ReviewOptions(use_tree=False))

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ScanOptions:
        """The ``scan:`` section of config.yaml, with command-line values (not None) on top."""
        conf = settings.scan
        values: dict[str, Any] = {
            "window_hours": conf.window_hours or None,
            "max_buffered": conf.max_buffered,
            "jobs": conf.jobs,
            "reviews_per_worker": conf.reviews_per_worker,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class ScanReport:
    """What one scan did and found. ``to_json()`` is the ``reviewbot/scan/v1`` document."""

    source: str
    kind: str
    scan_id: int
    previous_scan_id: int | None
    started: float
    seconds: float = 0.0
    full: bool = False
    since: str | None = None
    messages: int = 0  # messages read in this scan (pending ones re-read not counted)
    parse_errors: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    series_assembled: int = 0
    series_reviewed: int = 0
    series_known: int = 0  # same content reviewed by an earlier scan: skipped
    series_partial: int = 0  # reviewed series that arrived with patches or cover missing
    series_completed: int = 0  # of those, completed from the archive (mail/complete.py)
    series_open: int = 0  # threads still open at the end, carried to the next scan
    stage_errors: int = 0
    buffer_peak: int = 0  # most messages held in open threads at once (memory check)
    positions_before: dict[str, Any] = field(default_factory=dict)
    positions_after: dict[str, Any] = field(default_factory=dict)
    rules_changed: bool = False
    new: list[dict[str, Any]] = field(default_factory=list)
    disappeared: list[dict[str, Any]] = field(default_factory=list)
    by_rule: dict[str, dict[str, int]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    state_path: str = ""

    @property
    def messages_per_second(self) -> float:
        return round(self.messages / self.seconds, 1) if self.seconds > 0 else 0.0

    @property
    def total_findings(self) -> int:
        return sum(c["total"] for c in self.by_rule.values())

    @property
    def exit_code(self) -> int:
        """1 when the scan found new warnings or errors that the base does not have."""
        serious = [
            f for f in self.new
            if f.get("severity") in ("error", "warning") and not f.get("preexisting")
        ]
        return EXIT_FINDINGS if serious else EXIT_OK

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "reviewbot": __version__,
            "source": self.source,
            "kind": self.kind,
            "scan_id": self.scan_id,
            "previous_scan_id": self.previous_scan_id,
            "started": datetime.fromtimestamp(self.started, UTC).isoformat(),
            "seconds": round(self.seconds, 3),
            "full": self.full,
            "since": self.since,
            "position": {"before": self.positions_before, "after": self.positions_after},
            "messages": {
                "read": self.messages,
                "per_second": self.messages_per_second,
                "unusable": self.parse_errors,
                "errors": self.errors,
            },
            "series": {
                "assembled": self.series_assembled,
                "reviewed": self.series_reviewed,
                "already_reviewed": self.series_known,
                "partial_on_arrival": self.series_partial,
                "completed_from_archive": self.series_completed,
                "open": self.series_open,
                "stage_errors": self.stage_errors,
                "buffer_peak": self.buffer_peak,
            },
            "rules_changed": self.rules_changed,
            "findings": {
                "total": self.total_findings,
                "new": self.new,
                "disappeared": self.disappeared,
                "by_rule": self.by_rule,
            },
            "warnings": self.warnings,
            "state": self.state_path,
        }


# -- the scan -----------------------------------------------------------------------------


def rules_hash(settings: Settings, options: ReviewOptions) -> str:
    """Hash of the rule files and reviewbot's version: a change means old verdicts may differ."""
    folder = options.rules_dir or (
        settings.path(settings.rules.path) if settings.rules.path else project_root() / "rules"
    )
    digest = hashlib.sha256(__version__.encode())
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix in (".yaml", ".yml", ".cocci"):
                digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def run_scan(
    source: str | Path,
    settings: Settings,
    *,
    since: str | None = None,
    full: bool = False,
    options: ScanOptions | None = None,
    progress: Progress | None = None,
    state_dir: Path | None = None,
    reviewer: Reviewer | None = None,
) -> ScanReport:
    """Scan SOURCE from where the last scan stopped, review new series, diff the findings.

    Args:
        source: a public-inbox inbox/epoch, a folder of mail files, or one mail file.
        settings: mail limits, the thread window, rules, and ``service.state_dir``.
        since: a commit of the inbox to start after instead of the remembered position.
        full: forget the position and re-review everything; findings not produced again
            are reported as disappeared (use after changing rules).
        options: window, buffer cap and the review options (rules only by default).
        progress: receives progress; silent when None.
        state_dir: where the per-source state lives (default ``{state_dir}``).
        reviewer: reviews one series (default: :func:`review_series` with
            ``options.review``); tests and the service may pass their own.
    Returns:
        The scan report (new/disappeared findings, counts per rule, positions).
    Raises:
        BadInputError: SOURCE is missing, empty or not a mail source; bad ``--since``.
        InfraError: git failed, the state is unusable or another scan holds its lock.
    """
    opts = options or ScanOptions.from_settings(settings)
    path = Path(source).expanduser()
    shown = progress or Progress.silent()
    root = state_dir or settings.path(settings.scan.state_dir or settings.service.state_dir)
    window_h = opts.window_hours if opts.window_hours is not None \
        else settings.mail.unthreaded_window_hours
    started = time.time()
    clock_start = time.monotonic()

    with ScanState(state_file(root, path)) as state:
        known = {} if full else state.positions()
        warnings: list[str] = []
        reader = open_source(path, known, since, warnings)
        previous = state.previous_scan()
        rhash = rules_hash(settings, opts.review)
        scan_id = state.begin_scan(full=full, since=since, rules_hash=rhash)
        report = ScanReport(
            source=str(path), kind=reader.kind, scan_id=scan_id,
            previous_scan_id=previous["id"] if previous else None, started=started,
            full=full, since=since, positions_before=reader.positions(),
            state_path=str(state.path), warnings=warnings,
        )
        report.rules_changed = bool(previous and previous["rules_hash"] != rhash)
        if report.rules_changed and not full:
            warnings.append("rules changed since the previous scan: only new mail is "
                            "reviewed with them; run with --full to re-check older series")
        threads = Threads(window_h * 3600.0, opts.max_buffered)
        worker = _Reviewing(state, scan_id, settings, reviewer, opts, full, report)
        try:
            still_open = _read_and_review(reader, state, threads, worker, settings, report,
                                          shown, full)
        finally:
            worker.close()

        pending = [
            (m.thread_root, src, zlib.decompress(blob))
            for t in still_open for m, (src, blob) in zip(t.messages, t.raws, strict=True)
        ]
        report.positions_after = reader.positions()
        state.finish_scan(scan_id, full=full, positions=report.positions_after,
                          pending=pending, messages=report.messages,
                          reviewed=report.series_reviewed)
        new, gone = state.changes(scan_id)
        report.new = [c.record for c in new]
        report.disappeared = [c.record for c in gone]
        report.by_rule = state.counts_by_rule(scan_id)
    report.seconds = time.monotonic() - clock_start
    return report


def _may_start_workers() -> bool:
    # A daemonic process (a Huey or multiprocessing worker) may not have children:
    # review in this process instead.
    return not multiprocessing.current_process().daemon


def _read_and_review(reader: Reader, state: ScanState, threads: Threads,
                     worker: _Reviewing, settings: Settings, report: ScanReport,
                     shown: Progress, full: bool) -> list[Thread]:
    """Stream the source through the open-thread buffer; return the threads still open."""
    if not full:
        for bucket, src, raw in state.pending():
            msg = _parse(raw, src, 0, settings, report)
            if msg is not None:
                threads.add(msg, src, raw)
            else:
                log.debug("dropping pending mail of %s", bucket)

    shown.start(reader.total, "messages")
    for n, item in enumerate(reader, 1):
        report.messages += 1
        if not item.data:
            _note_error(report, item.source, item.position, None, "unreadable")
        else:
            msg = _parse(item.data, item.source, item.position, settings, report)
            if msg is not None:
                threads.add(msg, item.source, item.data)
        if n % CHECK_EVERY == 0:
            worker.review(threads.close_due())
            shown.advance(report.messages, report.series_reviewed, worker.new)
    worker.review(threads.close_due())
    # What is still open is reviewed as it stands and kept for the next scan.
    still_open = threads.close_all()
    report.series_open = sum(1 for t in still_open if any(
        m.diff is not None and not m.subject.is_reply for m in t.messages))
    worker.review(still_open)
    worker.finish()
    shown.advance(report.messages, report.series_reviewed, worker.new)
    shown.finish()
    report.buffer_peak = threads.peak
    return still_open


class _Reviewing:
    """Assembles closed threads into series and reviews the ones not reviewed yet.

    With a custom ``review_fn`` (tests, the service) reviews run in this process; the
    default pipeline review runs in a :class:`ReviewPool`.
    """

    def __init__(self, state: ScanState, scan_id: int, settings: Settings,
                 review_fn: Reviewer | None, opts: ScanOptions, full: bool,
                 report: ScanReport) -> None:
        self.state = state
        self.scan_id = scan_id
        self.settings = settings
        self.review_fn = review_fn
        self.full = full
        self.report = report
        self.new = 0
        self.done_this_scan: set[str] = set()
        self.review_opts = opts.review
        # One archive per scan: each thread is fetched once, and after a network failure
        # no further fetch is tried (an offline machine pays one failure per scan).
        self.archive = Archive(settings) if opts.complete and not completion_off(settings) \
            else None
        self.pool = None
        if review_fn is None and _may_start_workers():
            self.pool = ReviewPool(settings, opts.review, opts.jobs or os.cpu_count() or 1,
                                   opts.reviews_per_worker, self._record)

    def review(self, threads: list[Thread]) -> None:
        if not threads:
            return
        found = assemble((m for t in threads for m in t.messages), self.settings.mail)
        for err in found.errors:
            _note_error(self.report, err.source, err.position, err.message_id, err.error)
        for series in found.series:
            self.report.series_assembled += 1
            key = series.content_key  # the service's run key too: a RESEND is known
            if key in self.done_this_scan or (not self.full and self.state.reviewed(key)):
                self.report.series_known += 1
                continue
            self.done_this_scan.add(key)
            if needs_completion(series):
                # Keyed by what the list carried (above): the next scan knows it without
                # fetching; reviewed with what the archive adds.
                self.report.series_partial += 1
                series = self._complete(series, threads)
            if self.pool is not None:
                self.pool.submit(series, key)
                continue
            if self.review_fn is None:
                self._record(series, key,
                             review_for_scan(series, self.settings, self.review_opts))
                continue
            review = self.review_fn(series)
            errors = tuple((o.name, o.reason) for o in review.outcomes if o.status == "error")
            self._record(series, key, ReviewResult(tuple(review.findings), errors))

    def _complete(self, series: Series, threads: list[Thread]) -> Series:
        if self.archive is None:
            return series
        done = complete_one(series, [m for t in threads for m in t.messages], self.settings,
                            self.archive)
        if done.from_archive or (done.cover is not None and series.cover is None):
            self.report.series_completed += 1
        return done

    def finish(self) -> None:
        if self.pool is not None:
            self.pool.drain()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()

    def _record(self, series: Series, key: str, result: ReviewResult) -> None:
        for stage, reason in result.stage_errors:
            self.report.stage_errors += 1
            self.report.warnings.append(f"<{series.series_id}>: stage {stage}: {reason}")
        records = [finding_record(series, f) for f in result.findings]
        new, _gone = self.state.record_review(self.scan_id, series, key, records)
        self.new += new
        self.report.series_reviewed += 1


def _parse(raw: bytes, source: str, position: int, settings: Settings,
           report: ScanReport) -> Message | None:
    try:
        return parse_one(raw, settings.mail, source=source, position=position)
    except BadInputError as exc:
        _note_error(report, source, position, None, getattr(exc, "reason", exc.message))
        return None


def _note_error(report: ScanReport, source: str, position: int, message_id: str | None,
                error: str) -> None:
    report.parse_errors += 1
    if len(report.errors) < MAX_ERRORS_LISTED:
        report.errors.append({"source": source, "position": position,
                              "message_id": message_id, "error": error})


def configured_sources(path: Path | None = None) -> list[dict[str, Any]]:
    """Entries of corpus/sources.yaml: ``{name, path, since?, enabled}``; paths expanded.

    Raises:
        BadInputError: the file is not valid YAML or an entry lacks ``name``/``path``.
    """
    file = path or project_root() / "corpus" / "sources.yaml"
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise BadInputError(f"cannot read: {exc.strerror}", source=str(file)) from exc
    except yaml.YAMLError as exc:
        raise BadInputError(f"not valid YAML: {exc}", source=str(file)) from exc
    entries = data.get("sources", []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise BadInputError("expected a mapping with a 'sources' list", source=str(file))
    out = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("path"):
            raise BadInputError(f"entry {i} needs 'name' and 'path'", source=str(file))
        expanded = os.path.expandvars(os.path.expanduser(str(entry["path"])))
        if not os.path.isabs(expanded):
            expanded = str((file.parent / expanded).resolve())
        out.append({**entry, "path": expanded, "enabled": bool(entry.get("enabled", True))})
    return out


def run_configured_scans(
    settings: Settings,
    *,
    sources_file: Path | None = None,
    options: ScanOptions | None = None,
    progress: Progress | None = None,
    state_dir: Path | None = None,
) -> list[ScanReport | ReviewbotError]:
    """Scan every enabled entry of corpus/sources.yaml (the nightly job).

    A source that fails (missing mirror, lock held by a scan still running) is returned as
    its error, and the others are still scanned: one broken mirror must not stop the night.

    Raises:
        BadInputError: the sources file itself is unreadable.
    """
    results: list[ScanReport | ReviewbotError] = []
    if sources_file is None and settings.scan.sources_file:
        sources_file = settings.path(settings.scan.sources_file)
    for entry in configured_sources(sources_file):
        if not entry["enabled"]:
            continue
        try:
            results.append(run_scan(entry["path"], settings, since=entry.get("since"),
                                    options=options, progress=progress, state_dir=state_dir))
        except ReviewbotError as exc:
            log.error("scan of %s (%s) failed: %s", entry["name"], entry["path"], exc)
            results.append(exc)
    return results
