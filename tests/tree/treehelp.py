"""Helpers: a small kernel-shaped tree, written here, imported the way `tree init` imports Debian's.

The files are short but kernel-like (a top-level Makefile with the version, mm/memcontrol.c,
kernel/exit.c, a header, Debian's top-level .gitignore ending in "/*" and "!/debian/", a
symbolic link inside the tree and one pointing out of it), so that the import, the base
selection, git am --3way and the safety checks all meet what they meet on the real tree.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

from reviewbot.config import Settings, TreeSettings
from reviewbot.mail import read_series
from reviewbot.model import Series

TAG = "v6.1.999-debian"

MEMCONTROL_C = """\
// SPDX-License-Identifier: GPL-2.0-or-later
/* memcontrol.c - Memory Controller (a small stand-in written for the tests) */
#include <linux/memcontrol.h>

struct mem_cgroup *root_mem_cgroup __read_mostly;

struct mem_cgroup *mem_cgroup_from_task(struct task_struct *p)
{
\t/*
\t * mm_update_next_owner() may clear mm->owner to NULL
\t * if it races with swapoff, page migration, etc.
\t * So this can be called with p == NULL.
\t */
\tif (unlikely(!p))
\t\treturn NULL;

\treturn mem_cgroup_from_css(task_css(p, memory_cgrp_id));
}

struct mem_cgroup *get_mem_cgroup_from_mm(struct mm_struct *mm)
{
\tstruct mem_cgroup *memcg;

\tif (mem_cgroup_disabled())
\t\treturn NULL;

\trcu_read_lock();
\tdo {
\t\tmemcg = mem_cgroup_from_task(rcu_dereference(mm->owner));
\t\tif (unlikely(!memcg))
\t\t\tmemcg = root_mem_cgroup;
\t} while (!css_tryget(&memcg->css));
\trcu_read_unlock();
\treturn memcg;
}

static int mem_cgroup_can_attach(struct cgroup_taskset *tset)
{
\tstruct task_struct *p = cgroup_taskset_first(tset, NULL);
\tstruct mm_struct *mm;

\tmm = get_task_mm(p);
\tif (!mm)
\t\treturn 0;
\t/* We move charges only when we move a owner of the mm */
\tif (mm->owner == p)
\t\treturn mem_cgroup_precharge_mc(mm);
\tmmput(mm);
\treturn 0;
}
"""

EXIT_C = """\
// SPDX-License-Identifier: GPL-2.0-only
/* linux/kernel/exit.c (a small stand-in written for the tests) */
#include <linux/sched.h>

void mm_update_next_owner(struct mm_struct *mm)
{
\tstruct task_struct *c, *p = current;

\tif (mm->owner != p)
\t\treturn;
\tif (atomic_read(&mm->mm_users) <= 1) {
\t\tWRITE_ONCE(mm->owner, NULL);
\t\treturn;
\t}
\tlist_for_each_entry(c, &p->children, sibling) {
\t\tif (c->mm == mm)
\t\t\tgoto assign_new_owner;
\t}
\tWRITE_ONCE(mm->owner, NULL);
\treturn;

assign_new_owner:
\tWRITE_ONCE(mm->owner, c);
}
"""

FILES: dict[str, str] = {
    "Makefile": (
        "# SPDX-License-Identifier: GPL-2.0\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 999\n"
        "EXTRAVERSION =\nNAME = Curry Ramen\n\nall:\n\t@echo building\n"
    ),
    # Debian's linux-source tarball ends its top-level .gitignore like this: a plain
    # `git add -A` of such a tree adds nothing at all.
    ".gitignore": "*.o\n*.ko\n\n# Debian packaging\n/*\n!/debian/\n",
    "mm/memcontrol.c": MEMCONTROL_C,
    "kernel/exit.c": EXIT_C,
    "include/linux/memcontrol.h": (
        "/* SPDX-License-Identifier: GPL-2.0-or-later */\n#ifndef _LINUX_MEMCONTROL_H\n"
        "#define _LINUX_MEMCONTROL_H\n\nstruct mem_cgroup *get_mem_cgroup_from_mm("
        "struct mm_struct *mm);\n\n#endif /* _LINUX_MEMCONTROL_H */\n"
    ),
    "Documentation/admin-guide/cgroup-v1/memory.rst": (
        "Note:\n      Charges are moved only when you move mm->owner, in other words,\n"
        "      a leader of a thread group.\n"
    ),
    "scripts/dtc/include-prefixes/README": "shared device tree includes\n",
    "scripts/checkpatch.pl": "#!/usr/bin/perl\nprint \"ok\\n\";\n",
}
# name -> target: one link inside the tree (as the kernel has), one out of it.
SYMLINKS = {"include/dt-bindings": "../scripts/dtc/include-prefixes", "tools/outside": "/etc"}

ENV = {**os.environ, "LC_ALL": "C", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
       "GIT_COMMITTER_NAME": "Test Committer", "GIT_COMMITTER_EMAIL": "committer@example.org"}


def sh(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    res = subprocess.run(args, cwd=cwd, env={**ENV, **(env or {})}, capture_output=True,
                         text=True, check=False)
    if res.returncode != 0:
        raise AssertionError(f"{args} failed in {cwd}: {res.stderr}")
    return res.stdout


def write_source(root: Path) -> None:
    for rel, text in FILES.items():
        f = root / rel
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    (root / "scripts/checkpatch.pl").chmod(0o755)
    for rel, target in SYMLINKS.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).symlink_to(target)


def settings_for(tmp_path: Path, tree: Path, **tree_opts: object) -> Settings:
    opts: dict[str, object] = {
        "path": str(tree),
        "worktrees": str(tmp_path / "worktrees"),
        "lock_timeout_s": 60.0,
    }
    opts.update(tree_opts)
    return Settings(tree=TreeSettings(**opts))  # type: ignore[arg-type]


Edit = Callable[[Path], None]


def replace(path: str, old: str, new: str) -> Edit:
    def apply(root: Path) -> None:
        f = root / path
        text = f.read_text()
        assert old in text, f"{old!r} not in {path}"
        f.write_text(text.replace(old, new, 1))
    return apply


def write(path: str, text: str) -> Edit:
    def apply(root: Path) -> None:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return apply


AUTHORS = [("Ada Example", "ada@example.org"), ("Jörg Beispiel", "joerg@example.net")]


def make_mbox(
    tree: Path,
    work: Path,
    patches: list[tuple[str, list[Edit]]],
    *,
    base: str = TAG,
    cover: bool = True,
    base_commit: str | None = None,
    name: str = "series",
    prerequisites: list[tuple[str, list[Edit]]] | None = None,
) -> Path:
    """Commit ``patches`` on ``base`` in a scratch clone and write them as a threaded mbox.

    ``prerequisites`` are committed first but not sent (a series that needs work the tree
    does not have). The scratch clone has its own object store: nothing leaks into ``tree``.
    """
    clone = work / f"clone-{name}"
    sh(["git", "clone", "-q", "--no-local", str(tree), str(clone)], work)
    sh(["git", "checkout", "-q", "--detach", sh(["git", "rev-parse", base], tree).strip()], clone)
    for i, (subject, edits) in enumerate((prerequisites or []) + patches):
        for e in edits:
            e(clone)
        author = AUTHORS[i % len(AUTHORS)]
        date = f"2026-11-0{1 + i % 9}T10:00:0{i % 10}+0000"
        env = {"GIT_AUTHOR_NAME": author[0], "GIT_AUTHOR_EMAIL": author[1],
               "GIT_AUTHOR_DATE": date, "GIT_COMMITTER_NAME": author[0],
               "GIT_COMMITTER_EMAIL": author[1], "GIT_COMMITTER_DATE": date}
        sh(["git", "add", "-A", "-f"], clone)
        sh(["git", "commit", "-q", "-m", f"{subject}\n\nWhy: a test.\n\n"
            f"Signed-off-by: {author[0]} <{author[1]}>"], clone, env)
    args = ["git", "format-patch", "--stdout", "--thread=shallow",
            "--from=Ada Example <ada@example.org>", f"HEAD~{len(patches)}..HEAD"]
    if cover and len(patches) > 1:
        args.insert(2, "--cover-letter")
    text = sh(args, clone)
    if base_commit:  # where format-patch --base writes it: the end of the first mail
        head, sep, rest = text.partition("\n-- \n")
        text = head + f"\n\nbase-commit: {base_commit}" + sep + rest
    out = work / f"{name}.mbox"
    out.write_text(text)
    return out


def series_from(path: Path) -> Series:
    found = read_series([path], Settings())
    assert not found.errors, found.errors
    assert len(found.series) == 1, [s.subject for s in found.series]
    return found.series[0]


def hand_series(diffs: list[str], base_commit: str | None = None,
                author: tuple[str, str] = ("Eve Example", "eve@example.org")) -> Series:
    """A series built without the mail parser: the tree stage must defend on its own."""
    from datetime import datetime

    from reviewbot.model import Message, Patch, Subject

    total = len(diffs)
    patches: list[Patch | Message | None] = [None]
    for i, diff in enumerate(diffs, start=1):
        subj = Subject(raw=f"[PATCH {i}/{total}] change {i}", subject=f"change {i}",
                       prefixes=(), version=1, version_inferred=True, index=i, total=total,
                       counters_inferred=False, is_reply=False, is_rfc=False, is_resend=False,
                       is_patch=True)
        msg = Message(message_id=f"hand-{i}@example.org", subject=subj, author_name=author[0],
                      author_email=author[1], date=datetime(2026, 11, 1, 10, i, tzinfo=UTC),
                      in_reply_to=None, references=(), body="", commit_message=f"change {i}\n",
                      diff=diff, trailers=(), base_commit=base_commit)
        patches.append(Patch(message=msg, index=i, trailers=(), patch_id=None))
    return Series(series_id="hand-1@example.org", version=1, subject="hand made",
                  author=f"{author[0]} <{author[1]}>", expected=total, slots=tuple(patches),
                  base_commit=base_commit)
