"""Fixture edits for the locking conventions the kernel tree states by majority
(reviewbot/facts/fieldlocks.py): a field written without the lock its other writers hold,
and a lock taken with interrupts enabled that the rest of the tree only takes with them
disabled. Written here, in cgroup and mm code of Linux 6.1; see fixture_specs.py."""

from __future__ import annotations

from fixture_specs_base import Spec

CPUSET = "kernel/cgroup/cpuset.c"
FREEZER = "kernel/cgroup/legacy_freezer.c"
HUGETLB = "mm/hugetlb.c"
SHMEM = "mm/shmem.c"

SUBPOOL_GET = (
    "\tif (!spool)\n\t\treturn ret;\n\n\tspin_lock_irq(&spool->lock);\n\n"
    "\tif (spool->max_hpages != -1) {\t\t/* maximum size accounting */\n"
    "\t\tif ((spool->used_hpages + delta) <= spool->max_hpages)"
)
FREEZER_OFFLINE = (
    "\tstruct freezer *freezer = css_freezer(css);\n\n\tcpus_read_lock();\n"
    "\tmutex_lock(&freezer_mutex);\n\n\tif (freezer->state & CGROUP_FREEZING)\n"
    "\t\tstatic_branch_dec_cpuslocked"
)
OFFLINE_FN = (
    "static void freezer_css_offline(struct cgroup_subsys_state *css)\n{\n"
    "\tstruct freezer *freezer = css_freezer(css);\n\n\tcpus_read_lock();\n"
    "\tmutex_lock(&freezer_mutex);\n\n\tif (freezer->state & CGROUP_FREEZING)\n"
    "\t\tstatic_branch_dec_cpuslocked(&freezer_active);\n\n\tfreezer->state = 0;\n"
)
DEAD_HELPER = "static void freezer_mark_dead(struct freezer *freezer)\n{\n\tfreezer->state &= ~CGROUP_FREEZER_ONLINE;\n}\n\n"
SHMEM_CHARGE = (
    "\tspin_lock_irqsave(&info->lock, flags);\n\tinfo->alloced += pages;\n"
    "\tinode->i_blocks += pages * BLOCKS_PER_PAGE;\n\tshmem_recalc_inode(inode);\n"
    "\tspin_unlock_irqrestore(&info->lock, flags);\n"
)
SHMEM_CHARGED = "\tinfo->alloced += pages;\n\tinode->i_blocks += pages * BLOCKS_PER_PAGE;\n\tshmem_recalc_inode(inode);\n"
CGROUP = "kernel/cgroup/cgroup.c"
MAX_DEPTH_LOCKED = (
    "\tcgrp = cgroup_kn_lock_live(of->kn, false);\n\tif (!cgrp)\n\t\treturn -ENOENT;\n\n"
    "\tcgrp->max_depth = depth;\n\n\tcgroup_kn_unlock(of->kn);\n\n\treturn nbytes;\n}\n\n"
    "static int cgroup_events_show"
)
NODEMASK = "\tspin_lock_irq(&callback_lock);\n\tcs->mems_allowed = trialcs->mems_allowed;\n\tspin_unlock_irq(&callback_lock);\n"

SPECS: tuple[Spec, ...] = (
    # --- field-write-unlocked ---------------------------------------------------------------
    Spec(
        "subpool-reserve-fast-path",
        "hugetlb: use up a subpool's reserve without its lock",
        "When the subpool has no maximum and enough reserved pages, take them at once.",
        ((HUGETLB, SUBPOOL_GET,
          "\tif (!spool)\n\t\treturn ret;\n\n"
          "\tif (spool->max_hpages == -1 && delta <= spool->rsv_hpages) {\n"
          "\t\tspool->rsv_hpages -= delta;\n\t\treturn 0;\n\t}\n\n"
          "\tspin_lock_irq(&spool->lock);\n\n"
          "\tif (spool->max_hpages != -1) {\t\t/* maximum size accounting */\n"
          "\t\tif ((spool->used_hpages + delta) <= spool->max_hpages)"),),
        {"field-write-unlocked": "bad-01-tree"},
    ),
    Spec(
        "subpool-reserve-fast-path-locked",
        "hugetlb: use up a subpool's reserve first",
        "When the subpool has no maximum and enough reserved pages, take them at once.",
        ((HUGETLB, SUBPOOL_GET,
          "\tif (!spool)\n\t\treturn ret;\n\n\tspin_lock_irq(&spool->lock);\n"
          "\tif (spool->max_hpages == -1 && delta <= spool->rsv_hpages) {\n"
          "\t\tspool->rsv_hpages -= delta;\n\t\tspin_unlock_irq(&spool->lock);\n"
          "\t\treturn 0;\n\t}\n\n"
          "\tif (spool->max_hpages != -1) {\t\t/* maximum size accounting */\n"
          "\t\tif ((spool->used_hpages + delta) <= spool->max_hpages)"),),
        {"field-write-unlocked": "ok-01-tree"},
    ),
    Spec(
        "freezer-offline-clears-online-first",
        "cgroup/freezer: mark a freezer offline before taking the locks",
        "State changes racing with the offlining can then skip it early.",
        ((FREEZER, FREEZER_OFFLINE,
          "\tstruct freezer *freezer = css_freezer(css);\n\n"
          "\tfreezer->state &= ~CGROUP_FREEZER_ONLINE;\n\tcpus_read_lock();\n"
          "\tmutex_lock(&freezer_mutex);\n\n\tif (freezer->state & CGROUP_FREEZING)\n"
          "\t\tstatic_branch_dec_cpuslocked"),),
        {"field-write-unlocked": "bad-02-tree"},
    ),
    Spec(
        "freezer-offline-clears-online-marked",
        "cgroup/freezer: mark a freezer offline before taking the locks",
        "State changes racing with the offlining can then skip it early; the update is a\n"
        "single marked store.",
        ((FREEZER, FREEZER_OFFLINE,
          "\tstruct freezer *freezer = css_freezer(css);\n\n"
          "\tWRITE_ONCE(freezer->state, freezer->state & ~CGROUP_FREEZER_ONLINE);\n"
          "\tcpus_read_lock();\n\tmutex_lock(&freezer_mutex);\n\n"
          "\tif (freezer->state & CGROUP_FREEZING)\n\t\tstatic_branch_dec_cpuslocked"),),
        {"field-write-unlocked": "ok-02-tree"},
    ),
    Spec(
        "freezer-dead-helper-unlocked",
        "cgroup/freezer: mark a freezer dead before taking the locks",
        "A small helper clears the online bit first thing in the offline path.",
        ((FREEZER, OFFLINE_FN, DEAD_HELPER + OFFLINE_FN.replace(
            "\tcpus_read_lock();\n", "\tfreezer_mark_dead(freezer);\n\tcpus_read_lock();\n")),),
        {"field-write-unlocked": "bad-03-tree"},
    ),
    Spec(
        "freezer-dead-helper-asserts",
        "cgroup/freezer: mark a freezer dead in a helper",
        "The helper runs under freezer_mutex, and says so.",
        ((FREEZER, OFFLINE_FN, DEAD_HELPER.replace("{\n", "{\n\tlockdep_assert_held(&freezer_mutex);\n", 1)
          + OFFLINE_FN.replace("\tfreezer->state = 0;\n", "\tfreezer_mark_dead(freezer);\n\tfreezer->state = 0;\n")),),
        {"field-write-unlocked": "ok-03-tree"},
    ),
    # --- irq-unsafe-lock: by the tree's majority ---------------------------------------------
    Spec(
        "shmem-charge-plain-info-lock",
        "shmem: interrupts need not be off to charge an inode",
        "shmem_charge() runs in process context.",
        ((SHMEM, SHMEM_CHARGE,
          "\tspin_lock(&info->lock);\n" + SHMEM_CHARGED + "\tspin_unlock(&info->lock);\n"),),
        {"irq-unsafe-lock": "bad-02-tree"},
    ),
    Spec(
        "shmem-charge-irq-info-lock",
        "shmem: charge an inode with interrupts disabled unconditionally",
        "shmem_charge() runs in process context, where interrupts are on.",
        ((SHMEM, SHMEM_CHARGE,
          "\tspin_lock_irq(&info->lock);\n" + SHMEM_CHARGED + "\tspin_unlock_irq(&info->lock);\n"),),
        {"irq-unsafe-lock": "ok-02-tree"},
    ),
    Spec(
        "nodemask-plain-callback-lock",
        "cgroup/cpuset: publish mems_allowed under a plain callback_lock",
        "Writing the cpuset's memory nodes happens in process context only.",
        ((CPUSET, NODEMASK,
          "\tspin_lock(&callback_lock);\n\tcs->mems_allowed = trialcs->mems_allowed;\n"
          "\tspin_unlock(&callback_lock);\n"),),
        {"irq-unsafe-lock": "bad-03-tree"},
    ),
    # --- lock-imbalance: a helper that returns holding a lock only on success ---------------
    Spec(
        "max-depth-below-descendants-returns-locked",
        "cgroup: refuse a max depth below the current nesting",
        "Lowering cgroup.max.depth under existing descendants cannot take effect.",
        ((CGROUP, MAX_DEPTH_LOCKED, MAX_DEPTH_LOCKED.replace(
            "\tcgrp->max_depth = depth;\n", "\tif (depth < cgrp->nr_descendants)\n\t\treturn -EBUSY;\n\n"
            "\tcgrp->max_depth = depth;\n")),),
        {"lock-imbalance": "bad-05-tree"},
    ),
    Spec(
        "max-depth-below-descendants-unlocks",
        "cgroup: refuse a max depth below the current nesting",
        "Lowering cgroup.max.depth under existing descendants cannot take effect.",
        ((CGROUP, MAX_DEPTH_LOCKED, MAX_DEPTH_LOCKED.replace(
            "\tcgrp->max_depth = depth;\n", "\tif (depth < cgrp->nr_descendants) {\n"
            "\t\tcgroup_kn_unlock(of->kn);\n\t\treturn -EBUSY;\n\t}\n\n\tcgrp->max_depth = depth;\n")),),
        {"lock-imbalance": "ok-04-tree"},
    ),
)

# --- field-write-unlocked: lists the tree links, unlinks and walks under a lock ---------------
CGROUP_FREEZER = "kernel/cgroup/freezer.c"
FREEZE_TASK = "static void cgroup_freeze_task(struct task_struct *task, bool freeze)\n{\n"
FROZEN_COUNT = (
    "/* How many tasks of a css_set are frozen. */\n"
    "static int cset_frozen_tasks(struct css_set *cset)\n{\n\tstruct task_struct *task;\n\tint n = 0;\n\n"
    "@@LOCK@@\tlist_for_each_entry(task, &cset->tasks, cg_list)\n\t\tif (task->frozen)\n\t\t\tn++;\n"
    "@@UNLOCK@@\treturn n;\n}\n\n"
)
UNLINK = (
    "/* Take a task that is leaving off its css_set's list. */\n"
    "static void cset_unlink_task(struct task_struct *task)\n{\n"
    "@@LOCK@@\tlist_del_init(&task->cg_list);\n@@UNLOCK@@}\n\n"
)
LIST_SPECS: tuple[Spec, ...] = (
    Spec(
        "freezer-count-frozen-unlocked",
        "cgroup/freezer: count the frozen tasks of a css_set",
        "A helper for the freezer's statistics.",
        ((CGROUP_FREEZER, FREEZE_TASK,
          FROZEN_COUNT.replace("@@LOCK@@", "").replace("@@UNLOCK@@", "") + FREEZE_TASK),),
        {"field-write-unlocked": "bad-04-tree"},
    ),
    Spec(
        "freezer-count-frozen-locked",
        "cgroup/freezer: count the frozen tasks of a css_set",
        "A helper for the freezer's statistics, under css_set_lock like every walk of the list.",
        ((CGROUP_FREEZER, FREEZE_TASK,
          FROZEN_COUNT.replace("@@LOCK@@", "\tspin_lock_irq(&css_set_lock);\n")
          .replace("@@UNLOCK@@", "\tspin_unlock_irq(&css_set_lock);\n") + FREEZE_TASK),),
        {"field-write-unlocked": "ok-04-tree"},
    ),
    Spec(
        "freezer-unlink-task-unlocked",
        "cgroup/freezer: unlink a leaving task",
        "A helper that takes a task off its css_set's task list.",
        ((CGROUP_FREEZER, FREEZE_TASK,
          UNLINK.replace("@@LOCK@@", "").replace("@@UNLOCK@@", "") + FREEZE_TASK),),
        {"field-write-unlocked": "bad-05-tree"},
    ),
    Spec(
        "freezer-unlink-task-asserts",
        "cgroup/freezer: unlink a leaving task",
        "A helper that takes a task off its css_set's task list; its callers hold css_set_lock.",
        ((CGROUP_FREEZER, FREEZE_TASK,
          UNLINK.replace("@@LOCK@@", "\tlockdep_assert_held(&css_set_lock);\n").replace("@@UNLOCK@@", "")
          + FREEZE_TASK),),
        {"field-write-unlocked": "ok-05-tree"},
    ),
)
SPECS = SPECS + LIST_SPECS
