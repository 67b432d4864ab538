"""Plain-text rendering for the terminal: series listings and review results."""

from __future__ import annotations

import re
import textwrap

from reviewbot.mail.stable import backport_of, describe
from reviewbot.model import Finding, InputError, Patch, Series, number_ranges
from reviewbot.report.boot import render_coverage
from reviewbot.results import ApplyResult, BootResult, RulesResult, SeriesReview, StageOutcome

_MARK = {"success": "ok", "warning": "WARN", "fail": "FAIL", "skipped": "skip", "error": "ERROR"}


def _series_head(series: Series) -> list[str]:
    state = "latest" if series.latest else f"superseded by <{series.superseded_by}>"
    present = len(series.patches)
    lines = [
        f"[v{series.version}] {series.subject}",
        f"  author: {series.author}",
        f"  patches: {present}/{series.expected} present"
        + (f", missing {number_ranges(series.missing)}" if series.missing else "")
        + ("" if series.cover else ", no cover letter")
        + ("" if series.threaded else ", unthreaded (grouped by author/version/time)"),
        f"  id: <{series.series_id}>  ({state})",
    ]
    if series.base_commit:
        lines.append(f"  base-commit: {series.base_commit}")
    backport = backport_of(series)
    if backport is not None:
        lines.extend(textwrap.wrap(describe(backport), 88, initial_indent="  backport: ",
                                   subsequent_indent="    "))
    lines.extend(f"  warning: {w}" for w in series.warnings)
    return lines


def render_series(series: Series) -> str:
    lines = _series_head(series)
    if series.cover:
        lines.append(f"  0/{series.expected} cover <{series.cover.message_id}>")
    for index, slot in enumerate(series.slots[1:], start=1):
        if not isinstance(slot, Patch):
            lines.append(f"  {index}/{series.expected} MISSING")
            continue
        pid = (slot.patch_id or "-")[:12]
        lines.append(f"  {index}/{series.expected} {slot.message.subject.subject}")
        lines.append(f"      <{slot.message_id}> patch-id {pid}")
        for t in slot.trailers:
            via = f" <{t.origin_message_id}>" if t.origin_message_id else ""
            lines.append(f"      {t.line}  [{t.origin}{via}]")
    return "\n".join(lines)


def render_errors(errors: list[InputError]) -> str:
    return "\n".join(
        f"error: {e.source}#{e.position}"
        + (f" <{e.message_id}>" if e.message_id else "")
        + f": {e.error}"
        for e in errors
    )


def render_series_set(series: list[Series], errors: list[InputError]) -> str:
    blocks = [render_series(s) for s in series]
    if errors:
        blocks.append(render_errors(errors))
    blocks.append(f"{len(series)} series, {len(errors)} unusable messages")
    return "\n\n".join(blocks) + "\n"


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, 88, initial_indent=indent, subsequent_indent=indent) or [indent]


def render_review(review: SeriesReview) -> str:
    """A SeriesReview as text: series head, stage table, findings per patch."""
    series: Series = review.series
    lines = _series_head(series)
    lines.append("  stages:")
    for o in review.outcomes:
        reason = f" - {o.reason}" if o.reason else ""
        lines.append(f"    {o.name:<6} {_MARK.get(o.status, o.status):<5}{reason}")
        lines.extend(_stage_details(o))
    findings = sorted(
        review.findings,
        key=lambda f: (f.patch_index or 0, f.file, f.line or 0, f.rule),
    )
    if not findings:
        lines.append("  findings: none")
    advised: set[tuple[object, ...]] = set()
    for f in findings:
        where = f" {f.file}:{f.line}" if f.line else (f" {f.file}" if f.file else "")
        patch = f"patch {f.patch_index}" if f.patch_index else "series"
        extra = ", pre-existing" if f.preexisting else ""
        extra += ", partial" if f.partial else ""
        lines.append(
            f"  [{f.severity}/{f.confidence}{extra}] {f.rule} ({patch}){where}"
            + (f" in {f.function}()" if f.function else "")
        )
        lines.extend(_wrap(f.message, "      "))
        lines.extend(f"      > {ev}" for ev in f.evidence[:6])
        # A rule's advice once, after its first finding: five leaks of one rule are five
        # places to fix the same way.
        if advice_key(f) not in advised:
            advised.add(advice_key(f))
            lines.extend(advice_lines(f, 88, "      "))
    return "\n".join(lines)


_CODE = re.compile(r"`[^`]+`")
_GLUE = "\x00"  # a space textwrap must not break at


def advice_key(finding: Finding) -> tuple[object, ...]:
    """Findings with equal keys share their advice (a rule's hint and references; a
    bisection hazard has its own hint)."""
    return (finding.rule, finding.fix_hint, finding.references)


def advice_lines(finding: Finding, width: int, indent: str = "") -> list[str]:
    """The "Fix:" paragraph and the "See:" list of a finding (nothing when it has none).

    Links are never wrapped, whatever their length: a broken URL cannot be followed.
    """
    out: list[str] = []
    if finding.fix_hint:
        # Code in backticks is kept on one line when it fits: `if (!thread_group_leader(tsk))
        # continue;` broken after "if" reads as two statements.
        room = width - len(indent) - len("Fix: ")
        text = _CODE.sub(lambda m: m.group(0).replace(" ", _GLUE) if len(m.group(0)) <= room
                         else m.group(0), f"Fix: {finding.fix_hint}")
        out.extend(line.replace(_GLUE, " ") for line in textwrap.wrap(
            text, width, initial_indent=indent, subsequent_indent=indent,
            break_long_words=False, break_on_hyphens=False))
    for i, ref in enumerate(finding.references):
        out.append(f"{indent}{'See: ' if i == 0 else '     '}{ref.link}")
    return out


def _stage_details(outcome: StageOutcome) -> list[str]:
    result = outcome.result
    out: list[str] = []
    if isinstance(result, ApplyResult):
        if result.base:
            out.append(f"           base {result.base} ({result.base_reason})")
        for t in result.tried:
            msg = t.message.strip().splitlines()
            out.append(f"           tried {t.ref}: {t.outcome}" + (f": {msg[0]}" if msg else ""))
        for p in result.patches:
            out.append(f"           {p.index}: {p.status} {(p.commit or '')[:12]}")
            for c in p.conflicts:
                out.append(f"              conflict: {c.file}: {c.reason}")
                out.extend(f"                {h}" for h in c.hunks)
    if isinstance(result, RulesResult):
        out.append(
            f"           {result.rules_run} rules, mode {result.mode}"
            + (f", {len(result.partial_functions)} function(s) seen only through the hunks"
               if result.partial_functions else "")
        )
        out.extend(f"           note: {note}" for note in result.skipped)
        out.extend(f"           could not parse: {p}" for p in result.parse_errors)
    if isinstance(result, BootResult):
        for test in result.tests:
            out.append(f"           {test.name:<32} base {test.base:<5} "
                       f"patched {test.patched:<5} {test.status}")
        if result.coverage is not None:
            out.extend(render_coverage(result.coverage, indent="           "))
    return out
