#!/usr/bin/env python3
"""Regenerate the corpus mbox files from the edits written below (kept for review).

Usage: python3 corpus/make_corpus.py WORKTREE OUTDIR
WORKTREE: a throwaway clone of the imported tree at v6.1.192-debian, e.g.
`git clone -q --shared ~/.local/share/reviewbot/linux /tmp/corpus-wt`. Not a worktree of the
tree itself: the commits made here (including the unsent prerequisite of the conflict
series) must not land in the tree's object database, or git am could 3-way merge there
and nowhere else. Commits get fixed authors and dates and the mails fixed Message-IDs, so
the output is the same on every machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

IMPORTED = "604c3f8a730665d8f8fb814c333ce92b5e4d5f50"  # v6.1.192-debian, see README.md
UNKNOWN_BASE = "9b2c7d1e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c"  # not in the tree (conflict series)

MIRA = ("Mira Kovač", "mira.kovac@example.org")
TOMAS = ("Tomas Lindqvist", "tomas.lindqvist@example.net")
PRIYA = ("Priya Raman", "priya.raman@example.com")
WEN = ("Wen Shao", "wen.shao@example.org")


def edit(path: str, old: str, new: str, count: int = 1) -> Callable[[Path], None]:
    def apply(root: Path) -> None:
        f = root / path
        text = f.read_text()
        if text.count(old) != count:
            raise SystemExit(f"{path}: expected {count} of {old!r}, found {text.count(old)}")
        f.write_text(text.replace(old, new))
    return apply


@dataclass
class Commit:
    author: tuple[str, str]
    date: str
    subject: str
    body: str
    edits: list[Callable[[Path], None]]
    send: bool = True  # False: a prerequisite that is not in the series (to make a conflict)


@dataclass
class SeriesSpec:
    name: str
    msgid_stem: str
    cover_subject: str | None
    cover_body: str
    cover_date: str
    commits: list[Commit]
    base_commit: str | None = None  # written as "base-commit:" (cover, else each patch)
    prefix: str = "PATCH"
    extra: dict[str, str] = field(default_factory=dict)


def sh(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    full = {**os.environ, "LC_ALL": "C", "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_CONFIG_NOSYSTEM": "1", **(env or {})}
    return subprocess.run(args, cwd=cwd, env=full, check=True, capture_output=True,
                          text=True).stdout


def make(wt: Path, spec: SeriesSpec, outdir: Path) -> None:
    sh(["git", "reset", "-q", "--hard", IMPORTED], wt)
    sent: list[str] = []
    for c in spec.commits:
        for e in c.edits:
            e(wt)
        name, mail = c.author
        env = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": mail, "GIT_AUTHOR_DATE": c.date,
               "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": mail,
               "GIT_COMMITTER_DATE": c.date}
        msg = f"{c.subject}\n\n{c.body.strip()}\n\nSigned-off-by: {name} <{mail}>\n"
        sh(["git", "commit", "-q", "-a", "-m", msg], wt, env)
        if c.send:
            sent.append(sh(["git", "rev-parse", "HEAD"], wt).strip())
    total = len(sent)
    mails: list[str] = []
    cover_id = f"{spec.msgid_stem}-0-{spec.commits[0].author[1]}" if spec.cover_subject else None
    if spec.cover_subject:
        name, mail = spec.commits[0].author
        stat = sh(["git", "diff", "--stat=72", f"{IMPORTED}..HEAD"], wt) if all(
            c.send for c in spec.commits) else ""
        shortlog = "".join(f"  {c.subject}\n" for c in spec.commits if c.send)
        body = spec.cover_body.strip() + "\n\n" + f"{name} ({total}):\n" + shortlog + "\n" + stat
        if spec.base_commit:
            body += f"\nbase-commit: {spec.base_commit}\n"
        mails.append(
            "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n"
            f"From: {_addr(name, mail)}\nDate: {spec.cover_date}\n"
            f"Subject: [{spec.prefix} 0/{total}] {spec.cover_subject}\n"
            f"Message-Id: <{cover_id}>\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=UTF-8\nContent-Transfer-Encoding: 8bit\n\n"
            + body + "-- \n2.39.5\n\n")
    for n, sha in enumerate(sent, start=1):
        # The sender of the series sends every mail; a patch by someone else carries its
        # author as an in-body "From:" line, as format-patch --from writes it.
        sender = "{} <{}>".format(*spec.commits[0].author)
        args = ["git", "format-patch", "--stdout", "--no-signature", "-1", sha,
                f"--subject-prefix={spec.prefix}", f"--from={sender}"]
        if total > 1:
            args += [f"--start-number={n}", "--numbered"]
        text = sh(args, wt)
        if total > 1:  # format-patch -1 --start-number=N writes N/N; write the real total
            text = re.sub(r"^Subject: \[(.*?) (\d+)/\d+\]", rf"Subject: [\1 \2/{total}]", text,
                          count=1, flags=re.M)
        if spec.base_commit and not spec.cover_subject:
            text += f"\nbase-commit: {spec.base_commit}\n"
        text += "-- \n2.39.5\n\n"
        msgid = f"{spec.msgid_stem}-{n}-{spec.commits[0].author[1]}"
        head, _, rest = text.partition("\n\n")
        head += f"\nMessage-Id: <{msgid}>"
        if cover_id:
            head += f"\nIn-Reply-To: <{cover_id}>\nReferences: <{cover_id}>"
        mails.append(head + "\n\n" + rest)
    (outdir / f"{spec.name}.mbox").write_text("".join(mails))
    print(f"{spec.name}.mbox: {len(mails)} mails")


def _addr(name: str, mail: str) -> str:
    if name.isascii():
        return f"{name} <{mail}>"
    from email.header import Header
    return f"{Header(name, 'utf-8').encode()} <{mail}>"


# --- (a) memcg-cleanups: 5 patches + cover, applies cleanly --------------------------------
CLEANUPS = SeriesSpec(
    name="01-memcg-charge-move-cleanups",
    msgid_stem="20261102101500.41207",
    cover_subject="mm: memcontrol: small cleanups around charge moving",
    cover_date="Mon, 2 Nov 2026 10:15:00 +0100",
    cover_body="""
Hi,

while reading the cgroup v1 charge moving code for an unrelated bug I
collected a few small cleanups. None of them changes behaviour: comments
that no longer match the code, a helper for the "nothing is moving"
assertions, and the documentation of when charges move at all.

The series is against 6.1.y and applies to current mm-unstable as well.
""",
    commits=[
        Commit(MIRA, "Mon, 2 Nov 2026 10:15:01 +0100",
               "mm: memcontrol: fix the comment about moving the mm owner",
               """
The comment in mem_cgroup_can_attach() reads "a owner". Say what the
check means instead: charges only move together with mm->owner.
""",
               [edit("mm/memcontrol.c",
                     "\t/* We move charges only when we move a owner of the mm */\n",
                     "\t/* Charges move only together with the owner of the mm */\n")]),
        Commit(MIRA, "Mon, 2 Nov 2026 10:15:02 +0100",
               "mm: memcontrol: add mc_assert_idle()",
               """
mem_cgroup_can_attach() open codes five VM_BUG_ON()s to check that no
other charge move is in flight. Give the check a name so that the
function reads as what it does.
""",
               [edit("mm/memcontrol.c",
                     "\tif (mm->owner == p) {\n\t\tVM_BUG_ON(mc.from);\n\t\tVM_BUG_ON(mc.to);\n"
                     "\t\tVM_BUG_ON(mc.precharge);\n\t\tVM_BUG_ON(mc.moved_charge);\n"
                     "\t\tVM_BUG_ON(mc.moved_swap);\n\n",
                     "\tif (mm->owner == p) {\n\t\tmc_assert_idle();\n\n"),
                edit("mm/memcontrol.c",
                     "static int mem_cgroup_can_attach(struct cgroup_taskset *tset)\n{\n"
                     "\tstruct cgroup_subsys_state *css;\n",
                     "/* No charge move may be in flight when a new one is prepared. */\n"
                     "static void mc_assert_idle(void)\n{\n\tVM_BUG_ON(mc.from);\n"
                     "\tVM_BUG_ON(mc.to);\n\tVM_BUG_ON(mc.precharge);\n"
                     "\tVM_BUG_ON(mc.moved_charge);\n\tVM_BUG_ON(mc.moved_swap);\n}\n\n"
                     "static int mem_cgroup_can_attach(struct cgroup_taskset *tset)\n{\n"
                     "\tstruct cgroup_subsys_state *css;\n")]),
        Commit(MIRA, "Mon, 2 Nov 2026 10:15:03 +0100",
               "mm: memcontrol: explain the retry loop in get_mem_cgroup_from_mm()",
               """
The do { } while (!css_tryget()) loop looks like it could spin forever.
It cannot: a memcg whose css is being released is replaced by its
task's new memcg (or the root) on the next iteration. Say so.
""",
               [edit("mm/memcontrol.c",
                     "\trcu_read_lock();\n\tdo {\n"
                     "\t\tmemcg = mem_cgroup_from_task(rcu_dereference(mm->owner));\n",
                     "\t/*\n"
                     "\t * css_tryget() fails only while the owner's memcg is being\n"
                     "\t * released; by then the owner has migrated, so the next\n"
                     "\t * lookup finds its new memcg (or the root) and the loop ends.\n"
                     "\t */\n"
                     "\trcu_read_lock();\n\tdo {\n"
                     "\t\tmemcg = mem_cgroup_from_task(rcu_dereference(mm->owner));\n")]),
        Commit(TOMAS, "Mon, 2 Nov 2026 10:15:04 +0100",
               "mm: memcontrol: update the comment of mem_cgroup_from_task()",
               """
mm->owner becomes NULL when the owner exits and no other user of the mm
is found, not only in races with swapoff or page migration. Callers such
as get_mem_cgroup_from_mm() rely on the NULL return in both cases.
""",
               [edit("mm/memcontrol.c",
                     "\t * mm_update_next_owner() may clear mm->owner to NULL\n"
                     "\t * if it races with swapoff, page migration, etc.\n"
                     "\t * So this can be called with p == NULL.\n",
                     "\t * mm_update_next_owner() sets mm->owner to NULL when the\n"
                     "\t * owner exits and no other task using the mm is found, and\n"
                     "\t * when it races with swapoff, page migration, etc.\n"
                     "\t * So this can be called with p == NULL.\n")]),
        Commit(TOMAS, "Mon, 2 Nov 2026 10:15:05 +0100",
               "Documentation: cgroup-v1: memory: say which task moves charges",
               """
"Charges are moved only when you move mm->owner" leaves the reader to
find out what mm->owner is. Name it: the thread group leader, or the
task that took over the mm when the leader exited.
""",
               [edit("Documentation/admin-guide/cgroup-v1/memory.rst",
                     "      Charges are moved only when you move mm->owner, in other words,\n"
                     "      a leader of a thread group.\n",
                     "      Charges are moved only when you move mm->owner, in other words,\n"
                     "      a leader of a thread group, or the task that took over the mm\n"
                     "      when the leader exited. Moving any other thread moves no charge.\n")]),
    ],
)

# --- (b) exit-owner-search: 2 patches + cover; patch 2 needs an unsent prerequisite --------
CONFLICTS = SeriesSpec(
    name="02-exit-owner-search-conflict",
    msgid_stem="20261105143000.8812",
    cover_subject="exit: make mm_update_next_owner() cheaper",
    cover_date="Thu, 5 Nov 2026 14:30:00 +0000",
    base_commit=UNKNOWN_BASE,
    cover_body="""
mm_update_next_owner() falls back to a walk over every process in the
system when the exiting owner has no child or sibling using the mm.
On machines with many processes sharing an mm with CLONE_VM this shows
up in exit latency.

Patch 1 documents the fallback, patch 2 skips kernel threads and
zombie leaders earlier. The series is on top of the retry removal
that is queued in mm-unstable.
""",
    commits=[
        Commit(PRIYA, "Thu, 5 Nov 2026 14:30:01 +0000",
               "exit: document the cost of the mm owner fallback search",
               """
The for_each_process() fallback is O(number of processes) under
tasklist_lock. Say when it runs and why it is still needed.
""",
               [edit("kernel/exit.c",
                     "\t/*\n\t * Search through everything else, we should not get here often.\n\t */\n",
                     "\t/*\n\t * Search through everything else, we should not get here often:\n"
                     "\t * only when the mm is shared with a task that is neither a child\n"
                     "\t * nor a sibling (CLONE_VM without CLONE_THREAD). The walk holds\n"
                     "\t * tasklist_lock for O(number of processes).\n\t */\n")]),
        Commit(PRIYA, "Thu, 5 Nov 2026 14:30:02 +0000",
               "exit: mm_update_next_owner: kill the retry logic",
               """
Prerequisite that is in mm-unstable but not in 6.1: not part of the series.
""",
               [edit("kernel/exit.c",
                     "\tread_unlock(&tasklist_lock);\n\tif (c->mm != mm) {\n"
                     "\t\ttask_unlock(c);\n\t\tput_task_struct(c);\n\t\tgoto retry;\n\t}\n"
                     "\tWRITE_ONCE(mm->owner, c);\n",
                     "\tread_unlock(&tasklist_lock);\n\tif (c->mm != mm)\n"
                     "\t\tc = NULL;\n"
                     "\tWRITE_ONCE(mm->owner, c);\n"),
                edit("kernel/exit.c",
                     "\tstruct task_struct *c, *g, *p = current;\n\nretry:\n",
                     "\tstruct task_struct *c, *g, *p = current;\n\n")],
               send=False),
        Commit(PRIYA, "Thu, 5 Nov 2026 14:30:03 +0000",
               "exit: mm_update_next_owner: skip kernel threads and zombie leaders",
               """
A kernel thread never owns a user mm, and a zombie thread group leader
has already dropped its mm. Skip both before looking at the threads,
and do not hand the mm to a task that is exiting itself.
""",
               [edit("kernel/exit.c",
                     "\t\tif (g->flags & PF_KTHREAD)\n\t\t\tcontinue;\n",
                     "\t\tif (g->flags & PF_KTHREAD)\n\t\t\tcontinue;\n"
                     "\t\tif (g->exit_state && thread_group_empty(g))\n\t\t\tcontinue;\n"),
                edit("kernel/exit.c",
                     "\tread_unlock(&tasklist_lock);\n\tif (c->mm != mm)\n"
                     "\t\tc = NULL;\n",
                     "\tread_unlock(&tasklist_lock);\n"
                     "\tif (c->mm != mm || (c->flags & PF_EXITING))\n"
                     "\t\tc = NULL;\n")]),
    ],
)

# --- (c) base-commit: one patch carrying base-commit: of the imported tree ---------------
BASE_COMMIT = SeriesSpec(
    name="03-mm-owner-doc-base-commit",
    msgid_stem="20261110080000.3301",
    cover_subject=None,
    cover_body="",
    cover_date="",
    base_commit=IMPORTED,
    commits=[
        Commit(WEN, "Tue, 10 Nov 2026 08:00:00 +0800",
               "mm: document that mm->owner can be NULL",
               """
mm_update_next_owner() clears mm->owner when no other task uses the
mm, and readers such as get_mem_cgroup_from_mm() must cope with that
under rcu_read_lock(). Add this to the comment of the field so that new
users do not dereference it unchecked.
""",
               [edit("include/linux/mm_types.h",
                     "\t\t * new_owner->alloc_lock is held\n\t\t */\n"
                     "\t\tstruct task_struct __rcu *owner;\n",
                     "\t\t * new_owner->alloc_lock is held\n\t\t *\n"
                     "\t\t * It is NULL when the owner exited and no other task\n"
                     "\t\t * using the mm was found: read it under rcu_read_lock()\n"
                     "\t\t * and check for NULL, as mem_cgroup_from_task() does.\n"
                     "\t\t */\n"
                     "\t\tstruct task_struct __rcu *owner;\n")]),
    ],
)

# --- (d) mm->memcg: in the spirit of the 2018 RFC; intentionally risky -------------------
MM_MEMCG = SeriesSpec(
    name="04-memcg-replace-mm-owner-with-mm-memcg",
    msgid_stem="20261117120000.5150",
    prefix="RFC PATCH",
    cover_subject="memcg: replace mm->owner with mm->memcg",
    cover_date="Tue, 17 Nov 2026 12:00:00 -0600",
    cover_body="""
mm_update_next_owner() can fall back to a walk over every process in
the system when the owner of an mm exits, which is the reported worst
case. The only user of mm->owner is the memory cgroup, which needs to
know which memcg an mm is charged to.

This RFC keeps that memcg in the mm directly: mm->memcg holds a css
reference, is set at fork from the parent's memcg and is updated with
xchg() from the cgroup attach callback. get_mem_cgroup_from_mm() and
the v1 charge moving code then use it instead of mm->owner; removing
mm->owner itself is left for a follow-up once the semantics are agreed.

Two behaviour changes: at fork the parent's memcg is charged instead of
whatever the child's not yet initialised css_set says, and v1 charge
moving follows the mm's memcg rather than the owner task.
""",
    commits=[
        Commit(TOMAS, "Tue, 17 Nov 2026 12:00:01 -0600",
               "memcg: add mm->memcg and keep it in sync on fork and attach",
               """
Add mm->memcg, a pointer to the memcg that pages of the mm are charged
to. It holds a css reference: taken at fork from the parent's memcg,
exchanged in the attach callback for every migrating task, and dropped
when the mm is freed.

xchg() makes the update atomic without a new lock in the mm.
""",
               [edit("include/linux/mm_types.h",
                     "\t\tstruct task_struct __rcu *owner;\n#endif\n",
                     "\t\tstruct task_struct __rcu *owner;\n"
                     "\t\t/* memcg the mm is charged to; holds a css reference */\n"
                     "\t\tstruct mem_cgroup __rcu *memcg;\n#endif\n"),
                edit("include/linux/memcontrol.h",
                     "struct mem_cgroup *get_mem_cgroup_from_mm(struct mm_struct *mm);\n\n",
                     "struct mem_cgroup *get_mem_cgroup_from_mm(struct mm_struct *mm);\n\n"
                     "void mm_init_memcg(struct mm_struct *mm);\n"
                     "void mm_update_memcg(struct mm_struct *mm, struct mem_cgroup *new);\n\n"),
                edit("include/linux/memcontrol.h",
                     "static inline struct mem_cgroup *get_mem_cgroup_from_mm(struct mm_struct *mm)\n"
                     "{\n\treturn NULL;\n}\n",
                     "static inline struct mem_cgroup *get_mem_cgroup_from_mm(struct mm_struct *mm)\n"
                     "{\n\treturn NULL;\n}\n\n"
                     "static inline void mm_init_memcg(struct mm_struct *mm)\n{\n}\n\n"
                     "static inline void mm_update_memcg(struct mm_struct *mm,\n"
                     "\t\t\t\t   struct mem_cgroup *new)\n{\n}\n"),
                edit("kernel/fork.c",
                     "\tmm_init_owner(mm, p);\n\tmm_pasid_init(mm);\n",
                     "\tmm_init_owner(mm, p);\n\tmm_init_memcg(mm);\n\tmm_pasid_init(mm);\n"),
                edit("kernel/fork.c",
                     "\tput_user_ns(mm->user_ns);\n\tmm_pasid_drop(mm);\n\tfree_mm(mm);\n",
                     "\tput_user_ns(mm->user_ns);\n\tmm_pasid_drop(mm);\n"
                     "\tmm_update_memcg(mm, NULL);\n\tfree_mm(mm);\n"),
                edit("mm/memcontrol.c",
                     "EXPORT_SYMBOL(get_mem_cgroup_from_mm);\n",
                     "EXPORT_SYMBOL(get_mem_cgroup_from_mm);\n\n"
                     "/* The new mm is charged to the memcg of the task that forks it. */\n"
                     "void mm_init_memcg(struct mm_struct *mm)\n{\n"
                     "\tstruct mem_cgroup *memcg;\n\n"
                     "\trcu_read_lock();\n"
                     "\tmemcg = mem_cgroup_from_task(current);\n"
                     "\tif (memcg)\n\t\tcss_get(&memcg->css);\n"
                     "\trcu_read_unlock();\n"
                     "\tRCU_INIT_POINTER(mm->memcg, memcg);\n}\n\n"
                     "/* Point @mm at @new, whose reference the caller passes on. */\n"
                     "void mm_update_memcg(struct mm_struct *mm, struct mem_cgroup *new)\n{\n"
                     "\tstruct mem_cgroup *old;\n\n"
                     "\told = xchg(&mm->memcg, new);\n"
                     "\tif (old)\n\t\tcss_put(&old->css);\n}\n\n"
                     "static void task_update_memcg(struct task_struct *tsk,\n"
                     "\t\t\t      struct mem_cgroup *new)\n{\n"
                     "\tstruct mm_struct *mm;\n\n"
                     "\ttask_lock(tsk);\n"
                     "\tmm = tsk->mm;\n"
                     "\tif (mm && !(tsk->flags & PF_KTHREAD))\n"
                     "\t\tmm_update_memcg(mm, new);\n"
                     "\ttask_unlock(tsk);\n}\n"),
                edit("mm/memcontrol.c",
                     "#ifdef CONFIG_LRU_GEN\nstatic void mem_cgroup_attach(struct cgroup_taskset *tset)\n",
                     "static void mem_cgroup_attach_mm(struct cgroup_taskset *tset)\n{\n"
                     "\tstruct cgroup_subsys_state *css;\n"
                     "\tstruct task_struct *tsk;\n\n"
                     "\tcgroup_taskset_for_each(tsk, css, tset) {\n"
                     "\t\tstruct mem_cgroup *new = mem_cgroup_from_css(css);\n\n"
                     "\t\tcss_get(css);\n"
                     "\t\ttask_update_memcg(tsk, new);\n"
                     "\t}\n}\n\n"
                     "#ifdef CONFIG_LRU_GEN\nstatic void mem_cgroup_attach(struct cgroup_taskset *tset)\n"),
                edit("mm/memcontrol.c",
                     "\tstruct task_struct *task;\n\tstruct cgroup_subsys_state *css;\n\n"
                     "\t/* find the first leader if there is any */\n",
                     "\tstruct task_struct *task;\n\tstruct cgroup_subsys_state *css;\n\n"
                     "\tmem_cgroup_attach_mm(tset);\n\n"
                     "\t/* find the first leader if there is any */\n"),
                edit("mm/memcontrol.c",
                     "#else\nstatic void mem_cgroup_attach(struct cgroup_taskset *tset)\n{\n}\n"
                     "#endif /* CONFIG_LRU_GEN */\n",
                     "#else\nstatic void mem_cgroup_attach(struct cgroup_taskset *tset)\n{\n"
                     "\tmem_cgroup_attach_mm(tset);\n}\n"
                     "#endif /* CONFIG_LRU_GEN */\n")]),
        Commit(TOMAS, "Tue, 17 Nov 2026 12:00:02 -0600",
               "memcg: use mm->memcg in get_mem_cgroup_from_mm()",
               """
Now that the mm carries its memcg, read it instead of going through
mm->owner and the owner's css_set. The css_tryget() loop stays: the
memcg may be on its way out while another task migrates.
""",
               [edit("mm/memcontrol.c",
                     "\t\tmemcg = mem_cgroup_from_task(rcu_dereference(mm->owner));\n"
                     "\t\tif (unlikely(!memcg))\n",
                     "\t\tmemcg = rcu_dereference(mm->memcg);\n"
                     "\t\tif (unlikely(!memcg))\n")]),
        Commit(TOMAS, "Tue, 17 Nov 2026 12:00:03 -0600",
               "memcg: move charges with the mm's memcg, not with mm->owner",
               """
cgroup v1 charge moving checked that the migrating leader is
mm->owner. With mm->memcg the question is whether the mm is charged to
the cgroup the task leaves; ask that instead.
""",
               [edit("mm/memcontrol.c",
                     "\t/* We move charges only when we move a owner of the mm */\n"
                     "\tif (mm->owner == p) {\n",
                     "\t/* Move the charges when the mm is charged to the old memcg */\n"
                     "\tif (rcu_access_pointer(mm->memcg) == from) {\n")]),
    ],
)

SERIES = [CLEANUPS, CONFLICTS, BASE_COMMIT, MM_MEMCG]


if __name__ == "__main__":
    wt, out = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    for spec in SERIES:
        make(wt, spec, out)
    sh(["git", "reset", "-q", "--hard", IMPORTED], wt)
