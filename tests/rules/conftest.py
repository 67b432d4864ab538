"""Shared fixtures for the rule suite: the shipped rules, loaded once."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewbot.engine.loader import Rule, load_rules

RULES_DIR = Path(__file__).resolve().parent.parent.parent / "rules"


@pytest.fixture(scope="session")
def rules_by_id() -> dict[str, Rule]:
    return {r.id: r for r in load_rules(RULES_DIR)}
