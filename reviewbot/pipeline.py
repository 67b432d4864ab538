"""Runs the stages for one series; the CLI, the worker and the scan all call this.

A stage is a function ``stage(series, state, settings, options) -> StageOutcome``. Stages run
in :data:`STAGES` order; a stage whose module is not importable, or that is disabled by the
options, is recorded as skipped with the reason. A failed stage is a result, never an
exception: stages that depend on it are skipped with the reason. Adding a stage means adding
one entry here and one module; the service never changes.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviewbot.config import Settings
from reviewbot.errors import EXIT_FINDINGS, EXIT_INFRA, EXIT_OK, ReviewbotError
from reviewbot.model import Finding, Series

log = logging.getLogger(__name__)

# Status map shared by every stage and report (style: one map; unknown -> fail).
STATUSES = ("success", "warning", "fail", "skipped", "error")


@dataclass(frozen=True)
class ReviewOptions:
    tree: Path | None = None  # kernel tree; None with use_tree=False means --no-tree
    use_tree: bool = True
    base: str | None = None  # --base REF
    boot: bool = False  # --boot: build, boot and run the charge tests
    rules_dir: Path | None = None  # --rules DIR


@dataclass
class StageOutcome:
    """What one stage produced. ``data`` is JSON-ready and lands in the report as-is."""

    name: str
    status: str  # one of STATUSES
    reason: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0


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


StageFn = Callable[[Series, ReviewState, Settings, ReviewOptions], StageOutcome]

# name, module, function, and the stage whose failure makes this one pointless.
STAGES: tuple[tuple[str, str, str, str | None], ...] = (
    ("apply", "reviewbot.tree.stage", "apply_stage", None),
    ("rules", "reviewbot.engine.stage", "rules_stage", None),
    ("boot", "reviewbot.boot.stage", "boot_stage", "apply"),
)


@dataclass
class SeriesReview:
    series: Series
    state: ReviewState
    outcomes: list[StageOutcome]

    @property
    def findings(self) -> list[Finding]:
        return [f for o in self.outcomes for f in o.findings]

    def outcome(self, name: str) -> StageOutcome | None:
        return next((o for o in self.outcomes if o.name == name), None)

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


def _load_stage(module: str, func: str) -> StageFn | None:
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return None
        raise
    stage: StageFn = getattr(mod, func)
    return stage


def _enabled(name: str, options: ReviewOptions) -> str | None:
    """Return the reason a stage is off, or None when it runs."""
    if name == "apply" and not options.use_tree:
        return "--no-tree"
    if name == "boot" and not options.boot:
        return "not requested (use --boot)"
    return None


def review_series(series: Series, settings: Settings, options: ReviewOptions) -> SeriesReview:
    """Run every stage on one series and return what each produced."""
    state = ReviewState()
    outcomes: list[StageOutcome] = []
    try:
        for name, module, func, needs in STAGES:
            off = _enabled(name, options)
            failed = needs in state.outcomes and state.outcomes[needs].status in ("fail", "error")
            if off is None and needs and failed:
                off = f"{needs} stage did not succeed"
            if off is None and needs and needs not in state.outcomes:
                off = f"needs the {needs} stage"
            stage = _load_stage(module, func) if off is None else None
            if off is None and stage is None:
                off = f"{module} is not available"
            if off is not None or stage is None:
                outcome = StageOutcome(name, "skipped", off or "")
            else:
                start = time.monotonic()
                try:
                    outcome = stage(series, state, settings, options)
                except ReviewbotError:
                    # Infrastructure errors end the whole review (exit 3); a stage that
                    # merely failed returns a "fail" outcome instead of raising.
                    raise
                except Exception as exc:
                    log.exception("stage %s crashed", name)
                    outcome = StageOutcome(name, "error", f"internal error: {exc!r}")
                outcome.seconds = round(time.monotonic() - start, 3)
            state.outcomes[name] = outcome
            outcomes.append(outcome)
    finally:
        for release in reversed(state.release):
            release()
    return SeriesReview(series, state, outcomes)
