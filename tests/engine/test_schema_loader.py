"""Rule files: readable schema errors, id == file name, references required."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from reviewbot.engine.loader import load_rule, load_rules
from reviewbot.errors import BadInputError

REPO = Path(__file__).resolve().parent.parent.parent
GOOD = yaml.safe_load((REPO / "rules" / "leader-assumption.yaml").read_text())


def write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def problems(tmp_path: Path, data: dict[str, object], name: str = "leader-assumption") -> str:
    with pytest.raises(BadInputError) as info:
        load_rule(write(tmp_path, name, data))
    return info.value.detail


def test_good_rule_loads(tmp_path: Path) -> None:
    rule = load_rule(write(tmp_path, "leader-assumption", GOOD))
    assert rule.engine == "pattern" and rule.applies_to("mm/memcontrol.c")
    assert not rule.applies_to("drivers/net/x.c")


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    detail = problems(tmp_path, {**GOOD, "sevrity": "warning"})
    assert "unknown key 'sevrity' (did you mean 'severity'?)" in detail


def test_wrong_type_and_bad_choice_and_bad_regex(tmp_path: Path) -> None:
    data = {**GOOD, "severity": "fatal", "pattern": {**GOOD["pattern"], "match": "(", "moved-is-preexisting": "yes"}}
    detail = problems(tmp_path, data)
    assert "severity: 'fatal' is not one of error, warning, info" in detail
    assert "pattern.match: invalid regular expression" in detail
    assert "pattern.moved-is-preexisting: expected boolean" in detail


def test_missing_references_and_bad_reference_where(tmp_path: Path) -> None:
    data = dict(GOOD)
    del data["references"]
    assert "references: missing required key" in problems(tmp_path, data)
    data = {**GOOD, "references": []}
    assert "references: needs at least 1 entries" in problems(tmp_path, data)
    data = {**GOOD, "references": [{"kind": "review", "what": "x", "where": "somewhere"}]}
    assert "is not a URL, commit id, Message-ID, or source path" in problems(tmp_path, data)


def test_id_must_equal_file_name_and_engine_section_must_exist(tmp_path: Path) -> None:
    assert "must equal the file name 'other'" in problems(tmp_path, GOOD, name="other")
    data = {**GOOD, "engine": "refcount"}
    detail = problems(tmp_path, data)
    assert "engine 'refcount' needs a 'refcount:' section" in detail
    assert "section for engine 'pattern'" in detail


def test_cocci_file_must_exist(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "rules" / "css-get-maybe-null.yaml").read_text())
    assert "does not exist beside the rule" in problems(tmp_path, data, name="css-get-maybe-null")


def test_error_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(BadInputError) as info:
        load_rule(write(tmp_path, "leader-assumption", {**GOOD, "x": 1}))
    assert str(tmp_path / "leader-assumption.yaml") in str(info.value)
    assert info.value.exit_code == 2


def test_load_rules_only_and_unknown_id(tmp_path: Path) -> None:
    write(tmp_path, "leader-assumption", GOOD)
    assert [r.id for r in load_rules(tmp_path, only="leader-assumption")] == ["leader-assumption"]
    with pytest.raises(BadInputError, match="no rule with id 'nope'"):
        load_rules(tmp_path, only="nope")
    with pytest.raises(BadInputError, match="does not exist"):
        load_rules(tmp_path / "missing")
