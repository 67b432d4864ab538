"""Results in b4's external check protocol (``b4 review``'s per-patch/series check commands).

b4 (review/checks.py, ``_run_external_cmd``) feeds one message on stdin and reads a JSON
list (or one object) of ``{tool, status, summary, url, details}`` from stdout; ``status`` is
``pass``, ``warn`` or ``fail`` (anything else counts as fail). ``details`` is shown in the
check's detail panel: when it is a JSON list of ``{status, description, srcline}`` b4
renders each entry as a line (the shape its built-in checkpatch check uses), else as text.
"""

from __future__ import annotations

import json
from typing import Any

from reviewbot.model import Finding
from reviewbot.results import SeriesReview

TOOL = "reviewbot"

# One status map (style point 9): our severities and stage statuses -> b4's three.
_SEVERITY_STATUS = {"error": "fail", "warning": "warn", "info": "pass"}
_STAGE_STATUS = {"success": "pass", "warning": "warn", "skipped": "pass", "fail": "fail",
                 "error": "fail"}
_ORDER = {"pass": 0, "warn": 1, "fail": 2}


def b4_status(finding: Finding) -> str:
    if finding.preexisting:
        return "pass"  # the base already has it: not this patch's doing
    return _SEVERITY_STATUS.get(finding.severity, "fail")


def check_results(review: SeriesReview, patch_index: int | None = None,
                  url: str = "") -> list[dict[str, str]]:
    """One result for the checked message: the worst status and every finding in details.

    Args:
        review: the review of the series the message belongs to.
        patch_index: restrict to findings of this patch (per-patch check); None for the
            series check (findings of every patch and of the series).
        url: a link to the full report, if the deployment has one.
    """
    findings = [f for f in review.findings
                if patch_index is None or f.patch_index in (patch_index, None)]
    entries: list[dict[str, Any]] = []
    worst = "pass"
    for f in findings:
        status = b4_status(f)
        worst = max(worst, status, key=_ORDER.__getitem__)
        where = f"{f.file}:{f.line}" if f.line else f.file
        entry: dict[str, Any] = {
            "status": status,
            "description": f"{where}: {f.severity}: [{f.rule}] {f.message}",
        }
        if f.evidence:
            entry["srcline"] = f.evidence[0].strip()
        entries.append(entry)
    for outcome in review.outcomes:
        # A stage's "warning" only summarises its findings, listed above; a failed or
        # crashed stage is a result of its own.
        status = _STAGE_STATUS.get(outcome.status, "fail")
        if status == "fail":
            worst = max(worst, status, key=_ORDER.__getitem__)
            entries.append({"status": status,
                            "description": f"{outcome.name}: {outcome.status}: {outcome.reason}"})
    return [{
        "tool": TOOL,
        "status": worst,
        "summary": _summary(findings, review),
        "url": url,
        "details": json.dumps(entries) if entries else "",
    }]


def error_result(summary: str, details: str = "") -> list[dict[str, str]]:
    """What b4 shows when reviewbot could not check the message at all."""
    return [{"tool": TOOL, "status": "fail", "summary": summary, "url": "", "details": details}]


def _summary(findings: list[Finding], review: SeriesReview) -> str:
    counts = {sev: sum(1 for f in findings if f.severity == sev and not f.preexisting)
              for sev in ("error", "warning", "info")}
    parts = [f"{n} {sev}{'s' if n != 1 else ''}" for sev, n in counts.items() if n]
    failed = [o.name for o in review.outcomes if o.status in ("fail", "error")]
    if failed:
        parts.append(f"{', '.join(failed)} failed")
    rules = review.outcome("rules")
    if rules is not None and rules.status == "skipped":
        parts.append(f"rules skipped ({rules.reason})")
    return ", ".join(parts) if parts else "no findings"
