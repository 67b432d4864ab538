"""bench/stable.py on a real two-base tree: backports counted by target, the stable base
tried first when the tree has it, the normal order when it does not."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from test_bases import (  # noqa: F401 - fixtures, found by pytest through this import
    NEW,
    _doc_backport,
    newer_tarball,
    two_bases,
)
from treehelp import TAG


def _bench(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    path = Path(__file__).resolve().parents[2] / "bench" / "stable.py"
    spec = importlib.util.spec_from_file_location("bench_stable", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_stable", bench)
    spec.loader.exec_module(bench)
    return bench


def test_bench_stable_counts_backports_and_the_base_each_is_reviewed_on(
        two_bases: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("REVIEWBOT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    mboxes = [_doc_backport(two_bases, tmp_path, subject, name) for subject, name in
              (("[PATCH AUTOSEL 6.12]", "autosel"), ("[PATCH 5.10]", "old"),
               ("[PATCH v2]", "mainline"))]
    for mbox in mboxes:  # the same commit each time: make three threads of them
        mbox.write_text(mbox.read_text().replace("Message-Id: <",
                                                 f"Message-Id: <{mbox.stem}-", 1))
    bench = _bench(monkeypatch)
    assert bench.main([*map(str, mboxes), "--tree", str(two_bases)]) == 0
    out = capsys.readouterr().out
    assert ": 3 series" in out
    assert ("stable backports: 2 series, 2 patch mails (1 AUTOSEL, 1 other); 2 series claim "
            "an upstream commit") in out
    assert "target versions: 5.10: 1, 6.12: 1" in out
    assert "tried first on their stable base: 1 of 2" in out
    assert f"stable step: {NEW}" in out
    assert "stable step: no 5.10 base in the tree (bases: 6.1.999, 6.12.999)" in out
    # The 5.10 backport: the normal order (index guess first) takes 6.1.
    assert f"reviewed on: {TAG} (the diffs' index lines" in out
    assert f"reviewed on: {NEW}: 1, {TAG}: 1" in out
    # Without a tree: which targets Debian's bases would serve.
    assert bench.main([*map(str, mboxes), "--tree", str(tmp_path / "none")]) == 0
    assert ("targets with a base among Debian's 6.1 and 6.12: 6.12; no matching base: 5.10"
            in capsys.readouterr().out)
