"""Data model shared by every stage: frozen, typed, and explicit about guesses.

A value that was inferred rather than read carries a flag (``version_inferred``,
``counters_inferred``), in the manner of b4's ``LoreSubject``. In a :class:`Series`,
``slots[0]`` is the cover letter and a missing patch is an explicit ``None``, so an
incomplete series is visible in the type rather than in a side list.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

# Where a trailer came from: the patch mail itself, a reply to it, or the cover letter
# (b4 am writes all three into the commit message, in that order).
TRAILER_FROM_PATCH = "patch"
TRAILER_FROM_REPLY = "reply"
TRAILER_FROM_COVER = "cover"


@dataclass(frozen=True)
class Trailer:
    """One ``Key: value`` line at the end of a commit message or review reply."""

    name: str  # canonical capitalisation ("Signed-off-by"), unknown keys kept as written
    value: str
    origin: str = TRAILER_FROM_PATCH  # TRAILER_FROM_* constant
    origin_message_id: str | None = None  # the reply or cover that carried it

    @property
    def line(self) -> str:
        return f"{self.name}: {self.value}"


@dataclass(frozen=True)
class Subject:
    """A parsed ``Subject:`` header of a patch mail."""

    raw: str
    subject: str  # the subject with every prefix and the counter removed
    prefixes: tuple[str, ...]  # free-form prefix words, e.g. ("RFC", "net-next")
    version: int
    version_inferred: bool  # no "vN" was present: v1 assumed
    index: int
    total: int
    counters_inferred: bool  # no "N/M" was present: 1/1 assumed
    is_reply: bool  # starts with Re:/Aw:/Fwd:...
    is_rfc: bool
    is_resend: bool
    is_patch: bool  # carried a PATCH-like prefix at all


@dataclass(frozen=True)
class Message:
    """One decoded mail. Pure data: produced by :func:`reviewbot.mail.parse.parse_message`."""

    message_id: str  # without angle brackets; synthesised from position when absent
    subject: Subject
    author_name: str
    author_email: str
    date: datetime | None
    in_reply_to: str | None
    references: tuple[str, ...]
    body: str  # decoded text/plain body (attachments that carry a diff appended)
    commit_message: str  # body up to the first "---" separator or the diff
    diff: str | None  # unified diff text, None when the mail carries none
    trailers: tuple[Trailer, ...]  # trailers found in this mail's own text
    base_commit: str | None = None
    change_id: str | None = None
    prerequisite_patch_ids: tuple[str, ...] = ()
    position: int = 0  # 0-based position in the input it was read from
    source: str = ""  # file (and, for mbox, position) it was read from
    warnings: tuple[str, ...] = ()
    message_id_synthesised: bool = False
    patch_id: str | None = None  # filled in when the diff is known to be a patch
    # To: and Cc: as written (unfolded, encoded words not decoded: only a reply mail reads
    # them, see mail.parse.recipients()); dropped for replies, whose recipients nobody needs.
    to_header: str = ""
    cc_header: str = ""

    @property
    def author(self) -> str:
        return f"{self.author_name} <{self.author_email}>" if self.author_name else self.author_email

    @property
    def parent_id(self) -> str | None:
        """The message this one replies to: In-Reply-To, else the last References entry."""
        if self.in_reply_to:
            return self.in_reply_to
        return self.references[-1] if self.references else None

    @property
    def thread_root(self) -> str:
        """The Message-ID that roots this mail's thread as far as its own headers tell: the
        first References entry, else In-Reply-To, else its own. git-send-email threads every
        patch under the cover (or patch 1), so the root names the whole posting; the
        assembler walks further up when a mailer cut References short."""
        if self.references:
            return self.references[0]
        return self.in_reply_to or self.message_id

    @property
    def is_patch(self) -> bool:
        """A mail that can fill a slot of a series: it carries a diff and is not a reply."""
        return self.diff is not None and not self.subject.is_reply

    @property
    def is_cover(self) -> bool:
        """A cover letter: "N/M" counters with N = 0, no diff, not a reply."""
        s = self.subject
        return self.diff is None and not s.is_reply and not s.counters_inferred and s.index == 0


@dataclass(frozen=True)
class Patch:
    """A patch mail in its slot of a series, with the trailers collected for it."""

    message: Message
    index: int
    trailers: tuple[Trailer, ...]  # own, then from replies, then from the cover letter
    patch_id: str | None  # `git patch-id --stable` of the diff; None when git is unavailable

    @property
    def message_id(self) -> str:
        return self.message.message_id


@dataclass(frozen=True)
class Series:
    """One version of one patch series.

    ``slots[0]`` is the cover letter (or ``None``), ``slots[1..expected]`` the patches, with
    ``None`` for a slot that never arrived.
    """

    series_id: str  # stable: the cover's (else first patch's) Message-ID
    version: int
    subject: str
    author: str
    expected: int
    slots: tuple[Patch | Message | None, ...]
    base_commit: str | None = None
    superseded_by: str | None = None  # series_id of a newer version found in the same input
    supersedes: tuple[str, ...] = ()
    threaded: bool = True  # False: grouped by author/version/total within a time window
    warnings: tuple[str, ...] = field(default=())
    from_archive: tuple[int, ...] = ()  # patches fetched from the archive (mail/complete.py)

    @property
    def cover(self) -> Message | None:
        first = self.slots[0]
        return first if isinstance(first, Message) else None

    @property
    def patches(self) -> tuple[Patch, ...]:
        """The patches that arrived, in order."""
        return tuple(p for p in self.slots[1:] if isinstance(p, Patch))

    @property
    def missing(self) -> tuple[int, ...]:
        return tuple(i for i, p in enumerate(self.slots) if i > 0 and p is None)

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def latest(self) -> bool:
        return self.superseded_by is None

    @property
    def content_key(self) -> str:
        """What a review looks at, hashed: each present patch's subject, message and diff.
        A late cover letter, a reply with a Reviewed-by or a RESEND of the same patches
        keeps the key, so neither the service nor the scan reviews them twice."""
        h = hashlib.sha256()
        h.update(f"expected={self.expected}\n".encode())
        for slot in self.slots[1:]:
            if isinstance(slot, Patch):
                m = slot.message
                part = json.dumps([slot.index, m.subject.subject, m.commit_message, m.diff or ""])
            else:
                part = "null"
            h.update(hashlib.sha256(part.encode("utf-8", "replace")).digest())
        return h.hexdigest()


@dataclass(frozen=True)
class Backport:
    """A series sent to a stable tree (recognised by :func:`reviewbot.mail.stable.backport_of`).

    Everything here is what the mail claims. Whether the diff is what a normal backport of
    the upstream commit would be cannot be known without the upstream tree, so nothing
    says it is.
    """

    target: str  # the stable series, major.minor: "6.1" for [PATCH 6.1.y] or [PATCH 6.1.12]
    autosel: bool  # picked by the AUTOSEL bot ([PATCH AUTOSEL 6.1 ...]), not by a human
    upstream: tuple[str, ...]  # claimed upstream commit ids, lowercase, patch order, once each
    evidence: str  # what made it one: "subject prefix [AUTOSEL 5.4], 1 upstream line"
    unclaimed: tuple[int, ...] = ()  # patches that name no upstream commit

    def to_json(self) -> dict[str, object]:
        return {"target": self.target, "autosel": self.autosel, "upstream": list(self.upstream),
                "evidence": self.evidence, "unclaimed": list(self.unclaimed)}


def number_ranges(numbers: Iterable[int]) -> str:
    """``1, 2, 3, 5, 7, 8`` as ``1-3, 5, 7-8``: a series missing 67 of 68 patches reads as
    "2-39, 41-68", not as 67 numbers."""
    out: list[str] = []
    run: list[int] = []
    for n in sorted(set(numbers)):
        if run and n == run[-1] + 1:
            run.append(n)
            continue
        if run:
            out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
        run = [n]
    if run:
        out.append(str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}")
    return ", ".join(out)


@dataclass(frozen=True)
class InputError:
    """A message that could not be used, with enough context to find it."""

    source: str
    position: int
    message_id: str | None
    error: str


SEVERITIES = ("error", "warning", "info")
CONFIDENCES = ("high", "moderate", "low")


@dataclass(frozen=True)
class Reference:
    """A rule's reference in the form a kernel developer can follow (see
    :func:`reviewbot.references.followable`): a URL, or ``commit <12 hex> ("subject")``."""

    kind: str  # review, commit, source, thread, doc (as in the rule file)
    what: str  # the rule file's description
    where: str  # as written in the rule file
    link: str  # what a reader follows

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "what": self.what, "where": self.where, "link": self.link}


@dataclass(frozen=True)
class Finding:
    """One problem found by a rule, a build (new warning) or a boot (splat).

    ``fingerprint`` ignores line numbers, so "introduced by this series" and "new since last
    night" are set differences.
    """

    rule: str
    severity: str  # one of SEVERITIES
    confidence: str  # one of CONFIDENCES
    file: str
    line: int | None  # post-image line number
    function: str | None
    message: str
    fingerprint: str
    evidence: tuple[str, ...] = ()  # the flagged source lines
    partial: bool = False  # analysis saw only what the hunks show
    preexisting: bool = False  # the base function has the same problem
    patch_index: int | None = None  # 1..N, None for series-level findings
    category: str = ""
    fix_hint: str = ""  # what to write instead (the rule's fix-hint), one paragraph
    references: tuple[Reference, ...] = ()  # only references a reader can follow

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "rule": self.rule,
            "severity": self.severity,
            "confidence": self.confidence,
            "category": self.category,
            "file": self.file,
            "line": self.line,
            "function": self.function,
            "message": self.message,
            "evidence": list(self.evidence),
            "partial": self.partial,
            "preexisting": self.preexisting,
            "fingerprint": self.fingerprint,
        }
        # Optional within reviewbot/review/v1: absent for findings without advice (build
        # warnings, boot splats, findings of older runs).
        if self.fix_hint:
            out["fix_hint"] = self.fix_hint
        if self.references:
            out["references"] = [r.to_json() for r in self.references]
        return out
