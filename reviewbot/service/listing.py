"""The series list a maintainer scans: filters, paging, and each series' findings.

Used by ``GET /`` (HTML) and ``GET /v1/series`` (JSON), so both show the same rows: newest
first, filtered by state and by "has findings", ``limit`` rows from ``offset``; each row
with its missing patches as ranges and the findings of its run counted by severity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reviewbot.errors import BadInputError
from reviewbot.model import SEVERITIES, number_ranges
from reviewbot.report.html import findings_of
from reviewbot.service.schema import SERIES_STATES
from reviewbot.service.store import Store

MAX_LIMIT = 500


@dataclass(frozen=True)
class SeriesQuery:
    state: str | None = None
    with_findings: bool = False
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        if self.state is not None and self.state not in SERIES_STATES:
            raise BadInputError(f"unknown series state {self.state!r} "
                                f"(one of {', '.join(SERIES_STATES)})")

    def where(self) -> tuple[str, tuple[Any, ...]]:
        clauses, params = [], []
        if self.state:
            clauses.append("state = ?")
            params.append(self.state)
        if self.with_findings:
            clauses.append("run_id IN (SELECT id FROM runs WHERE findings > 0)")
        return " AND ".join(clauses), tuple(params)


def severity_counts(result: Any) -> dict[str, int]:
    """Findings of a review document by severity, each finding once."""
    seen: set[str] = set()
    counts = dict.fromkeys(SEVERITIES, 0)
    for f in findings_of(result):
        key = str(f.get("fingerprint") or id(f))
        if key in seen:
            continue
        seen.add(key)
        sev = str(f.get("severity", "info"))
        counts[sev if sev in counts else "info"] += 1
    return counts


def archive_patches(result: Any) -> list[int]:
    """Patch numbers the run's review fetched from the archive (mail/complete.py)."""
    if not isinstance(result, dict):
        return []
    out: set[int] = set()
    for series in result.get("series") or []:
        if isinstance(series, dict):
            out |= {int(i) for i in series.get("from_archive") or [] if isinstance(i, int)}
    return sorted(out)


def backport_note(result: Any) -> str:
    """'stable 6.1 (AUTOSEL) of 1234abcd5678' from the run's review, or ''."""
    if not isinstance(result, dict):
        return ""
    for series in result.get("series") or []:
        info = series.get("backport") if isinstance(series, dict) else None
        if isinstance(info, dict) and isinstance(info.get("target"), str):
            ids = [str(i)[:12] for i in info.get("upstream") or [] if isinstance(i, str)]
            note = f"stable {info['target']}" + (" (AUTOSEL)" if info.get("autosel") else "")
            if ids:
                note += f" of {', '.join(ids[:3])}" + (" ..." if len(ids) > 3 else "")
            return note
    return ""


def missing_note(missing: list[int], fetched: list[int]) -> str:
    """'2-39, 41-68 not on this list; 67 of them fetched from the archive'."""
    if not missing:
        return ""
    note = f"{number_ranges(missing)} not on this list"
    got = set(fetched) & set(missing)
    if got:
        note += (f"; {'all' if len(got) == len(missing) else len(got)} of them fetched "
                 "from the archive")
    return note


def list_series(store: Store, query: SeriesQuery) -> dict[str, Any]:
    """One page of series with their run's findings, and where the next page starts."""
    limit = max(1, min(query.limit, MAX_LIMIT))
    where, params = query.where()
    rows = store.series_rows(where, params, limit=limit + 1, offset=query.offset)
    more = len(rows) > limit
    rows = rows[:limit]
    run_ids = sorted({int(r["run_id"]) for r in rows if r.get("run_id")})
    runs: dict[int, dict[str, Any]] = {}
    if run_ids:
        marks = ",".join("?" * len(run_ids))
        for found in store.run_rows(f"id IN ({marks})", run_ids, limit=len(run_ids),
                                    result=True):
            runs[int(found["id"])] = found
    for row in rows:
        run: dict[str, Any] | None = runs.get(int(row["run_id"])) if row.get("run_id") else None
        row["missing_ranges"] = number_ranges(int(i) for i in row["missing"])
        row["from_archive"] = archive_patches(run.get("result")) if run else []
        row["backport"] = backport_note(run.get("result")) if run else ""
        row["missing_note"] = missing_note([int(i) for i in row["missing"]],
                                           row["from_archive"])
        row["run_state"] = run["state"] if run else None
        row["findings"] = severity_counts(run.get("result")) if run else None
        row["run_url"] = f"/v1/runs/{int(row['run_id'])}" if row.get("run_id") else None
    return {"series": rows, "offset": query.offset, "limit": limit,
            "next_offset": query.offset + limit if more else None}
