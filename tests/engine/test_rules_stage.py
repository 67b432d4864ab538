"""The rules stage end to end: hunks mode, tree mode with a real git repository (base
versus patch), pre-existing problems, notices, status and data."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from reviewbot.config import RulesSettings, Settings
from reviewbot.engine import coccinelle
from reviewbot.engine.stage import rules_stage
from reviewbot.mail import read_series
from reviewbot.model import Series
from reviewbot.pipeline import ReviewOptions, ReviewState

ENV = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
       "GIT_COMMITTER_EMAIL": "t@t", "GIT_CONFIG_NOSYSTEM": "1", "HOME": "/nonexistent"}

BASE = """\
#include <linux/memcontrol.h>

/* Already leaks on the error path: not this patch's fault. */
static int old_leak(struct mm_struct *mm)
{
\tstruct mem_cgroup *memcg = get_mem_cgroup_from_mm(mm);

\tif (!mm->owner_ok)
\t\treturn -EINVAL;
\tcharge(memcg);
\tcss_put(&memcg->css);
\treturn 0;
}

static int fine(struct mm_struct *mm)
{
\tstruct mem_cgroup *memcg = get_mem_cgroup_from_mm(mm);

\tcharge(memcg);
\tcss_put(&memcg->css);
\treturn 0;
}
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=ENV, check=True, capture_output=True,
                          text=True).stdout


@pytest.fixture()
def applied(tmp_path: Path) -> tuple[Path, str, str, Path]:
    repo = tmp_path / "linux"
    (repo / "mm").mkdir(parents=True)
    (repo / "mm" / "x.c").write_text(BASE)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    base = git(repo, "rev-parse", "HEAD").strip()
    # old_leak() gets an unrelated change; fine() gets a new early return that leaks.
    text = BASE.replace("\tcharge(memcg);\n\tcss_put", "\tcharge(memcg);\n\tcharge(memcg);\n\tcss_put", 1)
    head, tail = text.split("static int fine", 1)
    tail = tail.replace("\tcharge(memcg);\n", "\tif (charge(memcg))\n\t\treturn -ENOMEM;\n")
    text = head + "static int fine" + tail
    (repo / "mm" / "x.c").write_text(text)
    git(repo, "commit", "-q", "-am", "mm: charge twice\n\nSigned-off-by: t <t@t>")
    head = git(repo, "rev-parse", "HEAD").strip()
    mail = tmp_path / "0001.patch"
    mail.write_text(git(repo, "format-patch", "-1", "--stdout"))
    return repo, base, head, mail


def series_of(mail: Path) -> Series:
    return read_series([mail], Settings()).series[0]


def test_tree_mode_blames_only_the_new_leak(applied: tuple[Path, str, str, Path]) -> None:
    repo, base, head, mail = applied
    state = ReviewState(worktree=repo, base_commit=base, applied=True, patch_commits={1: head})
    outcome = rules_stage(series_of(mail), state, Settings(), ReviewOptions())
    leaks = [f for f in outcome.findings if f.rule == "refcount-imbalance"]
    by_fn = {f.function: f for f in leaks}
    assert set(by_fn) == {"old_leak", "fine"}
    assert by_fn["old_leak"].preexisting and by_fn["old_leak"].severity == "info"
    assert by_fn["old_leak"].message.startswith("pre-existing")
    assert not by_fn["fine"].preexisting and by_fn["fine"].severity == "error"
    assert not by_fn["fine"].partial  # whole function from git
    assert by_fn["fine"].evidence and "get_mem_cgroup_from_mm" in by_fn["fine"].evidence[0]
    assert outcome.json()["mode"] == "tree" and outcome.status == "warning"


def test_hunks_mode_is_partial_and_compares_with_the_pre_image(applied: tuple[Path, str, str, Path]) -> None:
    *_, mail = applied
    outcome = rules_stage(series_of(mail), ReviewState(), Settings(), ReviewOptions(use_tree=False))
    leaks = [f for f in outcome.findings if f.rule == "refcount-imbalance" and not f.preexisting]
    assert [f.function for f in leaks] == ["fine"]
    assert all(f.partial for f in outcome.findings)
    assert outcome.json()["mode"] == "hunks"
    assert "mm/x.c:fine" in outcome.json()["partial_functions"] or outcome.json()["partial_functions"]


def test_min_severity_drops_info(applied: tuple[Path, str, str, Path]) -> None:
    repo, base, head, mail = applied
    state = ReviewState(worktree=repo, base_commit=base, applied=True, patch_commits={1: head})
    settings = Settings(rules=RulesSettings(min_severity="warning"))
    outcome = rules_stage(series_of(mail), state, settings, ReviewOptions())
    assert all(f.severity != "info" for f in outcome.findings)


def test_coccinelle_skipped_with_a_notice(monkeypatch: pytest.MonkeyPatch,
                                          applied: tuple[Path, str, str, Path]) -> None:
    *_, mail = applied
    outcome = rules_stage(series_of(mail), ReviewState(), Settings(), ReviewOptions(use_tree=False))
    assert any("css-get-maybe-null: skipped" in s and "--no-tree" in s for s in outcome.json()["skipped"])
    monkeypatch.setattr(coccinelle, "spatch_path", lambda: None)
    outcome = rules_stage(series_of(mail), ReviewState(), Settings(), ReviewOptions(use_tree=False))
    assert any("spatch (Debian package coccinelle) is not installed" in s for s in outcome.json()["skipped"])


def test_clean_patch_is_success(tmp_path: Path) -> None:
    mail = tmp_path / "p.patch"
    mail.write_text(
        "From: A <a@b>\nSubject: [PATCH] doc: typo\nMessage-ID: <1@b>\n\nfix\n---\n"
        "diff --git a/README b/README\n--- a/README\n+++ b/README\n@@ -1 +1 @@\n-teh\n+the\n"
    )
    outcome = rules_stage(series_of(mail), ReviewState(), Settings(), ReviewOptions(use_tree=False))
    assert outcome.status == "success" and outcome.findings == []
    assert outcome.json()["rules_run"] >= 13


def test_unusable_diff_fails_the_stage(tmp_path: Path) -> None:
    mail = tmp_path / "p.patch"
    mail.write_text(
        "From: A <a@b>\nSubject: [PATCH] evil\nMessage-ID: <2@b>\n\nx\n---\n"
        "diff --git a/../../etc/passwd b/../../etc/passwd\n--- a/../../etc/passwd\n"
        "+++ b/../../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n"
    )
    outcome = rules_stage(series_of(mail), ReviewState(), Settings(), ReviewOptions(use_tree=False))
    assert outcome.status == "fail" and "'..'" in outcome.reason


SERIES_1 = """\
From: A <a@b>
Subject: [PATCH 1/2] mm: x: add x_drain_sync()
Message-ID: <series-1@b>
Date: Thu, 1 Jan 2026 00:00:00 +0000

A helper that drains and waits.

Signed-off-by: A <a@b>
---
diff --git a/mm/x.c b/mm/x.c
--- a/mm/x.c
+++ b/mm/x.c
@@ -10,3 +10,10 @@ static int x_count(struct x *x)
 \treturn x->n;
 }
@BLANK@
+static void x_drain_sync(struct x *x)
+{
+\tmutex_lock(&x->drain_mutex);
+\tx->n = 0;
+\tmutex_unlock(&x->drain_mutex);
+}
+
""".replace("@BLANK@", " ")  # (a blank context line is one space)
SERIES_2 = """\
From: A <a@b>
Subject: [PATCH 2/2] mm: x: drain before adding
Message-ID: <series-2@b>
In-Reply-To: <series-1@b>
Date: Thu, 1 Jan 2026 00:00:01 +0000

Use the new helper.

Signed-off-by: A <a@b>
---
diff --git a/mm/x.c b/mm/x.c
--- a/mm/x.c
+++ b/mm/x.c
@@ -30,5 +30,6 @@ static void x_add(struct x *x, int n)
 {
 \tspin_lock(&x->lock);
+\tx_drain_sync(x);
 \tx->n += n;
 \tspin_unlock(&x->lock);
 }
"""


def test_a_later_patch_knows_the_functions_of_the_earlier_ones(tmp_path: Path) -> None:
    # Patch 1 adds a helper that sleeps; patch 2 calls it under a spinlock. Read alone,
    # patch 2 calls a function no base has; read in its series, the helper is patch 1's.
    (tmp_path / "0001.patch").write_text(SERIES_1)
    (tmp_path / "0002.patch").write_text(SERIES_2)
    series = read_series([tmp_path / "0001.patch", tmp_path / "0002.patch"], Settings()).series[0]
    assert len(series.patches) == 2
    outcome = rules_stage(series, ReviewState(), Settings(), ReviewOptions(use_tree=False))
    sleeps = [f for f in outcome.findings if f.rule == "sleep-in-atomic"]
    assert [(f.patch_index, f.function) for f in sleeps] == [(2, "x_add")]
    assert "x_drain_sync() -> mutex_lock()" in sleeps[0].message
    alone = read_series([tmp_path / "0002.patch"], Settings()).series[0]
    outcome = rules_stage(alone, ReviewState(), Settings(), ReviewOptions(use_tree=False))
    assert not [f for f in outcome.findings if f.rule == "sleep-in-atomic"]
