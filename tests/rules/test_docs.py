"""docs/rules.md's generated list must match the rule files."""

from __future__ import annotations

from pathlib import Path

from reviewbot.engine.docs import BEGIN, END, explain, update_rules_md
from reviewbot.engine.loader import Rule, load_rules

REPO = Path(__file__).resolve().parent.parent.parent


def test_rules_md_is_up_to_date() -> None:
    rules = load_rules(REPO / "rules")
    target = REPO / "docs" / "rules.md"
    current = target.read_text(encoding="utf-8")
    assert BEGIN in current and END in current
    assert update_rules_md(target, rules, REPO / "rules") == current, (
        "docs/rules.md is stale: run `reviewbot rules docs`"
    )


def test_every_rule_is_documented_with_its_false_positives(rules_by_id: dict[str, Rule]) -> None:
    text = (REPO / "docs" / "rules.md").read_text(encoding="utf-8")
    for rule in rules_by_id.values():
        assert f"### {rule.id}" in text
        assert "Known false positives" in explain(rule)
