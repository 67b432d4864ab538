"""The pipeline turns stage outcomes into results and exit codes, never exceptions."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewbot import pipeline
from reviewbot.config import Settings
from reviewbot.mail import read_series
from reviewbot.model import Finding
from reviewbot.pipeline import ReviewOptions, StageOutcome, review_series


def _series(mail_data: Path):  # type: ignore[no-untyped-def]
    return read_series([mail_data / "plain.eml"], Settings()).series[0]


def _finding(severity: str, preexisting: bool = False) -> Finding:
    return Finding("r", severity, "high", "f.c", 1, "f", "m", "fp", preexisting=preexisting)


@pytest.mark.parametrize(
    ("outcomes", "code"),
    [
        ([StageOutcome("rules", "success")], 0),
        ([StageOutcome("rules", "success", findings=[_finding("info")])], 0),
        ([StageOutcome("rules", "warning", findings=[_finding("warning")])], 1),
        ([StageOutcome("rules", "success", findings=[_finding("error", preexisting=True)])], 0),
        ([StageOutcome("apply", "fail", "does not apply")], 1),
        ([StageOutcome("boot", "error", "base kernel does not build")], 3),
    ],
)
def test_exit_code_from_outcomes(mail_data: Path, outcomes: list[StageOutcome], code: int) -> None:
    review = pipeline.SeriesReview(_series(mail_data), pipeline.ReviewState(), outcomes)
    assert review.exit_code == code


def test_crashing_stage_becomes_an_error_outcome(
    mail_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object) -> StageOutcome:
        raise RuntimeError("bug in a stage")

    monkeypatch.setattr(pipeline, "STAGES", tuple(pipeline.Stage(s.name, boom, s.needs)
                                                  for s in pipeline.STAGES))
    review = review_series(_series(mail_data), Settings(), ReviewOptions(use_tree=False))
    rules = review.outcome("rules")
    assert rules is not None and rules.status == "error" and "bug in a stage" in rules.reason
    assert review.outcome("apply").status == "skipped"  # type: ignore[union-attr]
    assert review.outcome("boot").reason == "not requested (use --boot)"  # type: ignore[union-attr]
    assert review.exit_code == 3


def test_boot_is_skipped_when_apply_failed(mail_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake(name: str):  # type: ignore[no-untyped-def]
        def stage(series, state, settings, options):  # type: ignore[no-untyped-def]
            calls.append(name)
            return StageOutcome(name, "fail" if name == "apply" else "success")
        return stage

    monkeypatch.setattr(pipeline, "STAGES", tuple(pipeline.Stage(s.name, fake(s.name), s.needs)
                                                  for s in pipeline.STAGES))
    review = review_series(_series(mail_data), Settings(), ReviewOptions(boot=True))
    assert calls == ["apply", "rules"]
    assert review.outcome("boot").reason == "apply stage did not succeed"  # type: ignore[union-attr]
