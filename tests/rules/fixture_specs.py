"""Edits of Linux 6.1 source that make the rule fixtures (see mkfixture.py).

Each Spec is one patch mail; ``outcomes`` says, per rule, which fixture file it becomes
(``bad-NN``: the rule must fire; ``ok-NN``: it must stay silent; ``todo-NN``: a known gap,
expected to fail strictly); the file is ``<outcome>-<slug>.patch``. Old strings must occur exactly once in the 6.1 file.
"""

from __future__ import annotations

from fixture_specs_base import Spec

MEMCG = "mm/memcontrol.c"
MM_TYPES = "include/linux/mm_types.h"
MEMCG_H = "include/linux/memcontrol.h"

# A new caller of an existing reference helper (see the tree-* refcount fixtures); @@LEAK@@
# is what happens when the group has the OOM killer disabled.
OOM_GROUP_KILLABLE = """/*
 * Whether the OOM killer may kill the victim's whole memory.oom.group: not when
 * that group has the (v1) OOM killer disabled.
 */
bool mem_cgroup_oom_group_killable(struct task_struct *victim,
\t\t\t\t   struct mem_cgroup *oom_domain)
{
\tstruct mem_cgroup *group;
\tbool killable = true;

\tgroup = mem_cgroup_get_oom_group(victim, oom_domain);
\tif (!group)
\t\treturn false;
\tif (READ_ONCE(group->oom_kill_disable))
@@LEAK@@\tmem_cgroup_put(group);
\treturn killable;
}

"""

LRU_GEN_ATTACH = """static void mem_cgroup_attach(struct cgroup_taskset *tset)
{
\tstruct task_struct *task;
\tstruct cgroup_subsys_state *css;

\t/* find the first leader if there is any */
\tcgroup_taskset_for_each_leader(task, css, tset)
\t\tbreak;

\tif (!task)
\t\treturn;

\ttask_lock(task);
\tif (task->mm && READ_ONCE(task->mm->owner) == task)
\t\tlru_gen_migrate_mm(task->mm);
\ttask_unlock(task);
}
"""

TASK_UPDATE_MEMCG = """static void task_update_memcg(struct task_struct *tsk, struct mem_cgroup *new)
{
\tstruct mm_struct *mm;
\tstruct mem_cgroup *old;

\ttask_lock(tsk);
\tmm = tsk->mm;
\tif (!mm || (tsk->flags & PF_KTHREAD)) {
\t\ttask_unlock(tsk);
\t\treturn;
\t}
\told = xchg(&mm->memcg, new);
\ttask_unlock(tsk);
\tif (old)
\t\tcss_put(&old->css);
}

"""

SEED_ATTACH = TASK_UPDATE_MEMCG + """static void mem_cgroup_attach(struct cgroup_taskset *tset)
{
\tstruct cgroup_subsys_state *css;
\tstruct task_struct *tsk;

\tcgroup_taskset_for_each(tsk, css, tset) {
\t\tstruct mem_cgroup *new = mem_cgroup_from_css(css);
\t\tcss_get(css);
\t\ttask_update_memcg(tsk, new);
\t}
}
"""

OWNER_FIELD = """\t\t/*
\t\t * "owner" points to a task that is regarded as the canonical
\t\t * user/owner of this mm. All of the following must be true in
\t\t * order for it to be changed:
\t\t *
\t\t * current == mm->owner
\t\t * current->mm != mm
\t\t * new_owner->mm == mm
\t\t * new_owner->alloc_lock is held
\t\t */
\t\tstruct task_struct __rcu *owner;
"""

MEMCG_FIELD = """\t\t/*
\t\t * The memory cgroup charged for this mm. Holds a css reference;
\t\t * updated with xchg() from the cgroup attach callback.
\t\t */
\t\tstruct mem_cgroup __rcu *memcg;
"""

SEED_BODY = """
Recently it was reported that mm_update_next_owner could get into cases
where it was executing its fallback for_each_process part of the loop and
thus taking up a lot of time. To deal with this replace mm->owner with
mm->memcg, updated from a cgroup "attach" method with xchg().

(Reconstructed for the reviewbot test suite from the hunk quoted in the
public review of "[RFC][PATCH] memcg: Replace mm->owner with mm->memcg",
May 2018, on top of Linux 6.1.)
"""

GET_FROM_MM_END = "\treturn memcg;\n}\nEXPORT_SYMBOL(get_mem_cgroup_from_mm);\n"


def after_get_from_mm(code: str) -> tuple[str, str, str]:
    return (MEMCG, GET_FROM_MM_END, GET_FROM_MM_END + "\n" + code)


SPECS: tuple[Spec, ...] = (
    Spec(
        "seed-mem-cgroup-attach",
        "memcg: Replace mm->owner with mm->memcg",
        SEED_BODY,
        ((MM_TYPES, OWNER_FIELD, MEMCG_FIELD), (MEMCG, LRU_GEN_ATTACH, SEED_ATTACH)),
        {
            "per-mm-update-in-thread-loop": "bad-01",
            "css-get-in-thread-loop": "bad-01",
            "v1-attach-assumes-process": "bad-01",
        },
    ),
    Spec(
        "leader-loop",
        "memcg: update mm->memcg once per process on attach",
        "Walk the leaders only: the mm is shared by the whole thread group.",
        (
            (MEMCG, LRU_GEN_ATTACH, TASK_UPDATE_MEMCG + """static void mem_cgroup_attach(struct cgroup_taskset *tset)
{
\tstruct cgroup_subsys_state *css;
\tstruct task_struct *leader;

\tcgroup_taskset_for_each_leader(leader, css, tset) {
\t\tstruct mem_cgroup *new = mem_cgroup_from_css(css);

\t\tcss_get(css);
\t\ttask_update_memcg(leader, new);
\t}
}
"""),
        ),
        {
            "per-mm-update-in-thread-loop": "ok-01",
            "css-get-in-thread-loop": "ok-01",
            "v1-attach-assumes-process": "ok-01",
        },
    ),
    Spec(
        "thread-group-leader-guard",
        "memcg: skip non-leaders when updating mm->memcg",
        "Only the thread-group leader updates the shared mm.",
        (
            (MEMCG, LRU_GEN_ATTACH, TASK_UPDATE_MEMCG + """static void mem_cgroup_attach(struct cgroup_taskset *tset)
{
\tstruct cgroup_subsys_state *css;
\tstruct task_struct *tsk;

\tcgroup_taskset_for_each(tsk, css, tset) {
\t\tif (!thread_group_leader(tsk))
\t\t\tcontinue;
\t\tcss_get(css);
\t\ttask_update_memcg(tsk, mem_cgroup_from_css(css));
\t}
}
"""),
        ),
        {"per-mm-update-in-thread-loop": "ok-02", "css-get-in-thread-loop": "ok-02"},
    ),
    Spec(
        "get-inside-helper",
        "memcg: take the css reference inside task_update_memcg()",
        "Move css_get() into the helper so callers cannot forget it.",
        (
            (MEMCG, LRU_GEN_ATTACH, TASK_UPDATE_MEMCG.replace(
                "\told = xchg(&mm->memcg, new);", "\tcss_get(&new->css);\n\told = xchg(&mm->memcg, new);"
            ) + """static void mem_cgroup_attach(struct cgroup_taskset *tset)
{
\tstruct cgroup_subsys_state *css;
\tstruct task_struct *tsk;

\tcgroup_taskset_for_each(tsk, css, tset)
\t\ttask_update_memcg(tsk, mem_cgroup_from_css(css));
}
"""),
        ),
        # Rule 1 sees the per-thread update; rule 2 the get inside the patch's helper.
        {"per-mm-update-in-thread-loop": "bad-02", "css-get-in-thread-loop": "bad-02"},
    ),
    Spec(
        "helper-called-per-leader",
        "memcg: take the css reference inside task_update_memcg(), once per process",
        "Move css_get() into the helper so callers cannot forget it; the attach loop\n"
        "visits thread-group leaders only, so each mm gets one reference.",
        (
            (MEMCG, LRU_GEN_ATTACH, TASK_UPDATE_MEMCG.replace(
                "\told = xchg(&mm->memcg, new);", "\tcss_get(&new->css);\n\told = xchg(&mm->memcg, new);"
            ) + """static void mem_cgroup_attach(struct cgroup_taskset *tset)
{
\tstruct cgroup_subsys_state *css;
\tstruct task_struct *tsk;

\tcgroup_taskset_for_each_leader(tsk, css, tset)
\t\ttask_update_memcg(tsk, mem_cgroup_from_css(css));
}
"""),
        ),
        {"per-mm-update-in-thread-loop": "ok-03", "css-get-in-thread-loop": "ok-03"},
    ),
    Spec(
        "early-return-leaks-memcg",
        "memcg: bail out of charging for fatal signals",
        "Do not charge when the task is being killed anyway.",
        (
            (MEMCG, "\tmemcg = get_mem_cgroup_from_mm(mm);\n\tret = charge_memcg(folio, memcg, gfp);\n",
             "\tmemcg = get_mem_cgroup_from_mm(mm);\n\tif (fatal_signal_pending(current))\n\t\treturn -EINTR;\n"
             "\tret = charge_memcg(folio, memcg, gfp);\n"),
        ),
        {"refcount-imbalance": "bad-01"},
    ),
    Spec(
        "early-return-puts-memcg",
        "memcg: bail out of charging for fatal signals",
        "Do not charge when the task is being killed anyway; drop the reference first.",
        (
            (MEMCG, "\tmemcg = get_mem_cgroup_from_mm(mm);\n\tret = charge_memcg(folio, memcg, gfp);\n",
             "\tmemcg = get_mem_cgroup_from_mm(mm);\n\tif (fatal_signal_pending(current)) {\n"
             "\t\tcss_put(&memcg->css);\n\t\treturn -EINTR;\n\t}\n"
             "\tret = charge_memcg(folio, memcg, gfp);\n"),
        ),
        {"refcount-imbalance": "ok-01"},
    ),
    Spec(
        "goto-skips-put",
        "memcg: check the swap entry before charging swapin",
        "Refuse a swapin charge for an entry whose cgroup id is gone.",
        (
            (MEMCG, "\tret = charge_memcg(folio, memcg, gfp);\n\n\tcss_put(&memcg->css);\n\treturn ret;\n}\n",
             "\tif (!id) {\n\t\tret = -ENOENT;\n\t\tgoto out;\n\t}\n"
             "\tret = charge_memcg(folio, memcg, gfp);\n\n\tcss_put(&memcg->css);\nout:\n\treturn ret;\n}\n"),
        ),
        {"refcount-imbalance": "bad-02"},
    ),
    Spec(
        "get-through-local-helper",
        "memcg: factor out the memcg lookup of __mem_cgroup_charge()",
        "A local helper takes the reference; the early return leaks it. The engine\n"
        "sees it because charge_target(), in the same patch, returns the reference\n"
        "get_mem_cgroup_from_mm() gave it.",
        (
            (MEMCG, "\tmemcg = get_mem_cgroup_from_mm(mm);\n\tret = charge_memcg(folio, memcg, gfp);\n",
             "\tmemcg = charge_target(mm);\n\tif (fatal_signal_pending(current))\n\t\treturn -EINTR;\n"
             "\tret = charge_memcg(folio, memcg, gfp);\n"),
            (MEMCG, "int __mem_cgroup_charge(struct folio *folio, struct mm_struct *mm, gfp_t gfp)\n",
             "static struct mem_cgroup *charge_target(struct mm_struct *mm)\n{\n"
             "\treturn get_mem_cgroup_from_mm(mm);\n}\n\n"
             "int __mem_cgroup_charge(struct folio *folio, struct mm_struct *mm, gfp_t gfp)\n"),
        ),
        {"refcount-imbalance": "bad-03"},
    ),
    Spec(
        "helper-reference-put-on-every-path",
        "memcg: factor out the memcg lookup, bail out on fatal signals",
        "A local helper takes the reference; the early return puts it first, so the\n"
        "reference charge_target() hands out is balanced on every path.",
        (
            (MEMCG, "\tmemcg = get_mem_cgroup_from_mm(mm);\n\tret = charge_memcg(folio, memcg, gfp);\n",
             "\tmemcg = charge_target(mm);\n\tif (fatal_signal_pending(current)) {\n"
             "\t\tcss_put(&memcg->css);\n\t\treturn -EINTR;\n\t}\n"
             "\tret = charge_memcg(folio, memcg, gfp);\n"),
            (MEMCG, "int __mem_cgroup_charge(struct folio *folio, struct mm_struct *mm, gfp_t gfp)\n",
             "static struct mem_cgroup *charge_target(struct mm_struct *mm)\n{\n"
             "\treturn get_mem_cgroup_from_mm(mm);\n}\n\n"
             "int __mem_cgroup_charge(struct folio *folio, struct mm_struct *mm, gfp_t gfp)\n"),
        ),
        {"refcount-imbalance": "ok-02"},
    ),
    Spec(
        "get-through-two-helpers",
        "memcg: split the memcg lookup of __mem_cgroup_charge() into two helpers",
        "charge_target() returns what lookup_memcg() returns, which is the reference\n"
        "get_mem_cgroup_from_mm() took; the early return leaks it. Both helpers are in\n"
        "the patch: the engine follows helpers of helpers.",
        (
            (MEMCG, "\tmemcg = get_mem_cgroup_from_mm(mm);\n\tret = charge_memcg(folio, memcg, gfp);\n",
             "\tmemcg = charge_target(mm);\n\tif (fatal_signal_pending(current))\n\t\treturn -EINTR;\n"
             "\tret = charge_memcg(folio, memcg, gfp);\n"),
            (MEMCG, "int __mem_cgroup_charge(struct folio *folio, struct mm_struct *mm, gfp_t gfp)\n",
             "static struct mem_cgroup *lookup_memcg(struct mm_struct *mm)\n{\n"
             "\treturn get_mem_cgroup_from_mm(mm);\n}\n\n"
             "static struct mem_cgroup *charge_target(struct mm_struct *mm)\n{\n"
             "\tstruct mem_cgroup *memcg = lookup_memcg(mm);\n\n"
             "\treturn memcg;\n}\n\n"
             "int __mem_cgroup_charge(struct folio *folio, struct mm_struct *mm, gfp_t gfp)\n"),
        ),
        {"refcount-imbalance": "bad-04"},
    ),
    Spec(
        "tree-get-through-untouched-helper",
        "memcg: add mem_cgroup_oom_group_killable()",
        "mem_cgroup_get_oom_group(), untouched by the patch, returns a css reference\n"
        "(\"Caller has to call mem_cgroup_put() on the returned non-NULL memcg\");\n"
        "the early return for a group with the OOM killer disabled leaks it. Only\n"
        "visible with the tree: the hunk does not show the helper.",
        (
            (MEMCG, "void mem_cgroup_print_oom_group(struct mem_cgroup *memcg)\n",
             OOM_GROUP_KILLABLE.replace("@@LEAK@@", "\t\treturn false;\n")
             + "void mem_cgroup_print_oom_group(struct mem_cgroup *memcg)\n"),
        ),
        {"refcount-imbalance": "bad-05"},
    ),
    Spec(
        "tree-untouched-helper-reference-put",
        "memcg: add mem_cgroup_oom_group_killable()",
        "The css reference mem_cgroup_get_oom_group() returns is put on every path.",
        (
            (MEMCG, "void mem_cgroup_print_oom_group(struct mem_cgroup *memcg)\n",
             OOM_GROUP_KILLABLE.replace("@@LEAK@@", "\t\tkillable = false;\n")
             + "void mem_cgroup_print_oom_group(struct mem_cgroup *memcg)\n"),
        ),
        {"refcount-imbalance": "ok-03"},
    ),
    Spec(
        "read-old-after-store",
        "memcg: add mm_move_memcg()",
        "Move an mm to a new memcg, dropping the old reference after a grace period.",
        (after_get_from_mm("""static void mm_set_memcg(struct mm_struct *mm, struct mem_cgroup *memcg)
{
\tcss_get(&memcg->css);
\trcu_assign_pointer(mm->memcg, memcg);
}

static void mm_move_memcg(struct mm_struct *mm, struct mem_cgroup *memcg)
{
\tstruct mem_cgroup *old_memcg;

\tmm_set_memcg(mm, memcg);
\told_memcg = rcu_dereference_protected(mm->memcg, 1);
\tsynchronize_rcu();
\tif (old_memcg)
\t\tcss_put(&old_memcg->css);
}
"""),),
        {"ref-pointer-swap-releases-new": "bad-01"},
    ),
    Spec(
        "read-old-before-store",
        "memcg: add mm_move_memcg()",
        "Move an mm to a new memcg, dropping the old reference after a grace period.",
        (after_get_from_mm("""static void mm_set_memcg(struct mm_struct *mm, struct mem_cgroup *memcg)
{
\tcss_get(&memcg->css);
\trcu_assign_pointer(mm->memcg, memcg);
}

static void mm_move_memcg(struct mm_struct *mm, struct mem_cgroup *memcg)
{
\tstruct mem_cgroup *old_memcg;

\told_memcg = rcu_dereference_protected(mm->memcg, 1);
\tmm_set_memcg(mm, memcg);
\tsynchronize_rcu();
\tif (old_memcg)
\t\tcss_put(&old_memcg->css);
}
"""),),
        {"ref-pointer-swap-releases-new": "ok-01"},
    ),
    Spec(
        "xchg-result-dropped",
        "memcg: add mm_update_memcg()",
        "Publish a new memcg for an mm.",
        (after_get_from_mm("""static void mm_update_memcg(struct mm_struct *mm, struct mem_cgroup *memcg)
{
\tcss_get(&memcg->css);
\txchg(&mm->memcg, memcg);
}
"""),),
        {"ref-pointer-xchg-discarded": "bad-01"},
    ),
    Spec(
        "xchg-old-put",
        "memcg: add mm_update_memcg()",
        "Publish a new memcg for an mm and drop the old one after a grace period.",
        (after_get_from_mm("""static void mm_update_memcg(struct mm_struct *mm, struct mem_cgroup *memcg)
{
\tstruct mem_cgroup *old;

\tcss_get(&memcg->css);
\told = xchg(&mm->memcg, memcg);
\tif (old) {
\t\tsynchronize_rcu();
\t\tcss_put(&old->css);
\t}
}
"""),),
        {"ref-pointer-xchg-discarded": "ok-01"},
    ),
    Spec(
        "delay-group-leader-keeps-owner",
        "mm: keep a zombie group leader as mm owner",
        "A delayed group leader stays around; do not look for a new owner.",
        (
            ("kernel/exit.c", "\tif (mm->owner != p)\n\t\treturn;\n",
             "\tif (mm->owner != p)\n\t\treturn;\n\tif (delay_group_leader(p))\n\t\treturn;\n"),
        ),
        {"leader-assumption": "bad-01"},
    ),
    Spec(
        "can-attach-leader-only",
        "memcg: immigrate charges only when a threadgroup leader is moved",
        "Adapted to 6.1 from Tejun Heo's 2015 patch 3/7.",
        (
            (MEMCG, "\tfrom = mem_cgroup_from_task(p);\n\n\tVM_BUG_ON(from == memcg);\n",
             "\tif (!thread_group_leader(p))\n\t\treturn 0;\n\n"
             "\tfrom = mem_cgroup_from_task(p);\n\n\tVM_BUG_ON(from == memcg);\n"),
        ),
        {"leader-assumption": "bad-02"},
    ),
    Spec(
        "can-attach-comment",
        "memcg: fix a comment in mem_cgroup_can_attach()",
        "Grammar.",
        (
            (MEMCG, "\t/* We move charges only when we move a owner of the mm */\n",
             "\t/* We move charges only when we move the owner of the mm */\n"),
        ),
        {"leader-assumption": "ok-01", "mm-owner-leftovers": "ok-01"},
    ),
    Spec(
        "count-sharers-on-exit",
        "mm: report how many processes share an exiting mm",
        "Count the other users of the mm when its owner exits.",
        (
            ("kernel/exit.c", "/*\n * A task is exiting.   If it owned this mm, find a new owner for the mm.\n */\n",
             "static int mm_count_sharers(struct mm_struct *mm)\n{\n\tstruct task_struct *g;\n\tint n = 0;\n\n"
             "\trcu_read_lock();\n\tfor_each_process(g) {\n\t\tif (g->mm == mm)\n\t\t\tn++;\n\t}\n"
             "\trcu_read_unlock();\n\treturn n;\n}\n\n"
             "/*\n * A task is exiting.   If it owned this mm, find a new owner for the mm.\n */\n"),
        ),
        {"tasklist-scan-in-hot-path": "bad-01"},
    ),
    Spec(
        "move-thread-walk-into-helper",
        "memcg: mm_update_next_owner: move for_each_thread() into a helper",
        "Adapted to 6.1 from Oleg Nesterov's 2024 patch 2/2: no new scan, the walk moves.",
        (
            ("kernel/exit.c", "\t\tfor_each_thread(g, c) {\n\t\t\tif (c->mm == mm)\n\t\t\t\tgoto assign_new_owner;\n"
             "\t\t\tif (c->mm)\n\t\t\t\tbreak;\n\t\t}\n",
             "\t\tc = find_thread_with_mm(g, mm);\n\t\tif (c)\n\t\t\tgoto assign_new_owner;\n"),
            ("kernel/exit.c", "/*\n * A task is exiting.   If it owned this mm, find a new owner for the mm.\n */\n",
             "static struct task_struct *find_thread_with_mm(struct task_struct *g,\n"
             "\t\t\t\t\t       struct mm_struct *mm)\n{\n\tstruct task_struct *c;\n\n"
             "\tfor_each_thread(g, c) {\n\t\tif (c->mm == mm)\n\t\t\treturn c;\n\t\tif (c->mm)\n\t\t\tbreak;\n\t}\n"
             "\treturn NULL;\n}\n\n"
             "/*\n * A task is exiting.   If it owned this mm, find a new owner for the mm.\n */\n"),
        ),
        {"tasklist-scan-in-hot-path": "ok-01"},
    ),
    Spec(
        "plain-owner-read",
        "mm: drop a READ_ONCE() in mem_cgroup_attach()",
        "task_lock() is held, the READ_ONCE() looks redundant.",
        ((MEMCG, "\tif (task->mm && READ_ONCE(task->mm->owner) == task)\n",
          "\tif (task->mm && task->mm->owner == task)\n"),),
        {"rcu-pointer-plain-access": "bad-01"},
    ),
    Spec(
        "rcu-access-pointer",
        "mm: use rcu_access_pointer() for the owner check in mem_cgroup_attach()",
        "Only the pointer value is compared.",
        ((MEMCG, "\tif (task->mm && READ_ONCE(task->mm->owner) == task)\n",
          "\tif (task->mm && rcu_access_pointer(task->mm->owner) == task)\n"),),
        {"rcu-pointer-plain-access": "ok-01"},
    ),
    Spec(
        "css-get-after-rcu-load",
        "memcg: simplify get_mem_cgroup_from_objcg()",
        "The objcg pins its memcg; a plain css_get() is enough. (It is not: see 027.)",
        ((MEMCG_H, "retry:\n\tmemcg = obj_cgroup_memcg(objcg);\n\tif (unlikely(!css_tryget(&memcg->css)))\n\t\tgoto retry;\n",
          "\tmemcg = obj_cgroup_memcg(objcg);\n\tcss_get(&memcg->css);\n"),),
        {"css-get-under-rcu": "bad-01"},
    ),
    Spec(
        "css-tryget-retry",
        "memcg: document the retry in get_mem_cgroup_from_objcg()",
        "Say why css_get() is not enough here.",
        ((MEMCG_H, "retry:\n\tmemcg = obj_cgroup_memcg(objcg);\n\tif (unlikely(!css_tryget(&memcg->css)))\n\t\tgoto retry;\n",
          "retry:\n\tmemcg = obj_cgroup_memcg(objcg);\n\t/* RCU keeps the memory, not the refcount: tryget */\n"
          "\tif (unlikely(!css_tryget(&memcg->css)))\n\t\tgoto retry;\n"),),
        {"css-get-under-rcu": "ok-01"},
    ),
    Spec(
        "inherit-memcg-in-dup-mm",
        "fork: inherit the parent's memcg in dup_mm()",
        "Charge the new mm to the memcg of the parent's mm.",
        (("kernel/fork.c", "\tmemcpy(mm, oldmm, sizeof(*mm));\n\n\tif (!mm_init(mm, tsk, mm->user_ns))\n\t\tgoto fail_nomem;\n",
          "\tmemcpy(mm, oldmm, sizeof(*mm));\n\n\tif (!mm_init(mm, tsk, mm->user_ns))\n\t\tgoto fail_nomem;\n\n"
          "\tmm_inherit_memcg(mm, oldmm);\n"),),
        {"charge-before-cgroup-settled": "bad-01"},
    ),
    Spec(
        "dup-mm-no-charge",
        "fork: reset hiwater marks after dup_mmap()",
        "Cosmetic reordering in dup_mm().",
        (("kernel/fork.c", "\tmm->hiwater_rss = get_mm_rss(mm);\n\tmm->hiwater_vm = mm->total_vm;\n",
          "\tmm->hiwater_vm = mm->total_vm;\n\tmm->hiwater_rss = get_mm_rss(mm);\n"),),
        {"charge-before-cgroup-settled": "ok-01"},
    ),
    Spec(
        "owner-field-removed-user-left",
        "memcg: replace mm->owner with mm->memcg",
        "Remove the owner field; get_mem_cgroup_from_mm() reads mm->memcg.",
        (
            (MM_TYPES, OWNER_FIELD, MEMCG_FIELD),
            (MEMCG, "\t\tmemcg = mem_cgroup_from_task(rcu_dereference(mm->owner));\n\t\tif (unlikely(!memcg))\n\t\t\tmemcg = root_mem_cgroup;\n\t} while (!css_tryget(&memcg->css));\n",
             "\t\tmemcg = rcu_dereference(mm->memcg);\n\t\tif (unlikely(!memcg))\n\t\t\tmemcg = root_mem_cgroup;\n\t} while (!css_tryget(&memcg->css));\n"),
            (MEMCG, "\t/* We move charges only when we move a owner of the mm */\n",
             "\t/* We move charges only when we move the owner of the mm */\n"),
        ),
        {"mm-owner-leftovers": "bad-01"},
    ),
    Spec(
        "owner-field-removed-users-converted",
        "memcg: replace mm->owner with mm->memcg",
        "Remove the owner field and convert the users shown here.",
        (
            (MM_TYPES, OWNER_FIELD, MEMCG_FIELD),
            (MEMCG, "\t\tmemcg = mem_cgroup_from_task(rcu_dereference(mm->owner));\n\t\tif (unlikely(!memcg))\n\t\t\tmemcg = root_mem_cgroup;\n\t} while (!css_tryget(&memcg->css));\n",
             "\t\tmemcg = rcu_dereference(mm->memcg);\n\t\tif (unlikely(!memcg))\n\t\t\tmemcg = root_mem_cgroup;\n\t} while (!css_tryget(&memcg->css));\n"),
        ),
        {"mm-owner-leftovers": "ok-02"},
    ),
    Spec(
        "expand-maps-goto-out-of-walk",
        "memcg: expand the per-memcg shrinker maps",
        "Adapted to 6.1 from Kirill Tkhai's 2018 memcg_expand_shrinker_maps() (006).",
        (after_get_from_mm("""static int memcg_expand_maps(int size, int old_size)
{
\tstruct mem_cgroup *memcg;
\tint ret = 0;

\tfor_each_mem_cgroup(memcg) {
\t\tif (mem_cgroup_is_root(memcg))
\t\t\tcontinue;
\t\tret = memcg_expand_one_map(memcg, size, old_size);
\t\tif (ret)
\t\t\tgoto unlock;
\t}
unlock:
\treturn ret;
}
"""),),
        {"memcg-iter-early-exit": "bad-01"},
    ),
    Spec(
        "expand-maps-iter-break",
        "memcg: expand the per-memcg shrinker maps",
        "As 022 fixed it: break the walk before leaving it.",
        (after_get_from_mm("""static int memcg_expand_maps(int size, int old_size)
{
\tstruct mem_cgroup *memcg;
\tint ret = 0;

\tfor_each_mem_cgroup(memcg) {
\t\tif (mem_cgroup_is_root(memcg))
\t\t\tcontinue;
\t\tret = memcg_expand_one_map(memcg, size, old_size);
\t\tif (ret) {
\t\t\tmem_cgroup_iter_break(NULL, memcg);
\t\t\tgoto unlock;
\t\t}
\t}
unlock:
\treturn ret;
}
"""),),
        {"memcg-iter-early-exit": "ok-02"},
    ),
    Spec(
        "tree-scan-tasks-break-without-iter-break",
        "memcg: simplify the early exit of mem_cgroup_scan_tasks()",
        "Just break out of the walk.",
        ((MEMCG, "\t\tif (ret) {\n\t\t\tmem_cgroup_iter_break(memcg, iter);\n\t\t\tbreak;\n\t\t}\n\t}\n\treturn ret;\n",
          "\t\tif (ret)\n\t\t\tbreak;\n\t}\n\treturn ret;\n"),),
        {"memcg-iter-early-exit": "bad-02"},
    ),
    Spec(
        "tree-scan-tasks-resched",
        "memcg: reschedule between memcgs in mem_cgroup_scan_tasks()",
        "Large hierarchies can take long.",
        ((MEMCG, "\t\tif (ret) {\n\t\t\tmem_cgroup_iter_break(memcg, iter);\n\t\t\tbreak;\n\t\t}\n\t}\n\treturn ret;\n",
          "\t\tif (ret) {\n\t\t\tmem_cgroup_iter_break(memcg, iter);\n\t\t\tbreak;\n\t\t}\n\t\tcond_resched();\n\t}\n\treturn ret;\n"),),
        {"memcg-iter-early-exit": "ok-01"},
    ),
    Spec(
        "return-inside-rcu",
        "memcg: skip the event count for tasks without a memcg",
        "Return early when the owner has no memcg.",
        ((MEMCG_H, "\tmemcg = mem_cgroup_from_task(rcu_dereference(mm->owner));\n\tif (likely(memcg))\n\t\tcount_memcg_events(memcg, idx, 1);\n\trcu_read_unlock();\n",
          "\tmemcg = mem_cgroup_from_task(rcu_dereference(mm->owner));\n\tif (!memcg)\n\t\treturn;\n"
          "\tcount_memcg_events(memcg, idx, 1);\n\trcu_read_unlock();\n"),),
        {"rcu-lock-imbalance": "bad-01"},
    ),
    Spec(
        "count-root-instead",
        "memcg: count events of owner-less mms in the root memcg",
        "Do not lose the event.",
        ((MEMCG_H, "\tmemcg = mem_cgroup_from_task(rcu_dereference(mm->owner));\n\tif (likely(memcg))\n\t\tcount_memcg_events(memcg, idx, 1);\n\trcu_read_unlock();\n",
          "\tmemcg = mem_cgroup_from_task(rcu_dereference(mm->owner));\n\tif (!memcg) {\n"
          "\t\trcu_read_unlock();\n\t\tcount_memcg_events(root_mem_cgroup, idx, 1);\n\t\treturn;\n\t}\n"
          "\tcount_memcg_events(memcg, idx, 1);\n\trcu_read_unlock();\n"),),
        {"rcu-lock-imbalance": "ok-01"},
    ),
    Spec(
        "task-mm-owner-unchecked",
        "memcg: add mem_cgroup_from_task_mm()",
        "Look up the memcg that pays for a task's mm.",
        ((MEMCG, "EXPORT_SYMBOL(mem_cgroup_from_task);\n",
          "EXPORT_SYMBOL(mem_cgroup_from_task);\n\nstatic struct mem_cgroup *mem_cgroup_from_task_mm(struct task_struct *p)\n{\n"
          "\treturn mem_cgroup_from_task(rcu_dereference(p->mm->owner));\n}\n"),),
        {"foreign-mm-deref": "bad-01"},
    ),
    Spec(
        "task-mm-checked",
        "memcg: add mem_cgroup_from_task_mm()",
        "Look up the memcg that pays for a task's mm; kernel threads have none.",
        ((MEMCG, "EXPORT_SYMBOL(mem_cgroup_from_task);\n",
          "EXPORT_SYMBOL(mem_cgroup_from_task);\n\nstatic struct mem_cgroup *mem_cgroup_from_task_mm(struct task_struct *p)\n{\n"
          "\tif (!p->mm)\n\t\treturn NULL;\n"
          "\treturn mem_cgroup_from_task(rcu_dereference(p->mm->owner));\n}\n"),),
        {"foreign-mm-deref": "ok-01"},
    ),
    Spec(
        "region-shares-caller-reference",
        "hugetlb_cgroup: let the caller's reference cover all file_regions",
        "The caller holds a reference for the whole reservation; do not take one per region.",
        (
            ("mm/hugetlb.c", "\tnrg->css = rg->css;\n\tif (rg->css)\n\t\tcss_get(rg->css);\n",
             "\tnrg->css = rg->css;\n\tif (nrg->css)\n\t\tcss_get(nrg->css);\n"),
            ("mm/hugetlb.c", "\t\tnrg->css = &h_cg->css;\n\t\t/*\n\t\t * The caller will hold exactly one h_cg->css reference for the\n"
             "\t\t * whole contiguous reservation region. But this area might be\n"
             "\t\t * scattered when there are already some file_regions reside in\n"
             "\t\t * it. As a result, many file_regions may share only one css\n"
             "\t\t * reference. In order to ensure that one file_region must hold\n"
             "\t\t * exactly one h_cg->css reference, we should do css_get for\n"
             "\t\t * each file_region and leave the reference held by caller\n"
             "\t\t * untouched.\n\t\t */\n\t\tcss_get(&h_cg->css);\n",
             "\t\tnrg->css = &h_cg->css;\n"),
        ),
        {"ref-field-ownership": "bad-01"},
    ),
    Spec(
        "region-takes-own-reference",
        "hugetlb_cgroup: test the copied css in copy_hugetlb_cgroup_uncharge_info()",
        "Cosmetic: test the field that was just written.",
        (
            ("mm/hugetlb.c", "\tnrg->css = rg->css;\n\tif (rg->css)\n\t\tcss_get(rg->css);\n",
             "\tnrg->css = rg->css;\n\tif (nrg->css)\n\t\tcss_get(nrg->css);\n"),
            ("mm/hugetlb.c", "\t\t * untouched.\n\t\t */\n\t\tcss_get(&h_cg->css);\n",
             "\t\t * untouched (see 014).\n\t\t */\n\t\tcss_get(&h_cg->css);\n"),
        ),
        {"ref-field-ownership": "ok-01"},
    ),
    Spec(
        "css-get-on-task-lookup",
        "memcg: add get_task_memcg()",
        "Return a referenced memcg of a task.",
        (after_get_from_mm("""static struct mem_cgroup *get_task_memcg(struct task_struct *p)
{
\tstruct mem_cgroup *memcg;

\tmemcg = mem_cgroup_from_task(p);
\tcss_get(&memcg->css);
\treturn memcg;
}
"""),),
        {"css-get-maybe-null": "bad-01"},
    ),
    Spec(
        "css-get-after-null-check",
        "memcg: add get_task_memcg()",
        "Return a referenced memcg of a task, root when it has none.",
        (after_get_from_mm("""static struct mem_cgroup *get_task_memcg(struct task_struct *p)
{
\tstruct mem_cgroup *memcg;

\tmemcg = mem_cgroup_from_task(p);
\tif (!memcg)
\t\treturn root_mem_cgroup;
\tcss_get(&memcg->css);
\treturn memcg;
}
"""),),
        {"css-get-maybe-null": "ok-01"},
    ),
)

# Specs of the context-engine rules live beside (this file is long enough).
from fixture_specs_context import SPECS as _CONTEXT_SPECS  # noqa: E402

SPECS = SPECS + _CONTEXT_SPECS

from fixture_specs_locking import SPECS as _LOCKING_SPECS  # noqa: E402

SPECS = SPECS + _LOCKING_SPECS

# ...and those of the generalised reference and charge rules.
from fixture_specs_refs import SPECS as _REF_SPECS  # noqa: E402

SPECS = SPECS + _REF_SPECS

# References returned by functions the tree facts learn (get_proc_task(), get_swap_device()).
from fixture_specs_returns import SPECS as _RETURN_SPECS  # noqa: E402

SPECS = SPECS + _RETURN_SPECS

# ...and those of the locking conventions the tree states by majority.
from fixture_specs_lockfacts import SPECS as _LOCKFACTS_SPECS  # noqa: E402

SPECS = SPECS + _LOCKFACTS_SPECS

# ...and the plain C slips (a comparison for a shift, an unsigned tested negative).
from fixture_specs_cbugs import SPECS as _CBUG_SPECS  # noqa: E402

SPECS = SPECS + _CBUG_SPECS

# ...and those of the generalised wrong-cgroup-charge rules (session 12).
from fixture_specs_charging import SPECS as _CHARGING_SPECS  # noqa: E402

SPECS = SPECS + _CHARGING_SPECS

# ...and the calls through ops tables (session 12).
from fixture_specs_ops import SPECS as _OPS_SPECS  # noqa: E402

SPECS = SPECS + _OPS_SPECS
