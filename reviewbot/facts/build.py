"""Facts of a kernel base: read its C sources from git, derive, cache.

The sources come from ``git archive <base>`` (not a worktree, which a review may have
changed), limited to the directories a cgroup/memcg patch calls into; drivers/ and arch/
are left out (920 MB that cgroup code does not call). Derived facts are cached per base
commit and kernel.yaml digest under ``{cache}/facts``; a review of a patch that does not
apply uses the facts of the configured base (the nearest one it has).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

from reviewbot.errors import InfraError
from reviewbot.facts.condlocks import conditional_keeps
from reviewbot.facts.derive import derive
from reviewbot.facts.extract import Definition, definitions, pointer_fields
from reviewbot.facts.fieldlocks import FieldLockStats, lock_class, new_stats, scan_file
from reviewbot.facts.iterators import rcu_iterators
from reviewbot.facts.knowledge import Knowledge, load_knowledge
from reviewbot.facts.opsfacts import OpsScan, scan_ops
from reviewbot.facts.stored import SCHEMA, StoredFacts
from reviewbot.facts.tables import FACTS_VERSION, Facts
from reviewbot.gitcmd import git, git_popen

log = logging.getLogger(__name__)

SOURCE_DIRS = ("kernel", "mm", "fs", "block", "lib", "include/linux", "include/net",
               "include/trace", "ipc", "security", "net/core", "net/ipv4", "init")
MAX_FILE_BYTES = 4 * 1024 * 1024  # generated tables; no function body lives there
_ARROW = re.compile(r"->\s*(\w+)\b")
_MARKED_ARROW = re.compile(r"\b(?:rcu_dereference\w*|rcu_access_pointer|rcu_assign_pointer|RCU_INIT_POINTER|"
                           r"rcu_replace_pointer|rcu_dereference_protected)\s*\([^;()]*->\s*(\w+)\b")


def resolve_revision(tree: Path, rev: str) -> str:
    res = git(["rev-parse", "--verify", "-q", f"{rev}^{{commit}}"], cwd=tree)
    if not res.ok or not res.stdout.strip():
        raise InfraError(f"no commit {rev!r} in the kernel tree at {tree}")
    return res.stdout.strip()


def _sources(tree: Path, commit: str, timeout: float) -> Iterator[tuple[str, str]]:
    """(path, text) of every .c/.h file under SOURCE_DIRS at ``commit``."""
    # `git archive` fails on a pathspec that matches nothing: name only the folders there.
    listed = git(["ls-tree", "-d", "--name-only", commit, "--", *SOURCE_DIRS], cwd=tree)
    present = [d for d in listed.stdout.split() if d in SOURCE_DIRS] if listed.ok else []
    if not present:
        raise InfraError(f"{commit[:12]} has none of {', '.join(SOURCE_DIRS)}: not a kernel tree")
    proc = git_popen(["archive", "--format=tar", commit, "--", *present], cwd=tree)
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for member in tar:
                if time.monotonic() > deadline:
                    raise InfraError(f"reading the sources of {commit[:12]} took over {timeout:.0f}s")
                if not member.isfile() or not member.name.endswith((".c", ".h")):
                    continue
                if member.size > MAX_FILE_BYTES:
                    continue
                fh = tar.extractfile(member)
                if fh is not None:
                    yield member.name, fh.read().decode("utf-8", errors="replace")
    finally:
        proc.stdout.close()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.wait() not in (0, -13) and err:  # -13: we closed the pipe early (SIGPIPE)
            raise InfraError(f"git archive {commit[:12]} failed: {err.strip()[-500:]}")


def scan(texts: Iterator[tuple[str, str]], locking: FieldLockStats | None = None,
         ops: OpsScan | None = None) -> tuple[list[Definition], list[str]]:
    """Function definitions, and the pointer names that are __rcu wherever declared (and,
    into ``locking``, the write and lock sites of facts/fieldlocks.py; into ``ops``, the
    struct fields and ops initializers of facts/opsfacts.py)."""
    defs: list[Definition] = []
    rcu: set[str] = set()
    plain: set[str] = set()
    uses: Counter[str] = Counter()  # `->name` accesses
    marked: Counter[str] = Counter()  # ... of them inside an RCU accessor
    for path, text in texts:
        defs.extend(definitions(text, path))
        r, p = pointer_fields(text)
        rcu |= r
        plain |= p
        uses.update(_ARROW.findall(text))
        marked.update(_MARKED_ARROW.findall(text))
        if locking is not None:
            scan_file(text, locking, path)
        if ops is not None:
            scan_ops(text, path, ops)  # (comments do not look like fields or `.member = fn`)
    # Short common words (gen, grab, helper) are too likely a plain field somewhere unread;
    # a field the base itself mostly reads plainly (task->real_parent under tasklist_lock)
    # is one whose writers' lock protects it, not one that needs accessors everywhere.
    return defs, sorted(n for n in rcu - plain
                        if ("_" in n or len(n) >= 7) and uses[n] - marked[n] <= marked[n])


def build_facts(tree: Path, rev: str, knowledge: Knowledge | None = None,
                say: Callable[[str], None] | None = None, timeout: float = 900) -> Facts:
    """Derive the facts of one base (about 30 s for Linux 6.1 on 2 cores)."""
    k = knowledge or load_knowledge()
    commit = resolve_revision(tree, rev)
    start = time.monotonic()
    locking = new_stats(k)
    ops = OpsScan()
    defs, rcu_fields = scan(_sources(tree, commit, timeout), locking, ops)
    if say:
        say(f"read {len(defs)} function definitions in {time.monotonic() - start:.1f}s")
    facts = derive(defs, k, revision=commit, ops=ops)
    facts.rcu_fields = rcu_fields
    facts.rcu_iters = rcu_iterators(defs)
    facts.field_locks, facts.irq_shared = locking.tables()
    # Object lock classes by the struct that holds the lock (the fields read on the way
    # are kept, so that the engine names a patch's locks the same way).
    fields = ops.field_types()
    used: dict[str, str] = {}

    def field_type(owner: str, name: str) -> str | None:
        found = fields.get(f"{owner}.{name}")
        if found is not None:
            used[f"{owner}.{name}"] = found
        return found
    for pair, example in locking.order.items():  # (the summaries' global pairs stay first)
        outer, inner = (lock_class(key, field_type) for key in pair.split(" ", 1))
        if outer != inner:
            facts.order.setdefault(f"{outer} {inner}", example)
    facts.ops_fields.update(used)
    facts.cond_keeps = conditional_keeps(locking.candidates, facts, k)
    facts.defined = []  # only a patch's overlay needs to say what it redefines
    facts.names = sorted({d.name for d in defs})
    facts.stats["seconds"] = round(time.monotonic() - start, 1)
    return facts


def cache_path(cache_dir: Path, commit: str, knowledge: Knowledge) -> Path:
    return cache_dir / f"{commit[:16]}-{knowledge.digest}-v{FACTS_VERSION}.sqlite"


def save(path: Path, facts: Facts) -> None:
    """Write the tables to SQLite atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".facts-", suffix=".tmp")
    os.close(fd)
    try:
        con = sqlite3.connect(tmp)
        with con:
            con.executescript(SCHEMA)
            con.executemany("INSERT INTO sleeps VALUES ('', ?, ?)",
                            ((n, json.dumps(c)) for n, c in facts.sleeps.items()))
            con.executemany("INSERT INTO sleeps VALUES (?, ?, ?)",
                            ((p, n, json.dumps(c)) for p, v in facts.local_sleeps.items()
                             for n, c in v.items()))
            con.executemany("INSERT OR IGNORE INTO locals VALUES (?, ?)",
                            ((p, n) for p, names in facts.local_names.items() for n in names))
            con.executemany("INSERT INTO lock_order VALUES (?, ?)", facts.order.items())
            con.executemany("INSERT OR IGNORE INTO names VALUES (?)", ((n,) for n in facts.names))
            con.executemany("INSERT OR IGNORE INTO rcu_opens VALUES (?)", ((n,) for n in facts.rcu_opens))
            # Every other table is name -> JSON value; names are this module's constants.
            for table, rows in (("locks", facts.locks), ("irq_locks", facts.irq_locks),
                                ("requires", facts.requires), ("keeps", facts.keeps),
                                ("unlocks", facts.unlocks), ("releases", facts.releases),
                                ("acquires", facts.acquires), ("unaccounted", facts.unaccounted),
                                ("works", facts.works), ("indirect", facts.indirect),
                                ("callbacks", facts.callbacks), ("returns", facts.returns),
                                ("preempt", facts.preempt),
                                ("field_locks", facts.field_locks), ("irq_shared", facts.irq_shared),
                                ("cond_keeps", facts.cond_keeps), ("slab_caches", facts.slab_caches),
                                ("ops_sleeps", facts.ops_sleeps), ("ops_fields", facts.ops_fields),
                                ("ops_locks", facts.ops_locks), ("ops_context", facts.ops_context),
                                ("rcu_needs", facts.rcu_needs)):
                con.executemany(f"INSERT INTO {table} VALUES (?, ?)",
                                ((n, json.dumps(v)) for n, v in rows.items()))
            con.execute("INSERT INTO meta VALUES (?, ?, ?, ?, ?)",
                        (facts.revision, facts.digest, json.dumps(facts.stats),
                         json.dumps(facts.rcu_fields), json.dumps(facts.rcu_iters)))
        con.close()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def facts_for(tree: Path, rev: str, cache_dir: Path, *, build: bool = True,
              say: Callable[[str], None] | None = None) -> Facts | None:
    """The facts of ``rev``: from the cache, else derived and cached (unless ``build`` is
    False, for callers that must not spend half a minute)."""
    k = load_knowledge()
    commit = resolve_revision(tree, rev)
    path = cache_path(cache_dir, commit, k)
    if path.is_file():
        try:
            return StoredFacts(path)
        except sqlite3.Error as exc:
            log.warning("facts cache %s unusable (%s): rebuilding", path, exc)
    if not build:
        return None
    if say:
        say(f"deriving kernel facts of {commit[:12]} (once per base) ...")
    save(path, build_facts(tree, commit, k, say=say))
    prune_older(cache_dir, commit)
    return StoredFacts(path)


def prune_older(cache_dir: Path, commit: str) -> list[Path]:
    """Remove this base's facts of older FACTS_VERSIONs (10-20 MB each): an upgrade would
    otherwise leave one per version behind. Newer versions are kept (another install of
    reviewbot may share the cache), and a reader that has one open keeps its inode."""
    removed = []
    for old in cache_dir.glob(f"{commit[:16]}-*-v*.sqlite"):
        version = old.stem.rsplit("-v", 1)[-1]
        if version.isdigit() and int(version) < FACTS_VERSION:
            old.unlink(missing_ok=True)
            removed.append(old)
    return removed
