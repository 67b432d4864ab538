"""The text report of one scan (``reviewbot scan``; the JSON is ScanReport.to_json())."""

from __future__ import annotations

import textwrap
from typing import Any

from reviewbot.scan.run import ScanReport

LISTED = 200  # findings listed per section in text; JSON always has them all


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
    if s["partial_on_arrival"]:
        lines.append(f"  partial on arrival: {s['partial_on_arrival']}, completed from the "
                     f"archive: {s['completed_from_archive']}, still partial: "
                     f"{s['partial_on_arrival'] - s['completed_from_archive']}")
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
