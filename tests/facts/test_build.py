"""Facts of a base read from a real git tree, cached in SQLite and read back on demand."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reviewbot.errors import InfraError
from reviewbot.facts.build import cache_path, facts_for
from reviewbot.facts.knowledge import load_knowledge
from reviewbot.facts.stored import StoredFacts

KERNFS = """\
struct kernfs_node *kernfs_walk_and_get_ns(struct kernfs_node *parent, const char *path)
{
\tstruct kernfs_root *root = kernfs_root(parent);

\tdown_read(&root->kernfs_rwsem);
\treturn kernfs_walk_ns(parent, path);
}
"""
HEADER = """\
static inline struct kernfs_node *kernfs_walk_and_get(struct kernfs_node *kn, const char *path)
{
\treturn kernfs_walk_and_get_ns(kn, path);
}

static inline void cgroup_lock(void)
{
\tmutex_lock(&cgroup_mutex);
}

#define kn_for_each_child(kn, pos, parent) \\
\tcss_for_each_child((pos), &(parent)->css) if (((kn) = css_kn(pos)))
"""
LOCAL = """\
static int helper(void)
{
\tmsleep(10);
\treturn 0;
}
"""
OTHER = """\
static int helper(void)
{
\treturn 1;
}
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo,
                   check=True, capture_output=True)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    repo = tmp_path / "linux"
    for rel, text in (("fs/kernfs/dir.c", KERNFS), ("include/linux/kernfs.h", HEADER),
                      ("kernel/a.c", LOCAL), ("kernel/b.c", OTHER),
                      ("drivers/x.c", "void drv(void)\n{\n\tmsleep(1);\n}\n")):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(text)
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo


def test_facts_are_derived_once_then_read_from_the_cache(tree: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    said: list[str] = []
    facts = facts_for(tree, "HEAD", cache, say=said.append)
    assert isinstance(facts, StoredFacts)
    assert facts.sleep_chain("kernfs_walk_and_get") == ["kernfs_walk_and_get_ns", "down_read"]
    assert facts.locks_kept("cgroup_lock") == {"cgroup_mutex": ["mutex_lock"]}
    assert facts.rcu_iterator("kn_for_each_child") == "css_for_each_child"  # (from the cache)
    assert facts.rcu_iterator("cgroup_lock") is None
    assert said and "deriving" in said[0]
    # drivers/ is not read: cgroup code does not call into it.
    assert facts.sleep_chain("drv") is None
    # Every function the base defines, sleeping or not (facts/fallback.py asks).
    assert facts.defines("kernfs_walk_and_get") and facts.defines("cgroup_lock")
    assert not facts.defines("drv") and not facts.defines("no_such_function")
    said.clear()
    again = facts_for(tree, "HEAD", cache, say=said.append)
    assert again is not None and again.revision == facts.revision and not said
    assert cache_path(cache, facts.revision, load_knowledge()).is_file()


def test_building_a_new_version_removes_the_older_versions_of_that_base(tree: Path, tmp_path: Path) -> None:
    from reviewbot.facts.tables import FACTS_VERSION

    cache = tmp_path / "cache"
    cache.mkdir()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True, text=True,
                            check=True).stdout.strip()
    older = cache / f"{commit[:16]}-0123456789ab-v{FACTS_VERSION - 1}.sqlite"
    newer = cache / f"{commit[:16]}-0123456789ab-v{FACTS_VERSION + 1}.sqlite"
    other_base = cache / f"{'f' * 16}-0123456789ab-v{FACTS_VERSION - 1}.sqlite"
    for path in (older, newer, other_base):
        path.write_bytes(b"")
    assert facts_for(tree, "HEAD", cache) is not None
    assert not older.exists()
    assert newer.exists() and other_base.exists()  # another install's, another base's
    assert cache_path(cache, commit, load_knowledge()).is_file()


def test_a_static_is_judged_in_its_own_file_only(tree: Path, tmp_path: Path) -> None:
    facts = facts_for(tree, "HEAD", tmp_path / "cache")
    assert facts is not None
    assert facts.sleep_chain("helper", "kernel/a.c") == ["msleep"]
    assert facts.sleep_chain("helper", "kernel/b.c") is None


def test_without_build_a_missing_cache_is_none(tree: Path, tmp_path: Path) -> None:
    assert facts_for(tree, "HEAD", tmp_path / "cache", build=False) is None


def test_an_unknown_revision_is_an_infrastructure_error(tree: Path, tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="no commit"):
        facts_for(tree, "no-such-ref", tmp_path / "cache")
