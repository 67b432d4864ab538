"""Fixtures of the scan tests: a real public-inbox inbox and a reviewer we control."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scanfixtures import Inbox, make_inbox

from reviewbot.model import Finding, Series
from reviewbot.pipeline import ReviewState, SeriesReview, StageOutcome


@pytest.fixture
def inbox(tmp_path: Path) -> Inbox:
    return make_inbox(tmp_path)


def token_reviewer(tokens: dict[str, str],
                   seen: list[str] | None = None) -> Callable[[Series], SeriesReview]:
    """A reviewer that flags every added line containing one of TOKENS (token -> rule).

    It stands in for the rules engine where a test must control exactly which findings
    exist (to pin down "new" and "disappeared"); ``seen`` records reviewed series ids.
    """

    def review(series: Series) -> SeriesReview:
        if seen is not None:
            seen.append(series.series_id)
        findings = []
        for patch in series.patches:
            file, line, function = "", 0, None
            for text in (patch.message.diff or "").splitlines():
                if text.startswith("+++ b/"):
                    file = text[6:]
                elif text.startswith("@@"):
                    line = int(text.split("+", 1)[1].split(",")[0]) - 1
                    function = text.rsplit("@@", 1)[-1].strip().split("(")[0].split()[-1]
                elif text.startswith((" ", "+")):
                    line += 1
                    for token, rule in tokens.items():
                        if text.startswith("+") and token in text:
                            fp = hashlib.sha256(
                                f"{rule}|{file}|{function}|{text.strip()}".encode()
                            ).hexdigest()[:16]
                            findings.append(Finding(
                                rule=rule, severity="warning", confidence="high", file=file,
                                line=line, function=function, message=f"{token} flagged",
                                fingerprint=fp, evidence=(text[1:],),
                                patch_index=patch.index))
        outcome = StageOutcome("rules", "success", findings=findings)
        return SeriesReview(series, ReviewState(), [outcome])

    return review
