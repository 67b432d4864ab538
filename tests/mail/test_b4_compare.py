"""reviewbot assembles the same series as b4 am on a real list year (needs ../shared, b4)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_compare():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("b4_compare", REPO / "bench" / "b4_compare.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_same_patches_and_trailers_as_b4(shared_dir: Path) -> None:
    compare = _load_compare()
    if compare.b4_executable() is None:
        pytest.skip("b4 is not installed (pip install b4==0.16.*)")
    report = compare.compare(shared_dir / "corpus" / "cgroups-2020.mbox.gz", jobs=2)
    documented = set(re.findall(r"`([^`\s]+@[^`\s]+)`", (REPO / "docs" / "b4-comparison.md").read_text()))
    different = {o.series.rsplit("<", 1)[1].rstrip(">") for o in report.outcomes if o.status == "different"}
    undocumented = different - documented
    assert not undocumented, "\n".join(
        o.series + "\n" + o.detail for o in report.outcomes
        if o.status == "different" and o.series.rsplit("<", 1)[1].rstrip(">") in undocumented
    )
    accepted = report.count("same") + report.count("different")
    assert accepted >= 280
    assert report.count("same") / accepted >= 0.95
