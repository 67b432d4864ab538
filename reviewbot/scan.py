"""Nightly corpus scan (work in progress; the signature is the contract)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviewbot.config import Settings
from reviewbot.pipeline import ReviewOptions


@dataclass
class ScanReport:
    source: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 0


def run_scan(
    source: str | Path,
    settings: Settings,
    *,
    since: str | None = None,
    full: bool = False,
    options: ReviewOptions | None = None,
    progress: Any = None,
    state_dir: Path | None = None,
) -> ScanReport:
    """Scan SOURCE incrementally, review new series (rules only) and diff with last scan."""
    raise NotImplementedError("run_scan arrives shortly")
