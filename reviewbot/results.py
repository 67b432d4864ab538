"""What the stages of one review hand on: typed results beside the model, and their JSON.

Every stage (:mod:`reviewbot.pipeline`) returns a :class:`StageOutcome`: a status from
:data:`STATUSES`, a reason, its findings and its own typed result (:class:`ApplyResult`,
:class:`RulesResult`, :class:`BootResult`). Reports read the typed fields; ``to_json()``
writes the stage's object of the ``reviewbot/review/v1`` schema (docs/json.md), so the JSON
is defined here, once, next to the type it comes from.

The value types below are pure data without behaviour: a patch's apply result, a safety
issue, a compiler warning, a test comparison, a kernel splat. The modules that produce them
(tree/, boot/) import them from here, so a report never imports a stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from reviewbot.errors import EXIT_FINDINGS, EXIT_INFRA, EXIT_OK
from reviewbot.model import Finding, Series

# Status map shared by every stage and report (style: one map; unknown -> fail).
STATUSES = ("success", "warning", "fail", "skipped", "error")

Json = dict[str, object]


# -- apply --------------------------------------------------------------------------------

APPLIED = "applied"
CONFLICT = "conflict"
ALREADY_PRESENT = "already-present"
SKIPPED = "skipped"
REFUSED = "refused"


@dataclass(frozen=True)
class Conflict:
    """A file git could not patch, with the hunks whose pre-image is not in it."""

    file: str
    hunks: tuple[str, ...]
    reason: str

    def to_json(self) -> Json:
        return {"file": self.file, "hunks": list(self.hunks), "reason": self.reason}


@dataclass
class PatchResult:
    """What ``git am`` did with one slot of the series."""

    index: int
    status: str  # APPLIED | CONFLICT | ALREADY_PRESENT | SKIPPED | REFUSED
    commit: str | None = None
    conflicts: list[Conflict] = field(default_factory=list)
    message: str = ""  # git's own words for this patch (conflict, already present)
    subject: str = ""
    message_id: str = ""

    def to_json(self) -> Json:
        return {
            "index": self.index,
            "status": self.status,
            "commit": self.commit,
            "conflicts": [c.to_json() for c in self.conflicts],
            "message": self.message,
            "subject": self.subject,
            "message_id": self.message_id,
        }


@dataclass(frozen=True)
class SafetyIssue:
    """One problem with one patch. ``refused`` issues stop the series from being applied."""

    index: int  # patch number in the series (1..N)
    kind: str  # "outside-tree" | "git-dir" | "symlink" | "submodule" | "binary"
    path: str
    message: str

    @property
    def refused(self) -> bool:
        return self.kind != "binary"

    def to_json(self) -> Json:
        return {"index": self.index, "kind": self.kind, "path": self.path,
                "message": self.message, "refused": self.refused}


@dataclass
class BaseAttempt:
    """One base the apply stage tried, and why it was on the list."""

    ref: str
    commit: str | None
    reason: str
    outcome: str = ""  # applied | conflict | already-applied | not-found | duplicate | refused
    message: str = ""

    def to_json(self) -> Json:
        return {"ref": self.ref, "commit": self.commit, "reason": self.reason,
                "outcome": self.outcome, "message": self.message}


@dataclass
class ApplyResult:
    """The ``apply`` object: the base chosen, every base tried, every patch's result."""

    tree: str
    series_bytes: int
    base: str | None = None
    base_commit: str | None = None
    base_reason: str = ""
    tried: list[BaseAttempt] = field(default_factory=list)
    patches: list[PatchResult] = field(default_factory=list)
    worktree: str | None = None
    issues: list[SafetyIssue] = field(default_factory=list)
    recovered_from_pid: int | None = None  # a killed holder's worktree was repaired

    def to_json(self) -> Json:
        out: Json = {
            "base": self.base,
            "base_commit": self.base_commit,
            "base_reason": self.base_reason,
            "tried": [t.to_json() for t in self.tried],
            "patches": [p.to_json() for p in self.patches],
            "worktree": self.worktree,
            "tree": self.tree,
            "issues": [i.to_json() for i in self.issues],
            "series_bytes": self.series_bytes,
        }
        if self.recovered_from_pid is not None:
            out["recovered_from_pid"] = self.recovered_from_pid
        return out


# -- rules --------------------------------------------------------------------------------


@dataclass
class RulesResult:
    """The ``rules`` object: what ran, in which mode, and what it could not see."""

    rules_run: int
    rules_dir: str
    patches: int
    mode: str  # tree (whole functions from git) | hunks (rebuilt from the diff)
    facts: str  # which base's kernel facts the rules used, or why none
    rebuilt_on: str | None  # base commit the hunks were placed on, when not applied
    skipped: list[str]  # notices: rules that could not run, and why
    functions: int
    partial_functions: list[str]  # file:function seen only through the hunks
    parse_errors: list[str]
    findings_by_severity: dict[str, int]
    bad_patches: list[str]
    rebuilt_base: str | None = None  # the ref of rebuilt_on (the closest base)
    rebuilt_reason: str = ""  # why that base: how many hunks' context each base holds
    # Files whose hunks another base places better, and that base (engine/run.py).
    rebuilt_elsewhere: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> Json:
        return {
            "rules_run": self.rules_run,
            "rules_dir": self.rules_dir,
            "patches": self.patches,
            "mode": self.mode,
            "facts": self.facts,
            "rebuilt_on": self.rebuilt_on,
            "rebuilt_base": self.rebuilt_base,
            "rebuilt_reason": self.rebuilt_reason,
            "rebuilt_elsewhere": dict(self.rebuilt_elsewhere),
            "skipped": list(self.skipped),
            "functions": self.functions,
            "partial_functions": list(self.partial_functions),
            "parse_errors": list(self.parse_errors),
            "findings_by_severity": dict(self.findings_by_severity),
            "bad_patches": list(self.bad_patches),
        }


# -- build and boot -----------------------------------------------------------------------


@dataclass(frozen=True)
class CompilerWarning:
    file: str  # relative to the source tree
    line: int
    message: str
    flag: str

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity without the line number, so that moved code is not a new warning."""
        return (self.file, self.message, self.flag)

    def to_json(self) -> Json:
        return {"file": self.file, "line": self.line, "message": self.message, "flag": self.flag}


@dataclass(frozen=True)
class TestComparison:
    """One test of the suite, base against patched."""

    __test__ = False  # not a pytest class, whatever its name says

    name: str
    base: str  # pass | fail | skip | flaky | missing
    patched: str  # pass | fail | skip | missing | not-run
    status: str
    detail: str = ""

    def to_json(self) -> Json:
        data: Json = {"name": self.name, "base": self.base, "patched": self.patched,
                      "status": self.status}
        if self.detail:
            data["detail"] = self.detail
        return data


@dataclass(frozen=True)
class CoveredFunction:
    """A function the series changed, and which guest programs ran any line of it."""

    name: str
    line: int  # first line of its definition in the patched file
    executed_by: tuple[str, ...]  # programs whose counters show a line of it run; () = none
    changed_lines: int  # executable lines of it the series added or changed
    changed_executed: int  # ... of which some program ran

    def to_json(self) -> Json:
        return {"name": self.name, "line": self.line, "executed": bool(self.executed_by),
                "executed_by": list(self.executed_by), "changed_lines": self.changed_lines,
                "changed_executed": self.changed_executed}


@dataclass
class CoveredFile:
    """Coverage of one file the series touches (reviewbot.boot.coverage)."""

    path: str
    status: str  # measured | not-profiled | not-built | not-measured | unreadable
    reason: str = ""
    functions: list[CoveredFunction] = field(default_factory=list)
    changed_lines: int = 0  # executable changed lines (gcov has a counter for them)
    executed_lines: int = 0
    not_executed: list[int] = field(default_factory=list)  # changed lines no program ran

    def to_json(self) -> Json:
        out: Json = {"path": self.path, "status": self.status}
        if self.reason:
            out["reason"] = self.reason
        if self.status == "measured":
            out.update(functions=[f.to_json() for f in self.functions],
                       changed_lines=self.changed_lines, executed_lines=self.executed_lines,
                       not_executed=self.not_executed)
        return out


@dataclass
class CoverageSummary:
    """Did the tests run the changed code? ``status``: measured | off | unavailable."""

    status: str
    reason: str = ""
    programs: list[str] = field(default_factory=list)  # programs whose counters were read
    files: list[CoveredFile] = field(default_factory=list)

    @property
    def functions(self) -> list[CoveredFunction]:
        return [f for c in self.files for f in c.functions]

    def to_json(self) -> Json:
        out: Json = {"status": self.status}
        if self.reason:
            out["reason"] = self.reason
        out.update(programs=self.programs, files=[f.to_json() for f in self.files])
        return out


@dataclass
class SplatSummary:
    """One kind of kernel splat in a boot: its first occurrence and how often it came."""

    kind: str
    title: str
    fingerprint: str
    program: str | None
    test: str | None
    excerpt: str
    count: int = 1

    def to_json(self) -> Json:
        return {"kind": self.kind, "title": self.title, "fingerprint": self.fingerprint,
                "program": self.program, "test": self.test, "excerpt": self.excerpt,
                "count": self.count}


@dataclass(frozen=True)
class Metric:
    """A figure the suite prints (``test.key``): every base run's value and the patched one."""

    base: tuple[str | None, ...]
    patched: str | None

    def to_json(self) -> Json:
        return {"base": list(self.base), "patched": self.patched}


@dataclass(frozen=True)
class BaseBuild:
    status: str
    seconds: float
    cached: bool

    def to_json(self) -> Json:
        return {"status": self.status, "seconds": self.seconds, "cached": self.cached}


@dataclass
class BuildSummary:
    """The base build (cached), and the patched build once it ran."""

    base: BaseBuild
    status: str | None = None  # None: no patched build (base only, or not reached)
    seconds: float = 0.0
    reason: str = ""
    log: str = ""
    warnings_new: list[CompilerWarning] = field(default_factory=list)

    def to_json(self) -> Json:
        out: Json = {"base": self.base.to_json()}
        if self.status is not None:
            out.update(status=self.status, seconds=self.seconds, reason=self.reason,
                       log=self.log, warnings_new=[w.to_json() for w in self.warnings_new])
        return out


@dataclass(frozen=True)
class BaseBoot:
    status: str
    seconds: float
    runs: int
    cached: bool
    console: str
    # every base run's splats, one per fingerprint: what a patched run is compared against
    # (a debug kernel's base is rarely silent: kmemleak false positives, lockdep on old code)
    splats: list[SplatSummary] = field(default_factory=list)

    def to_json(self) -> Json:
        out: Json = {"status": self.status, "seconds": self.seconds, "runs": self.runs,
                     "cached": self.cached, "console": self.console}
        if self.splats:
            out["splats"] = [s.to_json() for s in self.splats]
        return out


@dataclass
class BootSummary:
    """The base boots (cached) and the patched boot once it ran."""

    accel: str
    accel_reason: str
    base: BaseBoot
    status: str | None = None  # completed | exited | boot timeout | skipped; None: not run
    seconds: float = 0.0
    console: str | None = None
    splats: list[SplatSummary] = field(default_factory=list)
    splat_count: int | None = None
    splats_new: list[SplatSummary] = field(default_factory=list)
    last_lines: str | None = None  # the console's end, after a boot timeout
    confirm_console: str | None = None  # the second boot that confirmed regressions
    kmemleak_scanned: bool = False  # the guest scanned for leaks after the suite (debug profile)

    def to_json(self) -> Json:
        out: Json = {"accel": self.accel, "accel_reason": self.accel_reason,
                     "base": self.base.to_json()}
        if self.status is None:
            return out
        out.update(status=self.status, seconds=self.seconds,
                   splats=[s.to_json() for s in self.splats])
        if self.console is not None:
            out.update(console=self.console, splat_count=self.splat_count,
                       splats_new=[s.to_json() for s in self.splats_new])
        if self.last_lines is not None:
            out["last_lines"] = self.last_lines
        if self.confirm_console is not None:
            out["confirm_console"] = self.confirm_console
        if self.kmemleak_scanned:
            out["kmemleak_scanned"] = True
        return out


@dataclass
class BootResult:
    """The build, boot and tests of one run of the boot stage (``reviewbot boot`` prints the
    same). ``error`` and ``detail`` (the log excerpt) are set instead when the base kernel
    could not be built or booted."""

    base_commit: str
    config: str
    build: BuildSummary | None
    boot: BootSummary | None
    tests: list[TestComparison] = field(default_factory=list)
    metrics: dict[str, Metric] = field(default_factory=dict)
    error: str = ""
    detail: str = ""
    profile: str = ""  # the build profile both kernels were built with (fast, debug)
    profile_reason: str = ""  # why that one ("the series touches mm/memcontrol.c", "given")
    coverage: CoverageSummary | None = None  # patched kernel only (build.coverage)

    def to_json(self) -> Json:
        if self.error:
            return {"error": self.error, "detail": self.detail}
        out: Json = {"base_commit": self.base_commit, "config": self.config}
        if self.build is not None:
            build = self.build.to_json()
            if self.profile:  # in "build": the review JSON lifts "build" to its top level
                build["profile"] = {"name": self.profile, "reason": self.profile_reason}
            out["build"] = build
        if self.boot is not None:
            out["boot"] = self.boot.to_json()
        out["tests"] = [t.to_json() for t in self.tests]
        out["metrics"] = {k: m.to_json() for k, m in self.metrics.items()}
        if self.coverage is not None:
            out["coverage"] = self.coverage.to_json()
        return out


# -- one stage's outcome, and what the stages share ----------------------------------------

StageResult = ApplyResult | RulesResult | BootResult


@dataclass
class StageOutcome:
    """What one stage produced: status, reason, findings and the stage's typed result."""

    name: str
    status: str  # one of STATUSES
    reason: str = ""
    result: StageResult | None = None
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    def json(self) -> Json:
        """The stage's object in the review report (empty when it produced no result)."""
        return self.result.to_json() if self.result is not None else {}

    @property
    def excerpt(self) -> str:
        """The log lines that explain a failure, when the stage kept any."""
        return self.result.detail if isinstance(self.result, BootResult) else ""


@dataclass(frozen=True)
class ReviewOptions:
    tree: Path | None = None  # kernel tree; None with use_tree=False means --no-tree
    use_tree: bool = True
    base: str | None = None  # --base REF
    boot: bool = False  # --boot: build, boot and run the charge tests
    profile: str | None = None  # --profile: the build profile (None: build.profile decides)
    rules_dir: Path | None = None  # --rules DIR


@dataclass
class ReviewState:
    """Shared between the stages of one review."""

    worktree: Path | None = None  # where the series is applied (post-image files)
    base_ref: str | None = None
    base_commit: str | None = None  # sha the series was applied on
    applied: bool = False  # every present patch applied
    patch_commits: dict[int, str] = field(default_factory=dict)  # index -> commit sha
    outcomes: dict[str, StageOutcome] = field(default_factory=dict)
    release: list[Callable[[], None]] = field(default_factory=list)  # cleanup (locks)


@dataclass
class SeriesReview:
    """What one review found: the series and each stage's outcome, in stage order."""

    series: Series
    state: ReviewState
    outcomes: list[StageOutcome]

    @property
    def findings(self) -> list[Finding]:
        return [f for o in self.outcomes for f in o.findings]

    def outcome(self, name: str) -> StageOutcome | None:
        return next((o for o in self.outcomes if o.name == name), None)

    @property
    def apply(self) -> ApplyResult | None:
        found = [o.result for o in self.outcomes if isinstance(o.result, ApplyResult)]
        return found[0] if found else None

    @property
    def rules(self) -> RulesResult | None:
        found = [o.result for o in self.outcomes if isinstance(o.result, RulesResult)]
        return found[0] if found else None

    @property
    def boot(self) -> BootResult | None:
        found = [o.result for o in self.outcomes if isinstance(o.result, BootResult)]
        return found[0] if found else None

    @property
    def exit_code(self) -> int:
        """3 when a stage could not do its job (the base kernel does not build, a stage
        crashed); else 1 when something needs a human: findings at warning+, no apply,
        regressions; else 0."""
        if any(o.status == "error" for o in self.outcomes):
            return EXIT_INFRA
        if any(f.severity in ("error", "warning") and not f.preexisting for f in self.findings):
            return EXIT_FINDINGS
        if any(o.status == "fail" for o in self.outcomes):
            return EXIT_FINDINGS
        return EXIT_OK
