"""Shared fixtures. Tests that need ../shared skip with a clear message when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def shared_dir() -> Path:
    if not (SHARED / "corpus").is_dir():
        pytest.skip(f"{SHARED} is absent: the real-mail corpus is only on development machines")
    return SHARED


@pytest.fixture
def mail_data() -> Path:
    return DATA / "mail"


@pytest.fixture(autouse=True)
def _isolated_xdg(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep state and caches of unit tests out of the user's home (slow tests override)."""
    base = tmp_path_factory.mktemp("xdg")
    monkeypatch.setenv("XDG_STATE_HOME", str(base / "state"))
    monkeypatch.setenv("REVIEWBOT_TEST", "1")
    # No test completes a series from lore by accident (tests/mail/test_complete.py serves
    # its own archive on loopback and turns this off).
    monkeypatch.setenv("REVIEWBOT_OFFLINE", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The kernel builds and QEMU boots (slow tests of tests/boot) run last, in their own
    order: a quick failure shows within minutes, and the quick tests, mostly one core, run
    while .ci/run's background warm-up builds the debug kernel on the other."""
    boot = Path(__file__).resolve().parent / "boot"

    def heavy(item: pytest.Item) -> bool:
        return item.get_closest_marker("slow") is not None and boot in Path(str(item.path)).parents

    items[:] = [i for i in items if not heavy(i)] + [i for i in items if heavy(i)]
