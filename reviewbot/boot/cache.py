"""Base-kernel results, cached per (base commit, kernel config, guest inputs).

A directory per key holds result.json and the console log of every base run; the logs are
parsed again on load, so a parser improvement applies to cached results too. Delete the
directory (or change a fragment, the charge tests or the init script) to rerun the base.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reviewbot.boot.console import ConsoleReport, parse_console
from reviewbot.config import Settings

FORMAT = 1


@dataclass(frozen=True)
class BaseRun:
    accel: str
    status: str
    seconds: float
    console: Path

    def report(self) -> ConsoleReport:
        return parse_console(self.console.read_text(encoding="utf-8", errors="replace"))


@dataclass(frozen=True)
class BaseResult:
    key: str
    build: dict[str, Any]  # status, seconds, warnings (list of dicts)
    runs: tuple[BaseRun, ...]

    def reports(self) -> list[ConsoleReport]:
        return [r.report() for r in self.runs]


def cache_dir(settings: Settings, key: str) -> Path:
    return Path(settings.path("{cache}")) / "boot" / "base-results" / key


def load(settings: Settings, key: str) -> BaseResult | None:
    folder = cache_dir(settings, key)
    try:
        data = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("format") != FORMAT:
        return None
    runs = tuple(
        BaseRun(r["accel"], r["status"], float(r["seconds"]), folder / r["console"]) for r in data["runs"]
    )
    if not runs or not all(r.console.is_file() for r in runs):
        return None
    return BaseResult(key, data["build"], runs)


def save(settings: Settings, key: str, build: dict[str, Any], runs: list[tuple[str, str, float, Path]]) -> BaseResult:
    """Store the base build summary and copies of the console logs; returns the cached form."""
    folder = cache_dir(settings, key)
    folder.mkdir(parents=True, exist_ok=True)
    stored = []
    for index, (accel, status, seconds, console) in enumerate(runs, start=1):
        name = f"console-{index}.log"
        shutil.copyfile(console, folder / name)
        stored.append({"accel": accel, "status": status, "seconds": round(seconds, 2), "console": name})
    tmp = folder / "result.json.tmp"
    tmp.write_text(json.dumps({"format": FORMAT, "build": build, "runs": stored}, indent=1), encoding="utf-8")
    tmp.replace(folder / "result.json")
    result = load(settings, key)
    assert result is not None
    return result
