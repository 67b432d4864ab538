"""A short run of bench/fuzz.py (issue 12): mutated mail never escapes as an exception or
hangs, whatever it holds. Deterministic (fixed seed and case numbers), so a failure names a
case that ``python bench/fuzz.py --case N --seed S`` reruns with its traceback.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "mail"
# Cases per test; "huge" mutations at a tenth of their size (bench/fuzz.py --scale 0.1):
# the same parsers and limits, 2 x 2000 cases in under half a minute on 2 cores.
COUNT = 2000


def load_fuzz() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_fuzz", REPO / "bench" / "fuzz.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_fuzz"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


fuzz = load_fuzz()


def failures(summary) -> str:  # type: ignore[no-untyped-def]
    lines = [f"{len(v)} x {sig}: case {v[0].index} {v[0].mutations} {v[0].detail}"
             for sig, v in summary.crashes.items()]
    lines += [f"hang: case {o.index} {o.mutations} {o.seconds:.1f} s" for o in summary.hangs]
    return "\n".join(lines)


def test_fuzz_project_fixtures() -> None:
    """The project's own mail fixtures as seeds: runs everywhere, CI included."""
    seeds = fuzz.Seeds.load(sorted(DATA.glob("*.eml")) + sorted(DATA.glob("*.mbox*")))
    summary = fuzz.run_many(seeds, seed=12, count=COUNT, jobs=2, timeout=10.0, mem_mib=2048,
                             scale=0.1)
    assert summary.cases == COUNT
    assert not summary.crashes and not summary.hangs, failures(summary)


@pytest.mark.shared
def test_fuzz_real_list_mail(shared_dir: Path) -> None:
    """A year of the cgroups list as seeds (skipped without ../shared)."""
    seeds = fuzz.Seeds.load([shared_dir / "corpus" / "cgroups-2020.mbox.gz"])
    summary = fuzz.run_many(seeds, seed=12, count=COUNT, jobs=2, timeout=10.0, mem_mib=2048,
                             scale=0.1)
    assert summary.cases == COUNT
    assert not summary.crashes and not summary.hangs, failures(summary)
