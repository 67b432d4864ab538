"""Bounded work: the rules stage under a time and a memory limit in a forked child."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reviewbot.cli import main
from reviewbot.errors import BadInputError, InfraError
from reviewbot.limits import run_bounded


def _sleep(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


def _allocate(mib: int) -> int:
    block = bytearray(mib * 1024 * 1024)
    return len(block)


def _raise(kind: str) -> None:
    if kind == "bad":
        raise BadInputError("the diff is broken", source="x.patch")
    if kind == "infra":
        raise InfraError("git died")
    raise RuntimeError("a bug")


def test_the_answer_comes_back_from_the_child() -> None:
    done = run_bounded(_sleep, 0.01, time_s=30, memory_mb=1024)
    assert (done.status, done.value) == ("ok", "slept")


def test_a_slow_child_is_stopped_at_the_time_limit() -> None:
    start = time.monotonic()
    done = run_bounded(_sleep, 60, time_s=0.5, memory_mb=0)
    assert done.status == "timeout" and done.message == "stopped after 0.5 s"
    assert time.monotonic() - start < 10


def test_a_greedy_child_is_stopped_at_the_memory_limit() -> None:
    assert run_bounded(_allocate, 64, time_s=30, memory_mb=2048).value == 64 * 1024 * 1024
    done = run_bounded(_allocate, 4096, time_s=30, memory_mb=1024)
    assert done.status == "memory" and done.message == "over 1024 MiB"


def test_errors_keep_their_meaning() -> None:
    with pytest.raises(BadInputError, match="the diff is broken"):
        run_bounded(_raise, "bad", time_s=30, memory_mb=0)
    with pytest.raises(InfraError, match="git died"):
        run_bounded(_raise, "infra", time_s=30, memory_mb=0)
    done = run_bounded(_raise, "bug", time_s=30, memory_mb=0)
    assert done.status == "crash" and "RuntimeError: a bug" in done.message


def _huge_patch(path: Path, blocks: int) -> None:
    body = "".join(f"+\tif (nr > {i}) {{\n+\t\tcss_get(&memcg->css);\n+\t\ttotal += {i};\n"
                   "+\t\tcss_put(&memcg->css);\n+\t}\n" for i in range(blocks))
    n = 5 * blocks + 5
    path.write_text(
        "From: A <a@example.org>\nSubject: [PATCH] mm: a long function\n"
        "Message-ID: <long@example.org>\nDate: Sun, 6 Dec 2026 10:00:00 +0000\n\nlong\n\n"
        "Signed-off-by: A <a@example.org>\n---\n"
        "diff --git a/mm/long.c b/mm/long.c\nnew file mode 100644\nindex 0000000..1111111\n"
        f"--- /dev/null\n+++ b/mm/long.c\n@@ -0,0 +1,{n} @@\n"
        "+static int long_fn(struct mem_cgroup *memcg, int nr)\n+{\n+\tint total = 0;\n"
        + body + "+\treturn total;\n+}\n")


def test_review_of_a_too_slow_series_is_a_finding_not_a_hang(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    patch = tmp_path / "long.patch"
    _huge_patch(patch, 1000)
    config = tmp_path / "limits.yaml"
    config.write_text("rules:\n  time_limit_s: 0.2\n")
    start = time.monotonic()
    code = main(["--config", str(config), "review", "--no-tree", "--format", "text", str(patch)])
    out = capsys.readouterr().out
    assert code == 1 and time.monotonic() - start < 30
    assert "rules  FAIL  - the rules did not finish in 0.2 s (rules.time_limit_s)" in out
    assert "review-limit" in out and "too slow to analyse" in " ".join(out.split())
    # The same series within the default limits is reviewed.
    code = main(["review", "--no-tree", "--format", "text", str(patch)])
    out = capsys.readouterr().out
    assert "review-limit" not in out and "rules  FAIL" not in out
