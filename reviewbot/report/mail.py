"""Kernel-reviewer-style reply mails for one :class:`SeriesReview`.

One reply per patch that has findings, threaded under that patch (In-Reply-To and
References), with ``Re: <subject>``; the flagged lines are quoted from the patch with ``> ``
and each finding is written below the lines it is about, as a human reviewer on LKML would.
Series-level results (findings without a patch, a failed apply/build/boot) go in one reply
to the cover letter (to patch 1 when there is no cover). Prose is wrapped at 72 columns;
quoted code is never re-wrapped, since that would change what it says. The first finding
of each rule in a reply is followed by the rule's advice: a "Fix:" paragraph and a "See:"
list of links (docs/rules.md, "What a finding says"); later ones of the same rule are not.

A clean review produces no mail: like 0-day, the bot speaks only when it has something to say.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shlex
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from fnmatch import fnmatchcase
from pathlib import Path

from reviewbot import __version__
from reviewbot.config import ServiceSettings, Settings
from reviewbot.diff import HUNK_HEADER, split_raw
from reviewbot.mail.parse import recipients
from reviewbot.mail.stable import backport_of, describe
from reviewbot.model import SEVERITIES, Finding, Message, Patch, Series, number_ranges
from reviewbot.report.boot import NO_CODE, NO_FUNCTION
from reviewbot.report.text import advice_key, advice_lines
from reviewbot.results import BootResult, CoverageSummary, SeriesReview, StageOutcome

log = logging.getLogger(__name__)

WIDTH = 72


def render_replies(review: SeriesReview, settings: Settings) -> list[EmailMessage]:
    """Build the reply mails for REVIEW (nothing when there is nothing to say).

    Args:
        review: the stages' outcomes for one series.
        settings: ``service.smtp_from`` (From: and the Message-ID domain),
            ``rules.min_severity`` (findings below it are left out).
    Returns:
        Messages ready for :class:`reviewbot.service.mailer.Mailer`, patch replies in patch
        order, then the series-level reply.
    """
    series = review.series
    findings = _reportable(review.findings, settings.rules.min_severity)
    by_patch: dict[int, list[Finding]] = {}
    series_level: list[Finding] = []
    patches = {p.index: p for p in series.patches}
    for finding in findings:
        if finding.patch_index is not None and finding.patch_index in patches:
            by_patch.setdefault(finding.patch_index, []).append(finding)
        else:
            series_level.append(finding)

    replies: list[EmailMessage] = []
    for index in sorted(by_patch):
        patch = patches[index]
        body = _patch_body(patch, by_patch[index], review)
        replies.append(_envelope(patch.message, series, body, by_patch[index], settings))

    failed = [o for o in review.outcomes if o.status in ("fail", "error")]
    if series_level or failed or series.missing and by_patch:
        target = series.cover or (series.patches[0].message if series.patches else None)
        if target is not None:
            body = _series_body(target, series_level, review)
            replies.append(_envelope(target, series, body, series_level, settings))
    return replies


def _reportable(findings: Iterable[Finding], min_severity: str) -> list[Finding]:
    limit = SEVERITIES.index(min_severity) if min_severity in SEVERITIES else len(SEVERITIES)
    return [f for f in findings if SEVERITIES.index(f.severity) <= limit]


# -- bodies -----------------------------------------------------------------------------


def _patch_body(patch: Patch, findings: list[Finding], review: SeriesReview) -> str:
    msg = patch.message
    lines = [_greeting(msg), "", _attribution(msg)]
    plan: QuotePlan = plan_quotes(msg.diff or "", findings)
    advised: set[tuple[object, ...]] = set()
    for block in plan.blocks:
        lines.extend(block.quoted)
        lines.append("")
        for finding in block.findings:
            lines.extend(_finding_text(finding, advised))
            lines.append("")
    if plan.unplaced:
        lines.append(_wrap("These could not be matched to a line of the patch:"))
        lines.append("")
        for finding in plan.unplaced:
            lines.extend(f"> {e}" for e in finding.evidence)
            lines.extend(_finding_text(finding, advised))
            lines.append("")
    lines.extend(_footer(review))
    return "\n".join(lines) + "\n"


def _series_body(target: Message, findings: list[Finding], review: SeriesReview) -> str:
    series = review.series
    lines = [_greeting(target), "", _attribution(target)]
    lines.append(f"> {_one_line(target.subject.raw)}")
    lines.append("")
    if series.missing:
        lines.append(
            _wrap(
                f"Patches {number_ranges(series.missing)} of {series.expected} "
                "never arrived, so this review covers only the patches that did."
            )
        )
        lines.append("")
    for outcome in review.outcomes:
        if outcome.status in ("fail", "error"):
            lines.append(_wrap(f"The {outcome.name} stage {_verb(outcome)}: {outcome.reason}"))
            if outcome.excerpt.strip():
                lines.append("")
                lines.extend(f"    {x}" for x in outcome.excerpt.strip().splitlines()[-15:])
            lines.append("")
    advised: set[tuple[object, ...]] = set()
    for finding in findings:
        lines.extend(f"> {e}" for e in finding.evidence)
        lines.extend(_finding_text(finding, advised))
        lines.append("")
    lines.extend(_footer(review))
    return "\n".join(lines) + "\n"


def _verb(outcome: StageOutcome) -> str:
    return "failed" if outcome.status == "fail" else "hit an internal error"


def _greeting(msg: Message) -> str:
    first = msg.author_name.split()[0] if msg.author_name.strip() else ""
    return f"Hi {first}," if first else "Hello,"


def _attribution(msg: Message) -> str:
    who = msg.author_name or msg.author_email
    when = format_datetime(msg.date) if msg.date else ""
    return _wrap(f"On {when}, {who} wrote:" if when else f"{who} wrote:")


def _finding_text(finding: Finding, advised: set[tuple[object, ...]]) -> list[str]:
    """One finding as reviewer prose; the rule's advice ("Fix:", "See:") follows the first
    finding of each rule in a reply (ADVISED: the advice already given in this reply)."""
    where = f"{finding.file}:{finding.line}" if finding.line else finding.file
    if finding.function:
        where += f" in {finding.function}()"
    head = f"[{finding.severity}] {finding.rule} ({finding.confidence} confidence), {where}:"
    out = [_wrap(head), _wrap(finding.message)]
    if finding.preexisting:
        out.append(_wrap("(The base tree has the same problem here; not introduced by this patch.)"))
    if finding.partial:
        out.append(_wrap("(Only the lines shown in the patch were analysed; the whole "
                         "function was not available.)"))
    advice = advice_lines(finding, WIDTH)
    if advice and advice_key(finding) not in advised:
        advised.add(advice_key(finding))
        out.extend(["", *advice])
    return out


def _footer(review: SeriesReview) -> list[str]:
    series = review.series
    lines = ["-- ", _wrap(f"Summary for \"{series.subject}\" (v{series.version}, "
                          f"{len(series.patches)}/{series.expected} patches):")]
    backport = backport_of(series)
    if backport is not None:
        lines.append(textwrap.fill(f"  backport: {describe(backport)}", WIDTH,
                                   subsequent_indent="    "))
    for outcome in review.outcomes:
        lines.extend(_stage_lines(outcome))
    lines.append("")
    lines.append("To reproduce:")
    lines.append("")
    lines.extend(f"  {cmd}" for cmd in _reproduce(review))
    lines.append("")
    lines.append(_wrap(f"reviewbot {__version__}, an automated reviewer for memcg and "
                       "mm->owner patches. Findings can be wrong; reply if one is."))
    return lines


def _stage_lines(outcome: StageOutcome) -> list[str]:
    detail = outcome.reason
    if outcome.name == "rules" and outcome.status != "skipped":
        detail = detail or f"{len(outcome.findings)} finding(s)"
    text = f"  {outcome.name}: {outcome.status}" + (f" ({detail})" if detail else "")
    out = [textwrap.fill(text, WIDTH, subsequent_indent="    ")]
    # The boot stage's parts: the patched build and boot, once they ran.
    result = outcome.result
    if isinstance(result, BootResult):
        parts = [("build", result.build.status if result.build else None,
                  result.build.reason if result.build else ""),
                 ("boot", result.boot.status if result.boot else None, "")]
        if result.tests and result.boot is not None and result.boot.status is not None:
            worse = sum(t.status == "regression" for t in result.tests)
            parts.append(("tests", "fail" if worse else "pass",
                          f"{worse} of {len(result.tests)} regressed" if worse
                          else f"{len(result.tests)} compared with the base"))
        for key, status, why in parts:
            if status is not None:
                sub = f"    {key}: {status}" + (f" ({why})" if why else "")
                out.append(textwrap.fill(sub, WIDTH, subsequent_indent="      "))
        if result.coverage is not None:
            out.extend(_coverage_lines(result.coverage))
    return out


def _coverage_lines(summary: CoverageSummary) -> list[str]:
    """The coverage table, shortened to what fits a mail: per file, the changed functions
    and the programs that ran them."""
    if summary.status != "measured":
        return [textwrap.fill(f"    coverage: {summary.status}" + (f" ({summary.reason})" if summary.reason else ""),
                              WIDTH, subsequent_indent="      ")]
    out = ["    coverage of the changed code (gcov, by test program):"]
    for covered in summary.files:
        if covered.status != "measured":
            out.append(textwrap.fill(f"      {covered.path}: {covered.status} ({covered.reason})", WIDTH,
                                     subsequent_indent="        "))
            continue
        if not covered.functions:
            out.append(textwrap.fill(f"      {covered.path}: {NO_FUNCTION}", WIDTH, subsequent_indent="        "))
            continue
        out.append(f"      {covered.path}: " + (f"{covered.executed_lines} of {covered.changed_lines} changed lines "
                                                 "with code ran" if covered.changed_lines
                                                 else "no changed line has code of its own"))
        for fn in covered.functions:
            who = (", ".join(fn.executed_by) if fn.executed_by
                   else "not exercised" if fn.changed_lines else NO_CODE)
            out.append(textwrap.fill(f"        {fn.name}(): {who}", WIDTH, subsequent_indent="          "))
    return out


def _reproduce(review: SeriesReview) -> list[str]:
    """The command that reviews the series again: by Message-ID (fetched from the
    public-inbox), or by the files it was read from when its Message-ID was made up."""
    series = review.series
    target = series.cover or (series.patches[0].message if series.patches else None)
    out: list[str] = []
    if target is not None and target.message_id_synthesised:
        # `reviewbot review 0001-memcg-fix.patch` of a `git format-patch` file without a
        # Message-ID: the parser made one up from the content, and no inbox knows it.
        files = _input_files(series)
        if files:
            args = ["reviewbot", "review", *(shlex.quote(f) for f in files)]
        else:  # read from stdin or the webhook: nothing to name
            out.append("# no Message-ID to fetch these mails by: save them as MBOX, then")
            args = ["reviewbot", "review", "MBOX"]
    else:
        msgid = target.message_id if target else series.series_id
        args = ["reviewbot", "review", shlex.quote(f"<{msgid}>")]
    apply = review.outcome("apply")
    if apply is None or apply.status == "skipped":
        args.append("--no-tree")
    elif review.state.base_ref:
        args.extend(["--base", review.state.base_ref])
    boot = review.outcome("boot")
    if boot is not None and boot.status != "skipped":
        args.append("--boot")
    return [*out, " ".join(args)]


def _input_files(series: Series) -> list[str]:
    """The files the series' mails were read from, in slot order, each once; sources that
    are not files ("<stdin>", the webhook's "mail:<id>") are left out."""
    messages = [s.message if isinstance(s, Patch) else s for s in series.slots if s is not None]
    sources = dict.fromkeys(m.source for m in messages if m.source)
    return [s for s in sources if Path(s).is_file()]


# -- headers ----------------------------------------------------------------------------


def _envelope(
    target: Message, series: Series, body: str, findings: list[Finding], settings: Settings
) -> EmailMessage:
    msg = EmailMessage()
    sender = settings.service.smtp_from
    msg["From"] = sender
    msg["To"] = _address(target.author_name, target.author_email)
    cc = _cc(target, sender, settings.service) if settings.service.reply_cc else []
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = _reply_subject(target.subject.raw)
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = _reply_id(target, series, findings, sender)
    # Ids come from the mail: only those that are plain msg-ids reach a header (printable
    # ASCII, one "@", no brackets or spaces); another is left out, and the reply then
    # threads by what remains.
    if _safe_id(target.message_id):
        msg["In-Reply-To"] = f"<{target.message_id}>"
    refs = [r for r in dict.fromkeys([*target.references, target.message_id]) if _safe_id(r)]
    dropped = len(set(target.references) | {target.message_id}) - len(refs)
    if dropped:
        log.info("reply to %r: %d Message-ID(s) left out of the headers (not plain msg-ids)",
                 target.message_id[:80], dropped)
    if refs:
        msg["References"] = " ".join(f"<{r}>" for r in refs)
    if _safe_id(series.series_id):
        msg["X-Reviewbot-Series"] = f"<{series.series_id}>"
    msg["X-Mailer"] = f"reviewbot {__version__}"
    # 8bit, not quoted-printable: kernel people read and quote replies as plain text.
    msg.set_content(body, charset="utf-8", cte="8bit")
    return msg


def _cc(target: Message, sender: str, service: ServiceSettings) -> list[str]:
    """Reply-all, as a reviewer on the list does: the patch's To: and Cc: (lists and
    maintainers), less its author (already in To:) and reviewbot itself, narrowed by
    ``reply_cc_only`` and ``reply_cc_never`` (shell patterns, case-insensitive)."""
    skip = {target.author_email.lower(), parseaddr(sender)[1].lower()}
    only = [p.lower() for p in service.reply_cc_only]
    never = [p.lower() for p in service.reply_cc_never]
    out = []
    for name, addr in recipients(target):
        low = addr.lower()
        if low in skip or any(fnmatchcase(low, p) for p in never):
            continue
        if only and not any(fnmatchcase(low, p) for p in only):
            continue
        out.append(_address(name, addr))
    return out


def _address(name: str, email: str) -> str:
    if not email:
        return name
    try:
        return str(Address(display_name=name, addr_spec=email))
    except (ValueError, IndexError, HeaderParseError):
        return email


def _reply_subject(raw: str) -> str:
    subject = _one_line(raw)
    return subject if subject.lower().startswith("re:") else f"Re: {subject}"


def _reply_id(target: Message, series: Series, findings: list[Finding], sender: str) -> str:
    # Deterministic: the same review of the same content gives the same Message-ID, so a
    # retried delivery is recognised (outbox, MTA duplicate suppression) instead of resent.
    key = "\n".join([series.series_id, str(series.version), target.message_id,
                     *sorted(f.fingerprint for f in findings)])
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    domain = parseaddr(sender)[1].rpartition("@")[2] or "reviewbot.invalid"
    return f"<reviewbot-{digest}@{domain}>"


_PLAIN_ID = re.compile(r"[\x21-\x3b\x3d\x3f-\x7e]{1,500}@[\x21-\x3b\x3d\x3f-\x7e]{1,400}")


def _safe_id(message_id: str) -> bool:
    """A Message-ID that may go into a header as ``<id>``: printable ASCII without ``<``,
    ``>`` or spaces (so no CR, LF or NUL either), one ``@`` or more, at most 900 bytes."""
    return _PLAIN_ID.fullmatch(message_id) is not None


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _wrap(text: str) -> str:
    return textwrap.fill(text, WIDTH, break_long_words=False, break_on_hyphens=False)



# -- quoting ----------------------------------------------------------------------------

CONTEXT_LINES = 6  # diff lines quoted above a flagged line, as reviewers trim with [...]


@dataclass
class QuoteBlock:
    quoted: list[str]  # "> "-prefixed lines of the patch
    findings: list[Finding]


@dataclass
class QuotePlan:
    blocks: list[QuoteBlock] = field(default_factory=list)
    unplaced: list[Finding] = field(default_factory=list)


@dataclass(frozen=True)
class _DiffLine:
    text: str
    file: str  # post-image path ("b/" stripped)
    new_line: int | None  # post-image line number; None for removed and header lines
    hunk: int  # index of the hunk header line in the diff, -1 outside hunks
    file_header: int  # index of the "diff --git" line


def plan_quotes(diff: str, findings: list[Finding]) -> QuotePlan:
    """Decide which diff lines to quote before each finding.

    A finding is placed on the diff line of its file whose post-image number is
    ``finding.line``; failing that, on the first added line equal to its first evidence
    line. Quotes run in diff order and never repeat a line: a second finding in the same
    hunk quotes only what follows the previous quote.
    """
    lines = _index_diff(diff)
    placed: list[tuple[int, Finding]] = []
    plan = QuotePlan()
    for finding in findings:
        pos = _locate(lines, finding)
        if pos is None:
            plan.unplaced.append(finding)
        else:
            placed.append((pos, finding))
    placed.sort(key=lambda item: item[0])
    last = -1  # index of the last quoted diff line
    raw = diff.splitlines()
    for pos, finding in placed:
        if pos <= last and plan.blocks:
            plan.blocks[-1].findings.append(finding)  # same line(s) as the previous finding
            continue
        here = lines[pos]
        end = pos + max(0, len(finding.evidence) - 1)
        end = min(end, _hunk_end(lines, pos))
        start = max(here.hunk + 1, pos - CONTEXT_LINES, last + 1)
        quoted: list[str] = []
        if last < here.file_header:
            quoted.append(f"> {raw[here.file_header]}")
            # index/---/+++ lines are left out silently; earlier hunks are marked as cut.
            if any(raw[i].startswith("@@") for i in range(here.file_header + 1, here.hunk)):
                quoted.append("[...]")
        if last < here.hunk:
            quoted.append(f"> {raw[here.hunk]}")
            if start > here.hunk + 1:
                quoted.append("[...]")
        elif start > last + 1:
            quoted.append("[...]")
        quoted.extend(f"> {raw[i]}".rstrip() for i in range(start, end + 1))
        plan.blocks.append(QuoteBlock(quoted, [finding]))
        last = end
    return plan


def _index_diff(diff: str) -> list[_DiffLine]:
    """Every line of the diff with its file and post-image number (the raw split of
    :mod:`reviewbot.diff`, so that a patch the diff model refuses can still be quoted)."""
    out = [_DiffLine(text, "", None, -1, 0) for text in diff.splitlines()]
    for raw in split_raw(diff):
        header = raw.header[0][0] if raw.header else raw.body[0][0] if raw.body else 0
        path = ""
        for _, text in raw.header:
            if text.startswith("diff --git "):
                path = text.rsplit(" b/", 1)[-1]
            elif text.startswith("+++ "):
                target = text[4:].split("\t")[0].strip()
                if target != "/dev/null":
                    path = target[2:] if target.startswith("b/") else target
        for i, text in raw.header:
            out[i] = _DiffLine(text, path, None, -1, header)
        hunk, new_line = -1, None
        for i, text in raw.body:
            found = HUNK_HEADER.match(text)
            if found:
                hunk, new_line = i, int(found.group("new_start"))
                out[i] = _DiffLine(text, path, None, hunk, header)
            elif hunk >= 0 and new_line is not None and text[:1] in (" ", "+", ""):
                out[i] = _DiffLine(text, path, new_line, hunk, header)
                new_line += 1
            else:
                out[i] = _DiffLine(text, path, None, hunk, header)
    return out


def _locate(lines: list[_DiffLine], finding: Finding) -> int | None:
    if finding.line is not None:
        for i, dl in enumerate(lines):
            if dl.new_line == finding.line and dl.file == finding.file and dl.hunk >= 0:
                return i
    wanted = finding.evidence[0].strip() if finding.evidence else ""
    if wanted:
        for i, dl in enumerate(lines):
            if (dl.file == finding.file and dl.text.startswith("+")
                    and dl.text[1:].strip() == wanted):
                return i
    return None


def _hunk_end(lines: list[_DiffLine], pos: int) -> int:
    """Index of the last line of the hunk that holds line POS."""
    end = pos
    while end + 1 < len(lines) and lines[end + 1].hunk == lines[pos].hunk \
            and not lines[end + 1].text.startswith(("diff --git ", "@@", "-- ")):
        end += 1
    return end
