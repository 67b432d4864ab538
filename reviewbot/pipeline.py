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
from reviewbot.engine.stage import bounded_rules_stage
from reviewbot.errors import ReviewbotError
from reviewbot.model import Series
from reviewbot.results import (
    STATUSES,
    ReviewOptions,
    ReviewState,
    SeriesReview,
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
    Stage("rules", bounded_rules_stage, None),
    Stage("boot", boot_stage, "apply"),
)


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
