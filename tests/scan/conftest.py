"""Fixtures of the scan tests: a real public-inbox inbox (helpers in scanfixtures.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scanfixtures import Inbox, make_inbox


@pytest.fixture
def inbox(tmp_path: Path) -> Inbox:
    return make_inbox(tmp_path)
