from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from reviewbot.config import Settings, expand_path, load_settings, settings_from_mapping
from reviewbot.errors import ConfigError

REPO = Path(__file__).resolve().parent.parent


def test_config_yaml_mirrors_the_defaults() -> None:
    loaded = load_settings(str(REPO / "config.yaml"))
    defaults = Settings()
    for f in dataclasses.fields(Settings):
        if f.name != "source":
            assert getattr(loaded, f.name) == getattr(defaults, f.name), f.name


def test_every_key_in_config_yaml_is_documented() -> None:
    undocumented = [
        line.strip()
        for line in (REPO / "config.yaml").read_text().splitlines()
        if re.match(r"^  [a-z_]+:", line) and "#" not in line
    ]
    assert undocumented == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"nope": {}}, "unknown section 'nope'"),
        ({"mail": {"max_message_bytes": "big"}}, "mail.max_message_bytes must be int"),
        ({"tree": {"bases": "main"}}, "tree.bases must be a list"),
        ({"vm": {"memory_mb": True}}, "vm.memory_mb must be int"),
        ({"mail": []}, "section 'mail' must be a mapping"),
    ],
)
def test_readable_config_errors(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_mapping(raw)


def test_paths_expand_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert expand_path("{state}/db") == tmp_path / "reviewbot" / "db"


def test_yaml_syntax_error_names_file(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_text("mail: [\n")
    with pytest.raises(ConfigError, match="c.yaml: not valid YAML"):
        load_settings(str(bad))
