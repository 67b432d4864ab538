"""Every fixture of every rule, discovered: bad must fire, ok must stay silent, todo is a
strict expected failure (it starts passing -> rename it to bad-)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewbot.config import Settings
from reviewbot.engine.fixtures import discover, linux_source, run_fixture
from reviewbot.engine.loader import Rule

RULES_DIR = Path(__file__).resolve().parent.parent.parent / "rules"

FIXTURES, PROBLEMS = discover(RULES_DIR)


def _params() -> list[object]:
    out: list[object] = []
    for fx in FIXTURES:
        marks = []
        if fx.kind == "todo":
            marks.append(pytest.mark.xfail(strict=True, reason="known gap (todo fixture)"))
        out.append(pytest.param(fx, id=f"{fx.rule}/{fx.name}", marks=marks))
    return out


@pytest.mark.parametrize("fixture", _params())
def test_fixture(fixture, rules_by_id: dict[str, Rule]) -> None:  # type: ignore[no-untyped-def]
    rule = rules_by_id[fixture.rule]
    result = run_fixture(rule, fixture, Settings(), linux=linux_source())
    if result.skipped:
        pytest.skip(result.skipped)
    shown = [f"{f.severity} {f.file}:{f.line} {f.message}" for f in result.findings]
    if fixture.kind == "ok":
        assert result.passed, f"rule fired on an ok fixture: {shown}"
    else:  # bad, and todo (which must fail today)
        assert result.passed, f"rule did not fire on {fixture.name}; notices: {result.notices}"


# Each fixture again in the other ways a patch is read, with the verdict it names: "tree"
# (whole functions from a real git tree: fixtures read from hunks alone), and "base" (the
# way list mail that did not apply is read: its hunks placed on the nearest base's files,
# with that base's facts, engine/rebuild.py; whole-file context, callers, ops members and
# kerneldoc, included: every fixture).
OTHER_MODES = [pytest.param(fx, mode, id=f"{mode}:{fx.rule}/{fx.name}")
               for mode in ("tree", "base") for fx in FIXTURES
               if fx.kind != "todo" and (mode == "base" or not fx.needs_tree)]


@pytest.mark.skipif(linux_source() is None, reason="needs the Linux 6.1 source (REVIEWBOT_LINUX_SRC)")
@pytest.mark.parametrize(("fixture", "mode"), OTHER_MODES)
def test_fixture_same_verdict_read_otherwise(fixture, mode: str, rules_by_id: dict[str, Rule]) -> None:  # type: ignore[no-untyped-def]
    """Series-scope rules grep the whole tree in tree mode, so their ok fixtures may
    legitimately see more there."""
    rule = rules_by_id[fixture.rule]
    if rule.scope == "series" and fixture.kind == "ok":
        pytest.skip("series-scope rules search the whole tree in tree mode")
    result = run_fixture(rule, fixture, Settings(), linux=linux_source(),
                         tree=mode == "tree", on_base=mode == "base")
    if result.skipped:
        pytest.skip(result.skipped)
    assert result.mode == mode
    assert result.passed, [f"{f.severity} {f.line} {f.message}" for f in result.findings]
