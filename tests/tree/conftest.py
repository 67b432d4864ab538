"""Fixtures of the tree tests; the helpers live in treehelp.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from treehelp import settings_for, sh, write_source

from reviewbot.config import Settings
from reviewbot.progress import Progress
from reviewbot.tree.repo import init_from_tarball


@pytest.fixture(scope="session")
def kernel_tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("tarball")
    write_source(base / "linux-source-6.1")
    out = base / "linux-source-6.1.tar.xz"
    sh(["tar", "-cJf", str(out), "linux-source-6.1"], base)
    return out


@pytest.fixture()
def kernel_tree(tmp_path: Path, kernel_tarball: Path) -> Path:
    tree, created = init_from_tarball(kernel_tarball, tmp_path / "linux",
                                      Progress(heartbeat_s=3600))
    assert created
    return tree.path


@pytest.fixture()
def settings(tmp_path: Path, kernel_tree: Path) -> Settings:
    return settings_for(tmp_path, kernel_tree)
