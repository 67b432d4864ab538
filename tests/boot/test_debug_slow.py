"""The debug build profile in CI (slow): the mutants only a debug kernel sees are caught.

tests/data/mutants-debug holds a use-after-free of a css (07) and an RCU dereference outside
the read lock (08): the charge tests do not reliably notice either, lockdep/PROVE_RCU, KASAN,
debug objects and the percpu_ref checks of the debug kernel do. A full debug review costs
11 min of cold build plus 6 min per base run and 4-7 min per series on TCG (docs/boot.md,
"Build profiles"), so CI runs the debug profile the way a CI operator would size it: the
base once (`vm.suite_repeats: 1`) and only the memcg charge tests (`vm.selftests: []`: the
kernel's test_kmem alone takes 165 s under KASAN). A base cached with two runs by a full
debug review is reused; a one-run base is never the baseline of a full review
(stage.ensure_base). bench/mutants.py runs the same mutants with the full suite, 3 runs each.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from reviewbot.boot.stage import EXPECTED, run_boot
from reviewbot.config import Settings, load_settings
from reviewbot.pipeline import ReviewOptions, review_series

pytestmark = pytest.mark.slow

MUTANTS = Path(__file__).resolve().parents[1] / "data" / "mutants-debug"


CI_CONFIG = Path(__file__).resolve().with_name("debug-ci.yaml")  # also read by .ci/run


def _settings() -> Settings:
    settings = load_settings(str(CI_CONFIG))
    assert settings.build.profile == "debug" and settings.vm.suite_repeats == 1, CI_CONFIG
    assert settings.vm.selftests == (), CI_CONFIG
    return settings


def _tree(settings: Settings) -> tuple[Path, str]:
    from reviewbot.tree.bases import resolve
    from reviewbot.tree.repo import open_tree

    path = Path(settings.path(settings.tree.path))
    if not (path / ".git").exists():
        pytest.skip(f"no kernel tree at {path}: run `reviewbot tree init`")
    for tool in ("bwrap", "gcc", settings.vm.qemu):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not installed")
    sha, message = resolve(path, open_tree(path).default_base or "HEAD")
    assert sha, message
    return path, sha


def test_debug_base_passes_the_charge_tests_without_a_splat() -> None:
    settings = _settings()
    repo, base = _tree(settings)
    report = run_boot(settings, repo, base, None)
    data = report.result.to_json()
    assert data["build"]["profile"]["name"] == "debug", data["build"]
    tests = {t["name"]: t for t in data["tests"]}
    for name in EXPECTED:
        assert tests[name]["base"] == "pass", (name, tests[name])
    assert not any(name.startswith("test_") for name in tests), sorted(tests)  # no selftests
    # kmemleak reports the base's own early-boot objects (docs/boot.md); no lockdep, KASAN,
    # RCU, debug-objects or WARN splat on the base kernel
    splats = [s for s in data["boot"]["base"].get("splats", []) if s["kind"] != "kmemleak"]
    assert not splats, splats


def _review(patch: Path) -> tuple[dict[str, Any], list[str]]:
    from reviewbot.mail import read_series

    settings = _settings()
    _tree(settings)
    found = read_series([patch], settings)
    assert len(found.series) == 1, found.errors
    review = review_series(found.series[0], settings, ReviewOptions(boot=True))
    boot = review.outcome("boot")
    assert boot is not None, review.outcomes
    assert boot.status == "fail", (boot.status, boot.reason)
    data = boot.json()
    assert data["build"]["profile"]["name"] == "debug", data["build"]
    return data, [f"{f.rule}: {f.message}" for f in review.findings if f.category == "boot"]


def test_rcu_dereference_outside_the_read_lock_is_reported_by_prove_rcu() -> None:
    data, findings = _review(MUTANTS / "08-rcu-deref-outside-lock.patch")
    new = data["boot"]["splats_new"]
    assert any("suspicious RCU usage" in s["title"] for s in new), new
    assert any(f.startswith("boot-splat:") and "suspicious RCU usage" in f for f in findings), findings


def test_css_use_after_free_is_reported_by_the_debug_kernel() -> None:
    data, findings = _review(MUTANTS / "07-css-use-after-free.patch")
    # the percpu_ref underflow WARNING, debug objects, KASAN or an oops: whichever comes first
    # in this run; the charge tests that remove cgroups may also stop (the oops panics)
    new = [s for s in data["boot"]["splats_new"] if s["kind"] != "kmemleak"]
    assert new or any(f.startswith("boot-test-regression:") for f in findings), (data, findings)
    assert any(f.startswith("boot-splat:") for f in findings) or not new, findings
