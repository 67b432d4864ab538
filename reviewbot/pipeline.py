"""Runs the stages for one series; the CLI, the worker and the scan all call this.

A stage is a function ``stage(series, state, settings, options) -> StageOutcome`` that
returns its own typed result (reviewbot/results.py). Stages run in :data:`STAGES` order; a
stage that the options turn off is recorded as skipped with the reason. A failed stage is a
result, never an exception: stages that depend on it are skipped with the reason. Adding a
stage means one entry here, one function and one result type; the service never changes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from reviewbot.boot.stage import boot_stage
from reviewbot.config import Settings
from reviewbot.engine.stage import rules_stage
from reviewbot.errors import EXIT_FINDINGS, EXIT_INFRA, EXIT_OK, ReviewbotError
from reviewbot.model import Finding, Series
from reviewbot.results import (
    STATUSES,
    ApplyResult,
    BootResult,
    ReviewOptions,
    ReviewState,
    RulesResult,
    StageOutcome,
)
from reviewbot.tree.stage import apply_stage

__all__ = ["STATUSES", "ReviewOptions", "ReviewState", "SeriesReview", "StageOutcome",
           "review_series"]

log = logging.getLogger(__name__)

StageFn = Callable[[Series, ReviewState, Settings, ReviewOptions], StageOutcome]


@dataclass(frozen=True)
class Stage:
    name: str
    run: StageFn
    needs: str | None  # the stage whose failure makes this one pointless


STAGES: tuple[Stage, ...] = (
    Stage("apply", apply_stage, None),
    Stage("rules", rules_stage, None),
    Stage("boot", boot_stage, "apply"),
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
        for stage in STAGES:
            name, needs = stage.name, stage.needs
            off = _enabled(name, options)
            failed = needs in state.outcomes and state.outcomes[needs].status in ("fail", "error")
            if off is None and needs and failed:
                off = f"{needs} stage did not succeed"
            if off is None and needs and needs not in state.outcomes:
                off = f"needs the {needs} stage"
            if off is not None:
                outcome = StageOutcome(name, "skipped", off or "")
            else:
                start = time.monotonic()
                try:
                    outcome = stage.run(series, state, settings, options)
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
