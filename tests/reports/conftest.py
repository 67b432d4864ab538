"""Fixtures of the report tests (mail and helpers in reportfixtures.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reportfixtures import fixture_series

from reviewbot.model import Series


@pytest.fixture
def series() -> Series:
    return fixture_series()
