"""Meta-tests: the rule set itself is well-formed and every rule is exercised."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from reviewbot.engine.fixtures import FIXTURE_NAME, discover, linux_source
from reviewbot.engine.loader import Rule, load_rule
from reviewbot.engine.schema import validate

RULES_DIR = Path(__file__).resolve().parent.parent.parent / "rules"

RULE_FILES = sorted(RULES_DIR.glob("*.yaml"))


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.stem for p in RULE_FILES])
def test_rule_validates_and_id_is_file_name(path: Path) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert validate(data) == []
    assert data["id"] == path.stem
    assert load_rule(path).id == path.stem


@pytest.mark.parametrize("path", RULE_FILES, ids=[p.stem for p in RULE_FILES])
def test_rule_has_bad_and_ok_fixture(path: Path) -> None:
    folder = RULES_DIR / "tests" / path.stem
    kinds = Counter(
        m.group("kind") for p in folder.glob("*.patch") if (m := FIXTURE_NAME.match(p.name))
    )
    assert kinds["bad"] >= 1, f"{path.stem}: no bad-NN-*.patch fixture"
    assert kinds["ok"] >= 1, f"{path.stem}: no ok-NN-*.patch fixture"


def test_no_orphan_or_misnamed_fixtures() -> None:
    _, problems = discover(RULES_DIR)
    assert problems == []
    stray = [p for p in (RULES_DIR / "tests").rglob("*") if p.is_file() and p.suffix != ".patch"]
    assert stray == []


def test_every_rule_cites_a_reference_with_a_where(rules_by_id: dict[str, Rule]) -> None:
    for rule in rules_by_id.values():
        assert rule.references, rule.id
        assert all(ref["where"].strip() for ref in rule.references), rule.id


def test_issue_rules_1_to_13_are_all_present(rules_by_id: dict[str, Rule]) -> None:
    numbers = {r.issue_rule for r in rules_by_id.values() if r.issue_rule}
    assert numbers >= set(range(1, 14))


def test_cocci_files_belong_to_a_rule() -> None:
    for cocci in RULES_DIR.glob("*.cocci"):
        assert (RULES_DIR / f"{cocci.stem}.yaml").is_file(), f"{cocci.name} has no rule"


SOURCE_REF = re.compile(r"^(?P<path>[\w./-]+\.[ch]):(?P<line>\d+)$")


@pytest.mark.skipif(linux_source() is None, reason="needs the Linux 6.1 source (REVIEWBOT_LINUX_SRC)")
def test_source_references_point_into_linux_61(rules_by_id: dict[str, Rule]) -> None:
    linux = linux_source()
    assert linux is not None
    for rule in rules_by_id.values():
        for ref in rule.references:
            m = SOURCE_REF.match(ref["where"].strip())
            if ref["kind"] != "source" or m is None:
                continue
            lines = (linux / m.group("path")).read_text(errors="replace").splitlines()
            line = lines[int(m.group("line")) - 1]
            # The cited line names something the reference talks about.
            words = set(re.findall(r"\w+", ref["what"]))
            assert words & set(re.findall(r"\w+", line)), f"{rule.id}: {ref['where']}: {line!r}"
