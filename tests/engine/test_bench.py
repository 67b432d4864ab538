"""bench/eval.py on the real corpus: the issue's targets must hold (needs ../shared)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "real"

pytestmark = [
    pytest.mark.shared,
    pytest.mark.skipif(not (CORPUS / "INDEX.tsv").is_file(),
                       reason=f"real corpus not found at {CORPUS} (../shared absent)"),
]


def test_eval_meets_the_targets_on_the_real_corpus() -> None:
    out = subprocess.run([sys.executable, str(REPO / "bench" / "eval.py"), "--set", "real", "--json", "--no-mbox", str(CORPUS)],
                         capture_output=True, text=True, check=True, cwd=REPO)
    summary = json.loads(out.stdout)["summary"]
    assert summary["risky_flagged_right_reason"] >= 6, summary
    assert summary["clean_flagged_warning_plus"] <= 1, summary


def test_eval_skips_clearly_without_a_corpus(tmp_path: Path) -> None:
    for chosen in ("real", "fixes"):
        out = subprocess.run([sys.executable, str(REPO / "bench" / "eval.py"), "--set", chosen, str(tmp_path)],
                             capture_output=True, text=True, check=True, cwd=REPO)
        assert "corpus not found" in out.stdout and "skipped" in out.stdout
