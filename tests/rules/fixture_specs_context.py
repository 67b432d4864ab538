"""Fixture edits for the ``context`` engine rules (locks and atomic sections).

Each is a change a patch author could plausibly send, written here, in memcg and cgroup
code of Linux 6.1; see fixture_specs.py for the format. ``-tree-`` fixtures need the
kernel tree's facts (a callee that sleeps or locks three calls down).
"""

from __future__ import annotations

from fixture_specs_base import Spec

MEMCG = "mm/memcontrol.c"
CGROUP = "kernel/cgroup/cgroup.c"
CPUSET = "kernel/cgroup/cpuset.c"
RSTAT = "kernel/cgroup/rstat.c"
SCHED_CORE = "kernel/sched/core.c"

OFFLINE_LOOP = (
    "\tspin_lock_irq(&memcg->event_list_lock);\n"
    "\tlist_for_each_entry_safe(event, tmp, &memcg->event_list, list) {\n"
    "\t\tlist_del_init(&event->list);\n"
    "\t\tschedule_work(&event->remove);\n"
    "\t}\n"
    "\tspin_unlock_irq(&memcg->event_list_lock);\n"
)
EVENT_LIST_ADD = (
    "\tspin_lock_irq(&memcg->event_list_lock);\n"
    "\tlist_add(&event->list, &memcg->event_list);\n"
    "\tspin_unlock_irq(&memcg->event_list_lock);\n"
)
RESIZE_INVARIANT = (
    "\t\tif (!limits_invariant) {\n"
    "\t\t\tmutex_unlock(&memcg_max_mutex);\n"
    "\t\t\tret = -EINVAL;\n"
    "\t\t\tbreak;\n"
    "\t\t}\n"
)
TASK_COUNT = (
    "\tspin_lock_irq(&css_set_lock);\n"
    "\tcount = __cgroup_task_count(cgrp);\n"
    "\tspin_unlock_irq(&css_set_lock);\n"
)
RSTAT_UPDATED_TAIL = (
    "\t\tcgrp = parent;\n"
    "\t}\n"
    "\n"
    "\traw_spin_unlock_irqrestore(cpu_lock, flags);\n"
)
TICK_TAIL = "\tperf_event_task_tick();\n"
RELAX_DOMAIN = "static int update_relax_domain_level(struct cpuset *cs, s64 val)\n"
RESMASK_SWITCH_END = (
    "\tdefault:\n"
    "\t\tretval = -EINVAL;\n"
    "\t\tbreak;\n"
    "\t}\n"
    "\n"
    "\tfree_cpuset(trialcs);\n"
)

EVENT_STRUCT = "struct mem_cgroup_event {\n"
EVENT_STRUCT_NAMED = "struct mem_cgroup_event {\n\t/* name of the control file, for debugging */\n\tconst char *name;\n"
RSTAT_DECL = "static DEFINE_SPINLOCK(cgroup_rstat_lock);\n"

# The start of a function its caller runs holding cgroup_rstat_lock (taken with
# spin_lock_irq() everywhere in rstat.c), as its lockdep_assert_held() says.
FLUSH_LOCKED_HEAD = "\tlockdep_assert_held(&cgroup_rstat_lock);\n\n\tfor_each_possible_cpu(cpu) {\n"
FLUSH_COUNT = (
    "\tlockdep_assert_held(&cgroup_rstat_lock);\n\n"
    "\t@@LOCK@@(&cgroup_rstat_stats_lock);\n"
    "\tcgroup_rstat_nr_flushes++;\n"
    "\t@@UNLOCK@@(&cgroup_rstat_stats_lock);\n\n"
    "\tfor_each_possible_cpu(cpu) {\n"
)
FLUSH_BUF = (
    "\tlockdep_assert_held(&cgroup_rstat_lock);\n\n"
    "\tif (!cgrp->rstat_flush_buf) {\n"
    "\t\tcgrp->rstat_flush_buf = kcalloc(nr_cpu_ids, sizeof(u64), @@GFP@@);\n"
    "\t\tif (!cgrp->rstat_flush_buf)\n"
    "\t\t\treturn;\n"
    "\t}\n\n"
    "\tfor_each_possible_cpu(cpu) {\n"
)

IOCOST = "block/blk-iocost.c"
# A prfill callback: blkcg_print_blkgs() calls it under spin_lock_irq(&blkg->q->queue_lock).
QOS_PRINT = "\tif (!dname)\n\t\treturn 0;\n\n\tseq_printf(sf, \"%s enable=%d ctrl=%s rpct"
QOS_PRINT_LOCKED = ("\tif (!dname)\n\t\treturn 0;\n\n\t/* a consistent snapshot against ioc_qos_write() */\n"
                    "\t@@LOCK@@(&ioc->lock);\n\tseq_printf(sf, \"%s enable=%d ctrl=%s rpct")
QOS_PRINT_TAIL = ("\t\t   ioc->params.qos[QOS_MAX] % 10000 / 100);\n\treturn 0;\n}\n\n"
                  "static int ioc_qos_show(")
MODEL_PRINT = "\tu64 *u = ioc->params.i_lcoefs;\n\n\tif (!dname)\n\t\treturn 0;\n"
MODEL_PRINT_NAMED = ("\tu64 *u = ioc->params.i_lcoefs;\n\tchar *model;\n\n\tif (!dname)\n\t\treturn 0;\n\n"
                     "\tmodel = kasprintf(@@GFP@@, \"%s\", ioc->user_cost_model ? \"user\" : \"auto\");\n"
                     "\tif (!model)\n\t\treturn 0;\n")

SPECS: tuple[Spec, ...] = (
    # --- sleep-in-atomic ---------------------------------------------------------------
    Spec(
        "offline-waits-for-event-removal",
        "memcg: remove events synchronously when the cgroup goes offline",
        "Wait for the removal work so that userspace sees the eventfd closed on rmdir.",
        ((MEMCG, OFFLINE_LOOP, OFFLINE_LOOP.replace(
            "\t\tlist_del_init(&event->list);\n",
            "\t\tflush_work(&event->remove);\n\t\tlist_del_init(&event->list);\n")),),
        {"sleep-in-atomic": "bad-01"},
    ),
    Spec(
        "event-name-allocated-under-lock",
        "memcg: remember the name of each registered event",
        "Keep the control file name for debugging.",
        ((MEMCG, EVENT_STRUCT, EVENT_STRUCT_NAMED),
         (MEMCG, EVENT_LIST_ADD, EVENT_LIST_ADD.replace(
            "\tlist_add(&event->list, &memcg->event_list);\n",
            "\tevent->name = kstrdup(cfile.file->f_path.dentry->d_name.name, GFP_KERNEL);\n"
            "\tlist_add(&event->list, &memcg->event_list);\n")),),
        {"sleep-in-atomic": "bad-02"},
    ),
    Spec(
        "offline-drains-through-helper",
        "memcg: drain event removal through a helper",
        "Factor the wait into a helper that offline can share.",
        ((MEMCG, "static void mem_cgroup_css_offline(struct cgroup_subsys_state *css)\n",
          "static void memcg_event_drain(struct mem_cgroup_event *event)\n{\n"
          "\tcancel_work_sync(&event->remove);\n}\n\n"
          "static void mem_cgroup_css_offline(struct cgroup_subsys_state *css)\n"),
         (MEMCG, OFFLINE_LOOP, OFFLINE_LOOP.replace(
             "\t\tschedule_work(&event->remove);\n",
             "\t\tmemcg_event_drain(event);\n\t\tschedule_work(&event->remove);\n"))),
        {"sleep-in-atomic": "bad-03"},
    ),
    Spec(
        "offline-flushes-stats-under-lock",
        "memcg: flush statistics before the last events are signalled",
        "Userspace reading memory.stat after the event must see the final numbers.",
        ((MEMCG, OFFLINE_LOOP, OFFLINE_LOOP.replace(
            "\tlist_for_each_entry_safe(event, tmp, &memcg->event_list, list) {\n",
            "\tcgroup_rstat_flush(memcg->css.cgroup);\n"
            "\tlist_for_each_entry_safe(event, tmp, &memcg->event_list, list) {\n")),),
        {"sleep-in-atomic": "bad-04-tree"},
    ),
    Spec(
        "event-name-allocated-atomically",
        "memcg: remember the name of each registered event",
        "Keep the control file name for debugging; the list lock is held, so do not sleep.",
        ((MEMCG, EVENT_STRUCT, EVENT_STRUCT_NAMED),
         (MEMCG, EVENT_LIST_ADD, EVENT_LIST_ADD.replace(
            "\tlist_add(&event->list, &memcg->event_list);\n",
            "\tevent->name = kstrdup(cfile.file->f_path.dentry->d_name.name, GFP_ATOMIC);\n"
            "\tlist_add(&event->list, &memcg->event_list);\n")),),
        {"sleep-in-atomic": "ok-01"},
    ),
    Spec(
        "offline-waits-after-unlock",
        "memcg: wait for event removal after the list lock is dropped",
        "The removal work sleeps; wait for it only once the lock is released.",
        ((MEMCG, OFFLINE_LOOP,
          "\tscoped_guard(spinlock_irq, &memcg->event_list_lock) {\n"
          "\t\tlist_for_each_entry_safe(event, tmp, &memcg->event_list, list) {\n"
          "\t\t\tlist_del_init(&event->list);\n"
          "\t\t\tschedule_work(&event->remove);\n"
          "\t\t}\n"
          "\t}\n"
          "\tflush_workqueue(system_wq);\n"),),
        {"sleep-in-atomic": "ok-02"},
    ),
    # --- lock-imbalance ----------------------------------------------------------------
    Spec(
        "resize-max-returns-with-mutex",
        "memcg: return early when a new limit breaks memory.max <= memsw.max",
        "No need to loop again for an invalid limit.",
        ((MEMCG, RESIZE_INVARIANT, "\t\tif (!limits_invariant)\n\t\t\treturn -EINVAL;\n"),),
        {"lock-imbalance": "bad-01-tree"},
    ),
    Spec(
        "task-count-early-return",
        "cgroup: do not count tasks of a dying cgroup",
        "A cgroup being destroyed has no tasks worth reporting.",
        ((CGROUP, TASK_COUNT, "\tspin_lock_irq(&css_set_lock);\n"
          "\tif (cgroup_is_dead(cgrp))\n\t\treturn 0;\n"
          "\tcount = __cgroup_task_count(cgrp);\n\tspin_unlock_irq(&css_set_lock);\n"),),
        {"lock-imbalance": "bad-02"},
    ),
    Spec(
        "resize-max-returns-unlocked",
        "memcg: return early when a new limit breaks memory.max <= memsw.max",
        "No need to loop again for an invalid limit.",
        ((MEMCG, RESIZE_INVARIANT, "\t\tif (!limits_invariant) {\n"
          "\t\t\tmutex_unlock(&memcg_max_mutex);\n\t\t\treturn -EINVAL;\n\t\t}\n"),),
        {"lock-imbalance": "ok-01"},
    ),
    Spec(
        "task-count-guarded",
        "cgroup: do not count tasks of a dying cgroup",
        "A cgroup being destroyed has no tasks worth reporting; a guard keeps the unlock.",
        ((CGROUP, TASK_COUNT, "\tguard(spinlock_irq)(&css_set_lock);\n"
          "\tif (cgroup_is_dead(cgrp))\n\t\treturn 0;\n"
          "\tcount = __cgroup_task_count(cgrp);\n"),),
        {"lock-imbalance": "ok-02"},
    ),
    # --- entered holding the caller's lock (engine/entryctx.py) ---------------------------
    Spec(
        "rstat-flush-buffer-allocated-under-caller-lock",
        "cgroup: rstat: allocate the flush scratch buffer on first use",
        "Most cgroups are never flushed; allocate the per-cpu scratch space lazily.",
        ((RSTAT, FLUSH_LOCKED_HEAD, FLUSH_BUF.replace("@@GFP@@", "GFP_KERNEL")),),
        {"sleep-in-atomic": "bad-07-tree"},
    ),
    Spec(
        "rstat-flush-buffer-allocated-atomically",
        "cgroup: rstat: allocate the flush scratch buffer on first use",
        "Most cgroups are never flushed; allocate the per-cpu scratch space lazily, atomically\n"
        "as the caller holds cgroup_rstat_lock.",
        ((RSTAT, FLUSH_LOCKED_HEAD, FLUSH_BUF.replace("@@GFP@@", "GFP_ATOMIC")),),
        {"sleep-in-atomic": "ok-05-tree"},
    ),
    Spec(
        "rstat-flush-counts-with-irq-lock",
        "cgroup: rstat: count flushes for debugging",
        "A counter of flushes, under its own lock.",
        ((RSTAT, RSTAT_DECL, RSTAT_DECL + "static DEFINE_SPINLOCK(cgroup_rstat_stats_lock);\n"
          "static unsigned long cgroup_rstat_nr_flushes;\n"),
         (RSTAT, FLUSH_LOCKED_HEAD, FLUSH_COUNT.replace("@@LOCK@@", "spin_lock_irq")
          .replace("@@UNLOCK@@", "spin_unlock_irq"))),
        {"irq-nesting": "bad-02-tree"},
    ),
    Spec(
        "rstat-flush-counts-with-plain-lock",
        "cgroup: rstat: count flushes for debugging",
        "A counter of flushes, under its own lock; the caller already disabled interrupts.",
        ((RSTAT, RSTAT_DECL, RSTAT_DECL + "static DEFINE_SPINLOCK(cgroup_rstat_stats_lock);\n"
          "static unsigned long cgroup_rstat_nr_flushes;\n"),
         (RSTAT, FLUSH_LOCKED_HEAD, FLUSH_COUNT.replace("@@LOCK@@", "spin_lock")
          .replace("@@UNLOCK@@", "spin_unlock"))),
        {"irq-nesting": "ok-02-tree"},
    ),
    Spec(
        "iocost-qos-printed-under-irq-lock",
        "blk-iocost: print the QoS parameters under ioc->lock",
        "ioc_qos_write() updates them under ioc->lock; read a consistent set.",
        ((IOCOST, QOS_PRINT, QOS_PRINT_LOCKED.replace("@@LOCK@@", "spin_lock_irq")),
         (IOCOST, QOS_PRINT_TAIL, QOS_PRINT_TAIL.replace(
             "\treturn 0;\n}", "\tspin_unlock_irq(&ioc->lock);\n\treturn 0;\n}"))),
        {"irq-nesting": "bad-03-tree"},
    ),
    Spec(
        "iocost-qos-printed-under-plain-lock",
        "blk-iocost: print the QoS parameters under ioc->lock",
        "ioc_qos_write() updates them under ioc->lock; read a consistent set. blkcg_print_blkgs()\n"
        "already disabled interrupts.",
        ((IOCOST, QOS_PRINT, QOS_PRINT_LOCKED.replace("@@LOCK@@", "spin_lock")),
         (IOCOST, QOS_PRINT_TAIL, QOS_PRINT_TAIL.replace(
             "\treturn 0;\n}", "\tspin_unlock(&ioc->lock);\n\treturn 0;\n}"))),
        {"irq-nesting": "ok-03-tree"},
    ),
    Spec(
        "iocost-model-name-allocated-in-prfill",
        "blk-iocost: name the cost model once",
        "Build the model name before printing it.",
        ((IOCOST, MODEL_PRINT, MODEL_PRINT_NAMED.replace("@@GFP@@", "GFP_KERNEL")),),
        {"sleep-in-atomic": "bad-08-tree"},
    ),
    Spec(
        "iocost-model-name-allocated-atomically-in-prfill",
        "blk-iocost: name the cost model once",
        "Build the model name before printing it (GFP_ATOMIC: the prfill callback runs under\n"
        "the queue lock).",
        ((IOCOST, MODEL_PRINT, MODEL_PRINT_NAMED.replace("@@GFP@@", "GFP_ATOMIC")),),
        {"sleep-in-atomic": "ok-06-tree"},
    ),
    # --- irq-nesting ---------------------------------------------------------------------
    Spec(
        "offline-resets-oom-under-event-lock",
        "memcg: clear the OOM state of a cgroup going offline",
        "Nobody can wait on an offline cgroup's OOM anymore.",
        ((MEMCG, OFFLINE_LOOP, OFFLINE_LOOP.replace(
            "\tlist_for_each_entry_safe(event, tmp, &memcg->event_list, list) {\n",
            "\tspin_lock_irq(&memcg_oom_lock);\n\tmemcg->oom_lock = false;\n"
            "\tspin_unlock_irq(&memcg_oom_lock);\n"
            "\tlist_for_each_entry_safe(event, tmp, &memcg->event_list, list) {\n")),),
        {"irq-nesting": "bad-01"},
    ),
    Spec(
        "offline-resets-oom-plain-lock",
        "memcg: clear the OOM state of a cgroup going offline",
        "Nobody can wait on an offline cgroup's OOM anymore; interrupts are already off.",
        ((MEMCG, OFFLINE_LOOP, OFFLINE_LOOP.replace(
            "\tlist_for_each_entry_safe(event, tmp, &memcg->event_list, list) {\n",
            "\tspin_lock(&memcg_oom_lock);\n\tmemcg->oom_lock = false;\n"
            "\tspin_unlock(&memcg_oom_lock);\n"
            "\tlist_for_each_entry_safe(event, tmp, &memcg->event_list, list) {\n")),),
        {"irq-nesting": "ok-01"},
    ),
    # --- rt-spinlock-nesting -------------------------------------------------------------
    Spec(
        "rstat-updated-counts-under-css-set-lock",
        "cgroup: rstat: count the cgroups put on the updated lists",
        "A debug counter of how often the updated tree grows.",
        ((RSTAT, RSTAT_DECL, RSTAT_DECL + "static unsigned long cgroup_rstat_nr_updated;\n"),
         (RSTAT, RSTAT_UPDATED_TAIL, "\t\tcgrp = parent;\n\t}\n\n"
          "\tspin_lock(&css_set_lock);\n\tcgroup_rstat_nr_updated++;\n\tspin_unlock(&css_set_lock);\n"
          "\traw_spin_unlock_irqrestore(cpu_lock, flags);\n"),),
        {"rt-spinlock-nesting": "bad-01-tree"},
    ),
    Spec(
        "rstat-flush-counter-helper",
        "cgroup: rstat: count flushes per cpu for debugging",
        "A helper that bumps a per-cgroup counter under the cpu's rstat lock.",
        ((RSTAT, RSTAT_DECL, RSTAT_DECL + "static unsigned long cgroup_rstat_nr_flushed;\n"),
         (RSTAT, "static void cgroup_base_stat_flush(struct cgroup *cgrp, int cpu);\n",
          "static void cgroup_base_stat_flush(struct cgroup *cgrp, int cpu);\n\n"
          "static void cgroup_rstat_count_flush(int cpu)\n{\n"
          "\traw_spinlock_t *cpu_lock = per_cpu_ptr(&cgroup_rstat_cpu_lock, cpu);\n"
          "\tunsigned long flags;\n\n"
          "\traw_spin_lock_irqsave(cpu_lock, flags);\n"
          "\tspin_lock(&cgroup_rstat_lock);\n\tcgroup_rstat_nr_flushed++;\n"
          "\tspin_unlock(&cgroup_rstat_lock);\n"
          "\traw_spin_unlock_irqrestore(cpu_lock, flags);\n}\n")),
        {"rt-spinlock-nesting": "bad-02"},
    ),
    Spec(
        "rstat-updated-counts-atomically",
        "cgroup: rstat: count the cgroups put on the updated lists",
        "A debug counter of how often the updated tree grows; no lock needed.",
        ((RSTAT, RSTAT_DECL, RSTAT_DECL + "static atomic_t cgroup_rstat_nr_updated;\n"),
         (RSTAT, RSTAT_UPDATED_TAIL, "\t\tcgrp = parent;\n\t}\n\n"
          "\tatomic_inc(&cgroup_rstat_nr_updated);\n"
          "\traw_spin_unlock_irqrestore(cpu_lock, flags);\n"),),
        {"rt-spinlock-nesting": "ok-01"},
    ),
    Spec(
        "tick-notifies-cgroup-events",
        "sched: notify cgroup.events pollers from the scheduler tick",
        "Let a poller of the running task's cgroup.events see CPU activity without a timer.",
        ((SCHED_CORE, TICK_TAIL, "\tperf_event_task_tick();\n"
          "\tcgroup_file_notify(&task_dfl_cgroup(curr)->events_file);\n"),),
        {"rt-spinlock-nesting": "bad-03-tree"},
    ),
    Spec(
        "rstat-updated-notifies-events",
        "cgroup: rstat: notify cgroup.events when a cgroup first gets stats to flush",
        "A poller can then flush right away instead of polling cpu.stat.",
        ((RSTAT, "\t\tprstatc = cgroup_rstat_cpu(parent, cpu);\n\t\trstatc->updated_next",
          "\t\tcgroup_file_notify(&cgrp->events_file);\n"
          "\t\tprstatc = cgroup_rstat_cpu(parent, cpu);\n\t\trstatc->updated_next"),),
        {"rt-spinlock-nesting": "bad-04-tree"},
    ),
    Spec(
        "tick-marks-rstat-updated",
        "sched: mark the running task's cgroup for an rstat flush from the scheduler tick",
        "Keeps cpu.stat of busy cgroups current between reads.",
        ((SCHED_CORE, TICK_TAIL, "\tperf_event_task_tick();\n"
          "\tcgroup_rstat_updated(task_dfl_cgroup(curr), cpu);\n"),),
        {"rt-spinlock-nesting": "ok-02-tree"},
    ),
    # --- stale-snapshot-before-lock ----------------------------------------------------
    Spec(
        "relax-level-copied-before-lock",
        "cpuset: tell whether a child's sched domain is wider than its parent's",
        "For the load balancer: widen a child's domain only when the parent's is narrower.",
        ((CPUSET, RELAX_DOMAIN, "static bool cpuset_domain_wider(struct cpuset *cs, struct cpuset *parent)\n{\n"
          "\tint level = cs->relax_domain_level;\n"
          "\tbool wider;\n\n"
          "\tspin_lock_irq(&callback_lock);\n"
          "\twider = cs->relax_domain_level >= 0 && parent->relax_domain_level < level;\n"
          "\tspin_unlock_irq(&callback_lock);\n"
          "\treturn wider;\n"
          "}\n\n" + RELAX_DOMAIN),),
        {"stale-snapshot-before-lock": "bad-01"},
    ),
    Spec(
        "relax-level-rechecked-under-lock",
        "cpuset: let a busy cpuset relax its sched domain by one level",
        "A helper for the load balancer to widen the domain one step at a time; the level\n"
        "read before the lock is checked again under it.",
        ((CPUSET, RELAX_DOMAIN, "static void cpuset_relax_one_level(struct cpuset *cs)\n{\n"
          "\tint level = cs->relax_domain_level;\n\n"
          "\tspin_lock_irq(&callback_lock);\n"
          "\tif (cs->relax_domain_level == level && level < sched_domain_level_max)\n"
          "\t\tcs->relax_domain_level = level + 1;\n"
          "\tspin_unlock_irq(&callback_lock);\n"
          "}\n\n" + RELAX_DOMAIN),),
        {"stale-snapshot-before-lock": "ok-01"},
    ),
    Spec(
        "relax-level-computed-under-lock",
        "cpuset: let a busy cpuset relax its sched domain by one level",
        "A helper for the load balancer to widen the domain one step at a time.",
        ((CPUSET, RELAX_DOMAIN, "static void cpuset_relax_one_level(struct cpuset *cs)\n{\n"
          "\tint level;\n\n"
          "\tspin_lock_irq(&callback_lock);\n"
          "\tlevel = cs->relax_domain_level + 1;\n"
          "\tif (cs->relax_domain_level < sched_domain_level_max)\n"
          "\t\tcs->relax_domain_level = level;\n"
          "\tspin_unlock_irq(&callback_lock);\n"
          "}\n\n" + RELAX_DOMAIN),),
        {"stale-snapshot-before-lock": "ok-02"},
    ),
    Spec(
        "relax-level-published-by-writer",
        "cpuset: let a busy cpuset relax its sched domain by one level",
        "A helper for the load balancer; cpuset_rwsem serialises the writers, callback_lock\n"
        "is taken only to publish the new level to readers.",
        ((CPUSET, RELAX_DOMAIN, "static void cpuset_relax_one_level(struct cpuset *cs)\n{\n"
          "\tint level;\n\n"
          "\tlockdep_assert_held(&cpuset_mutex);\n"
          "\tlevel = cs->relax_domain_level + 1;\n"
          "\tspin_lock_irq(&callback_lock);\n"
          "\tif (cs->relax_domain_level < sched_domain_level_max)\n"
          "\t\tcs->relax_domain_level = level;\n"
          "\tspin_unlock_irq(&callback_lock);\n"
          "}\n\n" + RELAX_DOMAIN),),
        {"stale-snapshot-before-lock": "ok-03"},
    ),
    # --- double-lock ---------------------------------------------------------------------
    Spec(
        "task-count-helper-relocks",
        "cgroup: count tasks through a helper that also counts dying tasks",
        "Share the counting with the debug files.",
        ((CGROUP, "int cgroup_task_count(const struct cgroup *cgrp)\n",
          "static int cgroup_count_dying(const struct cgroup *cgrp)\n{\n\tint n;\n\n"
          "\tspin_lock_irq(&css_set_lock);\n\tn = cgrp->nr_dying_descendants;\n"
          "\tspin_unlock_irq(&css_set_lock);\n\treturn n;\n}\n\n"
          "int cgroup_task_count(const struct cgroup *cgrp)\n"),
         (CGROUP, TASK_COUNT, "\tspin_lock_irq(&css_set_lock);\n"
          "\tcount = __cgroup_task_count(cgrp) + cgroup_count_dying(cgrp);\n"
          "\tspin_unlock_irq(&css_set_lock);\n")),
        {"double-lock": "bad-01"},
    ),
    Spec(
        "resmask-rebuilds-domains",
        "cgroup/cpuset: rebuild sched domains after a cpus or mems change",
        "Make the new masks take effect at once.",
        ((CPUSET, RESMASK_SWITCH_END, RESMASK_SWITCH_END.replace(
            "\tfree_cpuset(trialcs);\n", "\trebuild_sched_domains();\n\tfree_cpuset(trialcs);\n")),),
        {"double-lock": "bad-02-tree"},
    ),
    Spec(
        "task-count-helper-unlocked",
        "cgroup: count tasks through a helper that also counts dying tasks",
        "Share the counting with the debug files; the helper runs outside the lock.",
        ((CGROUP, "int cgroup_task_count(const struct cgroup *cgrp)\n",
          "static int cgroup_count_dying(const struct cgroup *cgrp)\n{\n\tint n;\n\n"
          "\tspin_lock_irq(&css_set_lock);\n\tn = cgrp->nr_dying_descendants;\n"
          "\tspin_unlock_irq(&css_set_lock);\n\treturn n;\n}\n\n"
          "int cgroup_task_count(const struct cgroup *cgrp)\n"),
         (CGROUP, TASK_COUNT, TASK_COUNT + "\tcount += cgroup_count_dying(cgrp);\n")),
        {"double-lock": "ok-01"},
    ),
)

# --- reference rules of the refcount engine (kernel.yaml objects, tree facts) ------------
EVENT_REMOVE_TAIL = (
    "\teventfd_ctx_put(event->eventfd);\n"
    "\tkfree(event);\n"
    "\tcss_put(&memcg->css);\n"
    "}\n"
)
EVENT_REMOVE_HEAD = "\tremove_wait_queue(event->wqh, &event->wait);\n\n\tevent->unregister_event(memcg, event->eventfd);\n"

REFERENCE_SPECS: tuple[Spec, ...] = (
    Spec(
        "oom-group-reported-after-put",
        "memcg: say which cgroup an mm is charged to when its OOM group is killed",
        "A debugging aid for memory.oom.group.",
        ((MEMCG, "void mem_cgroup_print_oom_group(struct mem_cgroup *memcg)\n",
          "static void mem_cgroup_report_mm(struct mm_struct *mm)\n{\n"
          "\tstruct mem_cgroup *memcg = get_mem_cgroup_from_mm(mm);\n\n"
          "\tmem_cgroup_put(memcg);\n"
          "\tpr_info(\"mm charged to \");\n\tpr_cont_cgroup_path(memcg->css.cgroup);\n"
          "\tpr_cont(\"\\n\");\n}\n\n"
          "void mem_cgroup_print_oom_group(struct mem_cgroup *memcg)\n"),),
        {"use-after-release": "bad-01"},
    ),
    Spec(
        "event-freed-before-eventfd-put",
        "memcg: free the event before dropping its eventfd",
        "Free memory first, then let the eventfd go.",
        ((MEMCG, EVENT_REMOVE_TAIL, "\tkfree(event);\n\teventfd_ctx_put(event->eventfd);\n"
          "\tcss_put(&memcg->css);\n}\n"),),
        {"use-after-release": "bad-02"},
    ),
    Spec(
        "event-remove-wakes-before-put",
        "memcg: wake OOM waiters when an event goes away",
        "A waiter may be sleeping on the event's memcg; wake it while we hold the css.",
        ((MEMCG, EVENT_REMOVE_TAIL, EVENT_REMOVE_TAIL.replace(
            "\tcss_put(&memcg->css);\n}\n",
            "\tif (memcg->oom_kill_disable)\n\t\tmemcg_oom_recover(memcg);\n\tcss_put(&memcg->css);\n}\n")),),
        {"use-after-release": "ok-01"},
    ),
    Spec(
        "event-remove-puts-early",
        "memcg: drop the event's css as soon as it is off the wait queue",
        "Nothing after this needs the cgroup.",
        ((MEMCG, EVENT_REMOVE_HEAD, "\tremove_wait_queue(event->wqh, &event->wait);\n"
          "\tcss_put(&memcg->css);\n\n\tevent->unregister_event(memcg, event->eventfd);\n"),
         (MEMCG, EVENT_REMOVE_TAIL, "\teventfd_ctx_put(event->eventfd);\n\tkfree(event);\n}\n")),
        {"release-moved-earlier": "bad-01"},
    ),
    Spec(
        "event-detach-helper-puts",
        "memcg: detach an event through a helper",
        "Share the detaching with the eventfd wakeup path.",
        ((MEMCG, "static void memcg_event_remove(struct work_struct *work)\n",
          "static void memcg_event_detach(struct mem_cgroup_event *event,\n"
          "\t\t\t       struct mem_cgroup *memcg)\n{\n"
          "\tremove_wait_queue(event->wqh, &event->wait);\n\tcss_put(&memcg->css);\n}\n\n"
          "static void memcg_event_remove(struct work_struct *work)\n"),
         (MEMCG, EVENT_REMOVE_HEAD, "\tmemcg_event_detach(event, memcg);\n\n"
          "\tevent->unregister_event(memcg, event->eventfd);\n"),
         (MEMCG, EVENT_REMOVE_TAIL, "\teventfd_ctx_put(event->eventfd);\n\tkfree(event);\n}\n")),
        {"release-moved-earlier": "bad-02"},
    ),
    Spec(
        "event-remove-frees-last",
        "memcg: free the event after its css is dropped",
        "Keep the event until the very end of its removal.",
        ((MEMCG, EVENT_REMOVE_TAIL, "\teventfd_ctx_put(event->eventfd);\n"
          "\tcss_put(&memcg->css);\n\tkfree(event);\n}\n"),),
        {"release-moved-earlier": "ok-01"},
    ),
)

SPECS = SPECS + REFERENCE_SPECS

# --- charging ------------------------------------------------------------------------------
CHARGE_SPECS: tuple[Spec, ...] = (
    Spec(
        "event-remove-logs-accounted",
        "memcg: keep a log of removed events",
        "Record each removal for the debug file.",
        ((MEMCG, "\tremove_wait_queue(event->wqh, &event->wait);\n\n",
          "\tremove_wait_queue(event->wqh, &event->wait);\n"
          "\tevent->log = kzalloc(sizeof(*event->log), GFP_KERNEL_ACCOUNT);\n\n"),),
        {"charge-in-async-context": "bad-01"},
    ),
    Spec(
        "event-remove-logs-to-event-memcg",
        "memcg: keep a log of removed events",
        "Record each removal for the debug file, charged to the event's cgroup.",
        ((MEMCG, "\tremove_wait_queue(event->wqh, &event->wait);\n\n",
          "\tremove_wait_queue(event->wqh, &event->wait);\n"
          "\told_memcg = set_active_memcg(memcg);\n"
          "\tevent->log = kzalloc(sizeof(*event->log), GFP_KERNEL_ACCOUNT);\n"
          "\tset_active_memcg(old_memcg);\n\n"),),
        {"charge-in-async-context": "ok-01"},
    ),
    Spec(
        "event-control-logs-accounted",
        "memcg: keep a log of registered events",
        "Record each registration; it is charged to the writer of cgroup.event_control.",
        ((MEMCG, "\tevent->memcg = memcg;\n",
          "\tevent->memcg = memcg;\n\tevent->log = kzalloc(sizeof(*event->log), GFP_KERNEL_ACCOUNT);\n"),),
        {"charge-in-async-context": "ok-02"},
    ),
)

SPECS = SPECS + CHARGE_SPECS

# --- access marking -------------------------------------------------------------------------
SOFT_LIMIT_WRITE = "\t\t\tmemcg->soft_limit = nr_pages;\n"
SOFT_LIMIT_RESET = "\tmemcg->soft_limit = PAGE_COUNTER_MAX;\n\tpage_counter_set_high(&memcg->swap, PAGE_COUNTER_MAX);\n"

MARKING_SPECS: tuple[Spec, ...] = (
    Spec(
        "soft-limit-write-marked",
        "memcg: mark the soft limit update",
        "soft_limit_excess() reads memcg->soft_limit without a lock; mark its writer.",
        ((MEMCG, SOFT_LIMIT_WRITE, "\t\t\tWRITE_ONCE(memcg->soft_limit, nr_pages);\n"),),
        {"partial-accessor-conversion": "bad-01-tree"},
    ),
    Spec(
        "soft-limit-writes-marked",
        "memcg: mark the soft limit updates",
        "soft_limit_excess() reads memcg->soft_limit without a lock; mark every writer of a "
        "live cgroup.",
        ((MEMCG, SOFT_LIMIT_WRITE, "\t\t\tWRITE_ONCE(memcg->soft_limit, nr_pages);\n"),
         (MEMCG, SOFT_LIMIT_RESET, "\tWRITE_ONCE(memcg->soft_limit, PAGE_COUNTER_MAX);\n"
          "\tpage_counter_set_high(&memcg->swap, PAGE_COUNTER_MAX);\n")),
        {"partial-accessor-conversion": "ok-01-tree"},
    ),
)

SPECS = SPECS + MARKING_SPECS

# --- memory accounting of one request ------------------------------------------------------
CGROUP_V1 = "kernel/cgroup/cgroup-v1.c"
PIDLIST_ARRAY = "\tarray = kvmalloc_array(length, sizeof(pid_t), GFP_KERNEL);\n"
PIDLIST_ENTRY = "\tl = kzalloc(sizeof(struct cgroup_pidlist), GFP_KERNEL);\n"
MEMCG_STRUCT = "\tmemcg = kzalloc(struct_size(memcg, nodeinfo, nr_node_ids), GFP_KERNEL);\n"
MEMCG_VMSTATS = "\tmemcg->vmstats = kzalloc(sizeof(struct memcg_vmstats), GFP_KERNEL);\n"
MEMCG_PER_NODE = "\tpn = kzalloc_node(sizeof(*pn), GFP_KERNEL, node);\n"

ACCOUNTING_SPECS: tuple[Spec, ...] = (
    Spec(
        "pidlist-array-accounted",
        "cgroup1: charge the pid arrays of tasks and cgroup.procs reads",
        "A reader of a large cgroup's tasks file makes the kernel keep an array of every pid\n"
        "until the pidlist expires; charge it to the reader's memory cgroup.",
        ((CGROUP_V1, PIDLIST_ARRAY, PIDLIST_ARRAY.replace("GFP_KERNEL", "GFP_KERNEL_ACCOUNT")),),
        {"accounting-partial-conversion": "bad-01-tree"},
    ),
    Spec(
        "pidlist-accounted",
        "cgroup1: charge the pidlists of tasks and cgroup.procs reads",
        "A reader of a large cgroup's tasks file makes the kernel keep a pidlist and an\n"
        "array of every pid until the pidlist expires; charge both to the reader's memory\n"
        "cgroup.",
        ((CGROUP_V1, PIDLIST_ENTRY, PIDLIST_ENTRY.replace("GFP_KERNEL", "GFP_KERNEL_ACCOUNT")),
         (CGROUP_V1, PIDLIST_ARRAY, PIDLIST_ARRAY.replace("GFP_KERNEL", "GFP_KERNEL_ACCOUNT"))),
        {"accounting-partial-conversion": "ok-01-tree"},
    ),
    Spec(
        "memcg-struct-accounted",
        "memcg: charge struct mem_cgroup to the parent cgroup",
        "Creating cgroups in a loop pins a struct mem_cgroup each, which nobody pays for;\n"
        "charge it to the creator.",
        ((MEMCG, MEMCG_STRUCT, MEMCG_STRUCT.replace("GFP_KERNEL", "GFP_KERNEL_ACCOUNT")),),
        {"accounting-partial-conversion": "bad-02-tree"},
    ),
    Spec(
        "memcg-allocations-accounted",
        "memcg: charge struct mem_cgroup and its per-node and stats parts",
        "Creating cgroups in a loop pins a struct mem_cgroup each, with its vmstats and\n"
        "per-node info, which nobody pays for; charge them to the creator.",
        ((MEMCG, MEMCG_PER_NODE, MEMCG_PER_NODE.replace("GFP_KERNEL", "GFP_KERNEL_ACCOUNT")),
         (MEMCG, MEMCG_STRUCT, MEMCG_STRUCT.replace("GFP_KERNEL", "GFP_KERNEL_ACCOUNT")),
         (MEMCG, MEMCG_VMSTATS, MEMCG_VMSTATS.replace("GFP_KERNEL", "GFP_KERNEL_ACCOUNT"))),
        {"accounting-partial-conversion": "ok-02-tree"},
    ),
)

SPECS = SPECS + ACCOUNTING_SPECS

# --- scope-based cleanup (cleanup.h, as a patch on 6.1 would add it) ----------------------
OOM_KILL = "mm/oom_kill.c"
OOM_KILL_PROCESS = "static void __oom_kill_process(struct task_struct *victim, const char *message)\n"
MMPUT_CLEANUP = "DEFINE_FREE(mmput, struct mm_struct *, if (_T) mmput(_T))\n\n"

CLEANUP_SPECS: tuple[Spec, ...] = (
    Spec(
        "oom-count-mm-users-cleanup-under-rcu",
        "mm, oom: count the processes that still have an address space",
        "Report how many processes the OOM killer could still reap from.",
        ((OOM_KILL, OOM_KILL_PROCESS, MMPUT_CLEANUP
          + "static int oom_count_mm_users(void)\n{\n"
          "\tstruct task_struct *p;\n\tint count = 0;\n\n"
          "\trcu_read_lock();\n"
          "\tfor_each_process(p) {\n"
          "\t\tstruct mm_struct *mm __free(mmput) = get_task_mm(p);\n\n"
          "\t\tif (mm && !test_bit(MMF_OOM_SKIP, &mm->flags))\n\t\t\tcount++;\n"
          "\t}\n"
          "\trcu_read_unlock();\n\treturn count;\n}\n\n" + OOM_KILL_PROCESS),),
        {"sleep-in-atomic": "bad-05-tree"},
    ),
    Spec(
        "oom-mm-skipped-cleanup-after-rcu",
        "mm, oom: tell whether a task's address space was already reaped",
        "A helper for the OOM report.",
        ((OOM_KILL, OOM_KILL_PROCESS, MMPUT_CLEANUP
          + "static bool oom_task_mm_skipped(struct task_struct *task)\n{\n"
          "\tstruct mm_struct *mm __free(mmput) = get_task_mm(task);\n"
          "\tbool skipped;\n\n"
          "\tif (!mm)\n\t\treturn true;\n"
          "\trcu_read_lock();\n"
          "\tskipped = test_bit(MMF_OOM_SKIP, &mm->flags) || task_will_free_mem(task);\n"
          "\trcu_read_unlock();\n\treturn skipped;\n}\n\n" + OOM_KILL_PROCESS),),
        {"sleep-in-atomic": "ok-03-tree"},
    ),
)

SPECS = SPECS + CLEANUP_SPECS

# --- lock contracts (lockdep_assert_held) --------------------------------------------------
FROZEN_HELPER = (
    "static int cgroup_count_frozen(const struct cgroup *cgrp)\n{\n"
    "\tlockdep_assert_held(&css_set_lock);\n\treturn cgrp->freezer.nr_frozen_tasks;\n}\n\n"
    "int cgroup_task_count(const struct cgroup *cgrp)\n"
)

CONTRACT_SPECS: tuple[Spec, ...] = (
    Spec(
        "task-count-frozen-after-unlock",
        "cgroup: count frozen tasks too",
        "Report frozen tasks along with the others.",
        ((CGROUP, "int cgroup_task_count(const struct cgroup *cgrp)\n", FROZEN_HELPER),
         (CGROUP, TASK_COUNT, TASK_COUNT + "\tcount += cgroup_count_frozen(cgrp);\n")),
        {"lock-not-held": "bad-01"},
    ),
    Spec(
        "task-count-read-after-unlock",
        "cgroup: shorten the css_set_lock section of cgroup_task_count()",
        "Only the snapshot needs the lock.",
        ((CGROUP, TASK_COUNT, "\tspin_lock_irq(&css_set_lock);\n\tspin_unlock_irq(&css_set_lock);\n"
          "\tcount = __cgroup_task_count(cgrp);\n"),),
        {"lock-not-held": "bad-02-tree"},
    ),
    Spec(
        "task-count-frozen-under-lock",
        "cgroup: count frozen tasks too",
        "Report frozen tasks along with the others, under the same lock.",
        ((CGROUP, "int cgroup_task_count(const struct cgroup *cgrp)\n", FROZEN_HELPER),
         (CGROUP, TASK_COUNT, "\tspin_lock_irq(&css_set_lock);\n"
          "\tcount = __cgroup_task_count(cgrp) + cgroup_count_frozen(cgrp);\n"
          "\tspin_unlock_irq(&css_set_lock);\n")),
        {"lock-not-held": "ok-01"},
    ),
)

SPECS = SPECS + CONTRACT_SPECS

# --- RCU read side ----------------------------------------------------------------------------
RCU_SPECS: tuple[Spec, ...] = (
    Spec(
        "offline-children-sleep-in-walk",
        "memcg: drain the children's stock when a parent goes offline",
        "Drop the RCU lock around the drain, which sleeps.",
        ((MEMCG, "static void mem_cgroup_css_offline(struct cgroup_subsys_state *css)\n{\n",
          "static void memcg_drain_children(struct cgroup_subsys_state *css)\n{\n"
          "\tstruct cgroup_subsys_state *child;\n\n"
          "\trcu_read_lock();\n"
          "\tcss_for_each_child(child, css) {\n"
          "\t\trcu_read_unlock();\n"
          "\t\tdrain_all_stock(mem_cgroup_from_css(child));\n"
          "\t\trcu_read_lock();\n"
          "\t}\n"
          "\trcu_read_unlock();\n}\n\n"
          "static void mem_cgroup_css_offline(struct cgroup_subsys_state *css)\n{\n"),),
        {"rcu-unprotected": "bad-01"},
    ),
    Spec(
        "offline-children-pinned-in-walk",
        "memcg: drain the children's stock when a parent goes offline",
        "Drop the RCU lock around the drain, which sleeps; pin the child meanwhile.",
        ((MEMCG, "static void mem_cgroup_css_offline(struct cgroup_subsys_state *css)\n{\n",
          "static void memcg_drain_children(struct cgroup_subsys_state *css)\n{\n"
          "\tstruct cgroup_subsys_state *child;\n\n"
          "\trcu_read_lock();\n"
          "\tcss_for_each_child(child, css) {\n"
          "\t\tif (!css_tryget(child))\n\t\t\tcontinue;\n"
          "\t\trcu_read_unlock();\n"
          "\t\tdrain_all_stock(mem_cgroup_from_css(child));\n"
          "\t\trcu_read_lock();\n"
          "\t\tcss_put(child);\n"
          "\t}\n"
          "\trcu_read_unlock();\n}\n\n"
          "static void mem_cgroup_css_offline(struct cgroup_subsys_state *css)\n{\n"),),
        {"rcu-unprotected": "ok-01"},
    ),
    Spec(
        "oom-group-read-after-unlock",
        "memcg: report the OOM group's owner",
        "Print which task owns the mm of the victim's group.",
        ((MEMCG, "void mem_cgroup_print_oom_group(struct mem_cgroup *memcg)\n",
          "static void mem_cgroup_print_owner(struct mm_struct *mm)\n{\n"
          "\tstruct task_struct *owner;\n\n"
          "\trcu_read_lock();\n\tpr_info(\"mm %p\\n\", mm);\n\trcu_read_unlock();\n"
          "\towner = rcu_dereference(mm->owner);\n"
          "\tif (owner)\n\t\tpr_info(\"owner %d\\n\", task_pid_nr(owner));\n}\n\n"
          "void mem_cgroup_print_oom_group(struct mem_cgroup *memcg)\n"),),
        {"rcu-unprotected": "bad-02"},
    ),
)

SPECS = SPECS + RCU_SPECS

# --- exit state -------------------------------------------------------------------------------
LEADER_LOOP = (
    "\tcgroup_taskset_for_each_leader(leader, css, tset) {\n"
    "\t\tWARN_ON_ONCE(p);\n"
)

EXIT_SPECS: tuple[Spec, ...] = (
    Spec(
        "can-attach-skips-exiting-leader",
        "memcg: do not move charges of an exiting process",
        "Its memory goes away anyway.",
        ((MEMCG, LEADER_LOOP, "\tcgroup_taskset_for_each_leader(leader, css, tset) {\n"
          "\t\tif (leader->flags & PF_EXITING)\n\t\t\tcontinue;\n"
          "\t\tWARN_ON_ONCE(p);\n"),),
        {"exit-state-exemption": "bad-01"},
    ),
    Spec(
        "can-attach-warns-exiting-leader",
        "memcg: note when the moved process is exiting",
        "Keep moving its charges; only say it.",
        ((MEMCG, LEADER_LOOP, "\tcgroup_taskset_for_each_leader(leader, css, tset) {\n"
          "\t\tif (leader->flags & PF_EXITING)\n\t\t\tpr_debug(\"moving an exiting task\\n\");\n"
          "\t\tWARN_ON_ONCE(p);\n"),),
        {"exit-state-exemption": "ok-01"},
    ),
)

SPECS = SPECS + EXIT_SPECS

# --- lock order -----------------------------------------------------------------------------
RESMASK_LOCKS = "\tcpus_read_lock();\n\tmutex_lock(&cpuset_mutex);\n\tif (!is_cpuset_online(cs))\n\t\tgoto out_unlock;\n\n\ttrialcs"
ORDER_SPECS: tuple[Spec, ...] = (
    Spec(
        "resmask-locks-mutex-first",
        "cgroup/cpuset: take cpuset_mutex before the hotplug lock in cpuset_write_resmask()",
        "Check that the cpuset is online before pinning CPU hotplug.",
        ((CPUSET, RESMASK_LOCKS, "\tmutex_lock(&cpuset_mutex);\n\tcpus_read_lock();\n"
          "\tif (!is_cpuset_online(cs))\n\t\tgoto out_unlock;\n\n\ttrialcs"),),
        {"lock-order-inversion": "bad-01-tree"},
    ),
    Spec(
        "resmask-locks-hotplug-first",
        "cgroup/cpuset: say why cpuset_write_resmask() pins CPU hotplug first",
        "The hotplug lock nests outside cpuset_mutex everywhere.",
        ((CPUSET, RESMASK_LOCKS, "\t/* cpu_hotplug_lock nests outside cpuset_mutex */\n"
          "\tcpus_read_lock();\n\tmutex_lock(&cpuset_mutex);\n"
          "\tif (!is_cpuset_online(cs))\n\t\tgoto out_unlock;\n\n\ttrialcs"),),
        {"lock-order-inversion": "ok-01-tree"},
    ),
)

SPECS = SPECS + ORDER_SPECS

# --- interrupt safety ---------------------------------------------------------------------------
FILE_KN = "\t\tspin_lock_irq(&cgroup_file_kn_lock);\n\t\tcfile->kn = kn;\n\t\tspin_unlock_irq(&cgroup_file_kn_lock);\n"
IRQ_SPECS: tuple[Spec, ...] = (
    Spec(
        "file-kn-plain-lock",
        "cgroup: interrupts need not be off to publish a cgroup file's kernfs node",
        "The lock only orders kn against its readers.",
        ((CGROUP, FILE_KN, "\t\tspin_lock(&cgroup_file_kn_lock);\n\t\tcfile->kn = kn;\n"
          "\t\tspin_unlock(&cgroup_file_kn_lock);\n"),),
        {"irq-unsafe-lock": "bad-01-tree"},
    ),
    Spec(
        "file-kn-bh-lock",
        "cgroup: only bottom halves need to be off to publish a cgroup file's kernfs node",
        "The notification timer is the only other taker, in softirq.",
        ((CGROUP, FILE_KN, "\t\tspin_lock_bh(&cgroup_file_kn_lock);\n\t\tcfile->kn = kn;\n"
          "\t\tspin_unlock_bh(&cgroup_file_kn_lock);\n"),),
        {"irq-unsafe-lock": "ok-01-tree"},
    ),
)

SPECS = SPECS + IRQ_SPECS

# --- memory ---------------------------------------------------------------------------------------
EVENT_EFILE = "\tefile = fdget(efd);\n\tif (!efile.file) {\n\t\tret = -EBADF;\n\t\tgoto out_kfree;\n\t}\n"
MEMORY_SPECS: tuple[Spec, ...] = (
    Spec(
        "event-control-bad-fd-returns",
        "memcg: return at once for a bad event fd",
        "Nothing to undo yet.",
        ((MEMCG, EVENT_EFILE, "\tefile = fdget(efd);\n\tif (!efile.file)\n\t\treturn -EBADF;\n"),),
        {"memory-leak": "bad-01-tree"},
    ),
    Spec(
        "event-control-bad-fd-frees",
        "memcg: return at once for a bad event fd",
        "Only the event to free.",
        ((MEMCG, EVENT_EFILE, "\tefile = fdget(efd);\n\tif (!efile.file) {\n\t\tkfree(event);\n"
          "\t\treturn -EBADF;\n\t}\n"),),
        {"memory-leak": "ok-01"},
    ),
    Spec(
        "event-name-copy-leaks",
        "memcg: keep a copy of each event's control file name",
        "For the debug output; long names are refused.",
        ((MEMCG, EVENT_STRUCT, EVENT_STRUCT_NAMED),
         (MEMCG, "static void memcg_event_remove(struct work_struct *work)\n",
          "static int memcg_event_set_name(struct mem_cgroup_event *event, const char *name)\n{\n"
          "\tchar *copy = kstrdup(name, GFP_KERNEL);\n\n"
          "\tif (!copy)\n\t\treturn -ENOMEM;\n"
          "\tif (strlen(copy) > NAME_MAX)\n\t\treturn -ENAMETOOLONG;\n"
          "\tevent->name = copy;\n\treturn 0;\n}\n\n"
          "static void memcg_event_remove(struct work_struct *work)\n")),
        {"memory-leak": "bad-02"},
    ),
    Spec(
        "event-name-copy-scoped",
        "memcg: keep a copy of each event's control file name",
        "For the debug output; long names are refused. The copy is freed by its scope\n"
        "unless it is kept.",
        ((MEMCG, EVENT_STRUCT, EVENT_STRUCT_NAMED),
         (MEMCG, "static void memcg_event_remove(struct work_struct *work)\n",
          "static int memcg_event_set_name(struct mem_cgroup_event *event, const char *name)\n{\n"
          "\tchar *copy __free(kfree) = kstrdup(name, GFP_KERNEL);\n\n"
          "\tif (!copy)\n\t\treturn -ENOMEM;\n"
          "\tif (strlen(copy) > NAME_MAX)\n\t\treturn -ENAMETOOLONG;\n"
          "\tevent->name = no_free_ptr(copy);\n\treturn 0;\n}\n\n"
          "static void memcg_event_remove(struct work_struct *work)\n")),
        {"memory-leak": "ok-02"},
    ),
)

SPECS = SPECS + MEMORY_SPECS

# --- a reference handed to a callee that keeps it on some paths only ------------------------------
HANDOFF_SPECS: tuple[Spec, ...] = (
    Spec(
        "event-attach-takes-memcg-sometimes",
        "memcg: attach an event to its memcg through a helper",
        "The helper pins the memcg for the event's lifetime.",
        ((MEMCG, "static void memcg_event_remove(struct work_struct *work)\n",
          "static void memcg_event_attach(struct mem_cgroup_event *event,\n"
          "\t\t\t       struct mem_cgroup *memcg)\n{\n"
          "\tif (!event->eventfd)\n\t\treturn;\n"
          "\tevent->memcg = memcg;\n}\n\n"
          "static void memcg_event_remove(struct work_struct *work)\n"),
         (MEMCG, "\tevent->memcg = memcg;\n\tINIT_LIST_HEAD(&event->list);\n",
          "\tcss_get(&memcg->css);\n\tmemcg_event_attach(event, memcg);\n\tINIT_LIST_HEAD(&event->list);\n")),
        {"refcount-imbalance": "bad-06"},
    ),
    Spec(
        "event-attach-takes-memcg-always",
        "memcg: attach an event to its memcg through a helper",
        "The helper pins the memcg for the event's lifetime, or drops the reference.",
        ((MEMCG, "static void memcg_event_remove(struct work_struct *work)\n",
          "static void memcg_event_attach(struct mem_cgroup_event *event,\n"
          "\t\t\t       struct mem_cgroup *memcg)\n{\n"
          "\tif (!event->eventfd) {\n\t\tcss_put(&memcg->css);\n\t\treturn;\n\t}\n"
          "\tevent->memcg = memcg;\n}\n\n"
          "static void memcg_event_remove(struct work_struct *work)\n"),
         (MEMCG, "\tevent->memcg = memcg;\n\tINIT_LIST_HEAD(&event->list);\n",
          "\tcss_get(&memcg->css);\n\tmemcg_event_attach(event, memcg);\n\tINIT_LIST_HEAD(&event->list);\n")),
        {"refcount-imbalance": "ok-04"},
    ),
)

SPECS = SPECS + HANDOFF_SPECS

# --- entered holding what every caller holds (engine/callerctx.py) ----------------------
RELAX_REBUILD = (
    "\tif (val != cs->relax_domain_level) {\n\t\tcs->relax_domain_level = val;\n"
    "\t\tif (!cpumask_empty(cs->cpus_allowed) &&\n\t\t    is_sched_load_balance(cs))\n"
    "\t\t\trebuild_sched_domains_locked();\n\t}\n"
)
SOFT_LIMIT_RETRY = (
    "\t__mem_cgroup_remove_exceeded(mz, mctz);\n\tif (!soft_limit_excess(mz->memcg) ||\n"
    "\t    !css_tryget(&mz->memcg->css))\n\t\tgoto retry;\n"
)
CALLER_SPECS: tuple[Spec, ...] = (
    Spec(
        "tree-relax-level-rebuilds-domains-relocking",
        "cpuset: rebuild sched domains through the public helper on a relax level change",
        "rebuild_sched_domains() takes care of the hotplug and cpuset locks itself;\n"
        "use it instead of the _locked variant.",
        ((CPUSET, RELAX_REBUILD, RELAX_REBUILD.replace("rebuild_sched_domains_locked()", "rebuild_sched_domains()")),),
        {"double-lock": "bad-03"},
    ),
    Spec(
        "tree-relax-level-rebuilds-on-effective-cpus",
        "cpuset: look at the effective CPUs before rebuilding sched domains",
        "A cpuset whose allowed CPUs are all offline has no domain to rebuild.",
        ((CPUSET, RELAX_REBUILD, RELAX_REBUILD.replace("cs->cpus_allowed", "cs->effective_cpus")),),
        {"double-lock": "ok-02", "lock-not-held": "ok-04"},
    ),
    Spec(
        "tree-soft-limit-pick-reschedules",
        "memcg: reschedule while picking the soft limit victim",
        "The tree of nodes over their soft limit can be long, and every node that is not\n"
        "over its limit any more sends the walk round again: give the CPU away meanwhile.",
        ((MEMCG, SOFT_LIMIT_RETRY, SOFT_LIMIT_RETRY.replace("\t\tgoto retry;\n", "\t{\n\t\tcond_resched();\n\t\tgoto retry;\n\t}\n")),),
        {"sleep-in-atomic": "bad-12"},
    ),
    Spec(
        "tree-soft-limit-pick-bounded",
        "memcg: bound the walk that picks the soft limit victim",
        "The tree of nodes over their soft limit can be long: give up after a while.",
        ((MEMCG, "\tstruct mem_cgroup_per_node *mz;\n\nretry:\n\tmz = NULL;\n",
          "\tstruct mem_cgroup_per_node *mz;\n\tint loops = 0;\n\nretry:\n\tmz = NULL;\n\tif (++loops > 1024)\n\t\tgoto done;\n"),),
        {"sleep-in-atomic": "ok-10"},
    ),
)
SPECS = SPECS + CALLER_SPECS

# --- entered holding what every call of an ops member holds (facts/opscontext.py) -------
ONLINE_PIN = "\trefcount_set(&memcg->id.ref, 1);\n\tcss_get(css);\n\n\tif (unlikely(mem_cgroup_is_root(memcg)))\n"
FLUSH_NODES = (
    "\tfor_each_node_state(nid, N_MEMORY) {\n\t\tstruct mem_cgroup_per_node *pn = memcg->nodeinfo[nid];\n"
    "\t\tstruct mem_cgroup_per_node *ppn = NULL;\n\t\tstruct lruvec_stats_percpu *lstatc;\n\n"
)
OFFLINE_DRAIN = "\tdrain_all_stock(memcg);\n\n\tmem_cgroup_id_put(memcg);\n}\n"
MEMBER_SPECS: tuple[Spec, ...] = (
    Spec(
        "tree-online-logs-creator-path",
        "memcg: say which cgroup created a memcg, for debugging",
        "With pr_debug enabled, log the cgroup of the task that brought a memcg online.",
        ((MEMCG, ONLINE_PIN, "\trefcount_set(&memcg->id.ref, 1);\n\tcss_get(css);\n\n"
          "\tif (IS_ENABLED(CONFIG_DYNAMIC_DEBUG)) {\n\t\tchar buf[64];\n\n"
          "\t\tif (task_cgroup_path(current, buf, sizeof(buf)) >= 0)\n"
          "\t\t\tpr_debug(\"memcg online from %s\\n\", buf);\n\t}\n\n"
          "\tif (unlikely(mem_cgroup_is_root(memcg)))\n"),),
        {"double-lock": "bad-04"},
    ),
    Spec(
        "tree-rstat-flush-reschedules-per-node",
        "memcg: reschedule between nodes when flushing a memcg's stats",
        "Machines with many nodes spend long in one flush: give the CPU away between nodes.",
        ((MEMCG, FLUSH_NODES, FLUSH_NODES.replace("\t\tstruct lruvec_stats_percpu *lstatc;\n\n",
                                                   "\t\tstruct lruvec_stats_percpu *lstatc;\n\n\t\tcond_resched();\n")),),
        {"sleep-in-atomic": "bad-13"},
    ),
    Spec(
        "tree-offline-reschedules-after-drain",
        "memcg: reschedule after draining the stocks of an offlined memcg",
        "Draining every CPU's stock takes a while on large machines.",
        ((MEMCG, OFFLINE_DRAIN, "\tdrain_all_stock(memcg);\n\tcond_resched();\n\n\tmem_cgroup_id_put(memcg);\n}\n"),),
        {"sleep-in-atomic": "ok-11", "double-lock": "ok-03"},
    ),
)
SPECS = SPECS + MEMBER_SPECS

# --- lock order by lock class (facts/fieldlocks.py order pairs) ---------------------------
BLKCG = "block/blk-cgroup.c"
RESET_PDS = (
    "\t\tfor (i = 0; i < BLKCG_MAX_POLS; i++) {\n\t\t\tstruct blkcg_policy *pol = blkcg_policy[i];\n\n"
    "\t\t\tif (blkg->pd[i] && pol->pd_reset_stats_fn)\n\t\t\t\tpol->pd_reset_stats_fn(blkg->pd[i]);\n\t\t}\n"
)
CLASS_ORDER_SPECS: tuple[Spec, ...] = (
    Spec(
        "tree-reset-stats-takes-queue-lock-inside-blkcg-lock",
        "blk-cgroup: reset policy stats under the queue lock",
        "A policy's data can be freed by blkcg_deactivate_policy() while the reset runs;\n"
        "hold the queue lock of each blkg around its policies' reset.",
        ((BLKCG, RESET_PDS, "\t\tspin_lock(&blkg->q->queue_lock);\n" + RESET_PDS
          + "\t\tspin_unlock(&blkg->q->queue_lock);\n"),),
        {"lock-order-inversion": "bad-02"},
    ),
    Spec(
        "tree-reset-stats-policy-data-under-rcu",
        "blk-cgroup: read the policy data once when resetting stats",
        "Read each blkg's policy data once, so a concurrent deactivation is seen whole.",
        ((BLKCG, RESET_PDS, RESET_PDS.replace(
            "\t\t\tif (blkg->pd[i] && pol->pd_reset_stats_fn)\n\t\t\t\tpol->pd_reset_stats_fn(blkg->pd[i]);\n",
            "\t\t\tstruct blkg_policy_data *pd = READ_ONCE(blkg->pd[i]);\n\n"
            "\t\t\tif (pd && pol->pd_reset_stats_fn)\n\t\t\t\tpol->pd_reset_stats_fn(pd);\n")),),
        {"lock-order-inversion": "ok-02"},
    ),
)
SPECS = SPECS + CLASS_ORDER_SPECS

# --- rw semaphores taken again by the holder (engine/locknest.py double_lock) ------------
ATTACH_LOCK = (
    "\tcpus_read_lock();\n\tif (lock_threadgroup)\n\t\tpercpu_down_write(&cgroup_threadgroup_rwsem);\n}\n"
)
RWSEM_SPECS: tuple[Spec, ...] = (
    Spec(
        "attach-lock-reads-threadgroups-first",
        "cgroup: keep threadgroups stable while attaching a single thread",
        "Attaching one thread did not lock the threadgroup rwsem at all; take it for\n"
        "reading first, and for writing as before when a whole threadgroup moves.",
        ((CGROUP, ATTACH_LOCK, "\tcpus_read_lock();\n\tpercpu_down_read(&cgroup_threadgroup_rwsem);\n"
          "\tif (lock_threadgroup)\n\t\tpercpu_down_write(&cgroup_threadgroup_rwsem);\n}\n"),),
        {"double-lock": "bad-05"},
    ),
    Spec(
        "attach-lock-reads-threadgroups-otherwise",
        "cgroup: keep threadgroups stable while attaching a single thread",
        "Attaching one thread did not lock the threadgroup rwsem at all; take it for\n"
        "reading when the whole threadgroup is not write-locked.",
        ((CGROUP, ATTACH_LOCK, "\tcpus_read_lock();\n\tif (lock_threadgroup)\n"
          "\t\tpercpu_down_write(&cgroup_threadgroup_rwsem);\n\telse\n"
          "\t\tpercpu_down_read(&cgroup_threadgroup_rwsem);\n}\n"),),
        {"double-lock": "ok-04"},
    ),
)
SPECS = SPECS + RWSEM_SPECS

# --- softirq callbacks by their signature (engine/entryctx.py) -----------------------------
BLKG_RELEASE = (
    "\t/* release the blkcg and parent blkg refs this blkg has been holding */\n"
    "\tcss_put(&blkg->blkcg->css);\n\tblkg_free(blkg);\n}\n"
)
CALLBACK_SPECS: tuple[Spec, ...] = (
    Spec(
        "tree-blkg-release-unlinks-under-pol-mutex",
        "blk-cgroup: detach a released blkg's policy data under blkcg_pol_mutex",
        "A policy being unregistered walks the policy data; take its mutex while the\n"
        "released blkg drops its own.",
        ((BLKCG, BLKG_RELEASE, "\t/* release the blkcg and parent blkg refs this blkg has been holding */\n"
          "\tmutex_lock(&blkcg_pol_mutex);\n\tcss_put(&blkg->blkcg->css);\n"
          "\tmutex_unlock(&blkcg_pol_mutex);\n\tblkg_free(blkg);\n}\n"),),
        {"sleep-in-atomic": "bad-14"},
    ),
    Spec(
        "tree-blkg-release-counts-under-blkcg-lock",
        "blk-cgroup: count released blkgs per blkcg",
        "Keep a count of blkgs released, for debugging leaks; the blkcg's spinlock covers it.",
        ((BLKCG, BLKG_RELEASE, "\t/* release the blkcg and parent blkg refs this blkg has been holding */\n"
          "\tspin_lock(&blkg->blkcg->lock);\n\tblkg->blkcg->nr_released++;\n"
          "\tspin_unlock(&blkg->blkcg->lock);\n\tcss_put(&blkg->blkcg->css);\n\tblkg_free(blkg);\n}\n"),),
        {"sleep-in-atomic": "ok-12"},
    ),
    Spec(
        "tree-objcg-release-reparent-mutex",
        "memcg: serialise objcg list removal with the reparenting mutex",
        "Reparenting walks the objcg list under a mutex now; remove a released objcg under\n"
        "the same mutex.",
        ((MEMCG, "\tspin_lock_irqsave(&objcg_lock, flags);\n\tlist_del(&objcg->list);\n"
          "\tspin_unlock_irqrestore(&objcg_lock, flags);\n",
          "\tmutex_lock(&memcg_objcg_mutex);\n\tlist_del(&objcg->list);\n"
          "\tmutex_unlock(&memcg_objcg_mutex);\n"),),
        {"sleep-in-atomic": "bad-15"},
    ),
)
SPECS = SPECS + CALLBACK_SPECS

# --- ops members read on the nearest base (the file's initializers, not just the hunk) ----
CPUSET_ONLINE = "\tcpus_read_lock();\n\tmutex_lock(&cpuset_mutex);\n\n\tset_bit(CS_ONLINE, &cs->flags);\n"
CPUSET_FREE = "\tstruct cpuset *cs = css_cs(css);\n\n\tfree_cpuset(cs);\n}\n"
BASE_MEMBER_SPECS: tuple[Spec, ...] = (
    Spec(
        "tree-cpuset-online-takes-cgroup-lock",
        "cpuset: serialize onlining against hierarchy changes",
        "Take the cgroup lock while a new cpuset copies its parent's masks.",
        ((CPUSET, CPUSET_ONLINE, "\tcgroup_lock();\n" + CPUSET_ONLINE),),
        {"double-lock": "bad-06"},
    ),
    Spec(
        "tree-cpuset-free-takes-cgroup-lock",
        "cpuset: serialize freeing against hierarchy changes",
        "Take the cgroup lock while a cpuset's masks are freed.",
        ((CPUSET, CPUSET_FREE, "\tstruct cpuset *cs = css_cs(css);\n\n\tcgroup_lock();\n\tfree_cpuset(cs);\n"
          "\tcgroup_unlock();\n}\n"),),
        {"double-lock": "ok-05"},
    ),
)
SPECS = SPECS + BASE_MEMBER_SPECS

# --- a subsystem's wrapper of an RCU walk (facts/iterators.py) ----------------------------
SIBLING_WALK = ("\t\tif (!css_tryget_online(&sibling->css))\n\t\t\tcontinue;\n\n\t\trcu_read_unlock();\n"
                "\t\tupdate_cpumasks_hier(sibling, tmp, false);\n\t\trcu_read_lock();\n\t\tcss_put(&sibling->css);\n")
WRAPPED_WALK_SPECS: tuple[Spec, ...] = (
    Spec(
        "tree-sibling-walk-unpinned",
        "cpuset: drop the reference in the sibling update walk",
        "update_cpumasks_hier() does not free the sibling, so the walk needs no reference on it.",
        ((CPUSET, SIBLING_WALK, "\t\trcu_read_unlock();\n\t\tupdate_cpumasks_hier(sibling, tmp, false);\n"
          "\t\trcu_read_lock();\n"),),
        {"rcu-unprotected": "bad-03"},
    ),
    Spec(
        "tree-sibling-walk-pinned",
        "cpuset: skip siblings that are going offline earlier",
        "Do not update a sibling whose css can no longer be pinned; say why it is pinned.",
        ((CPUSET, SIBLING_WALK, "\t\t/* pinned across the unlocked update */\n" + SIBLING_WALK),),
        {"rcu-unprotected": "ok-02"},
    ),
)
SPECS = SPECS + WRAPPED_WALK_SPECS

# --- an RCU read section removed around a read that needs it (facts/rcuneeds.py) ----------
LEGACY_FREEZER = "kernel/cgroup/legacy_freezer.c"
FREEZING_READ = ("\trcu_read_lock();\n\tret = task_freezer(task)->state & CGROUP_FREEZING;\n"
                 "\trcu_read_unlock();\n")
STATS_LOOKUP = ("\trcu_read_lock();\n\tcgrp = rcu_dereference(*(void __rcu __force **)&kn->priv);\n"
                "\tif (!cgrp || !cgroup_tryget(cgrp)) {\n\t\trcu_read_unlock();\n\t\treturn -ENOENT;\n"
                "\t}\n\trcu_read_unlock();\n")
ATTACH_SRC = ("\t/* look up all src csets */\n\tspin_lock_irq(&css_set_lock);\n\trcu_read_lock();\n"
              "\ttask = leader;\n")
ATTACH_SRC_END = ("\t} while_each_thread(leader, task);\n\trcu_read_unlock();\n"
                  "\tspin_unlock_irq(&css_set_lock);\n\n\t/* prepare dst csets and commit */\n")
FORK_READ = ("\trcu_read_lock();\n\tcs = task_cs(task);\n\tsame_cs = (cs == task_cs(current));\n"
             "\trcu_read_unlock();\n")
RCU_REMOVED_SPECS: tuple[Spec, ...] = (
    Spec(
        "freezing-test-without-rcu",
        "cgroup/freezer: test the freezing state without RCU",
        "The state is one word; reading it needs no read-side section.",
        ((LEGACY_FREEZER, FREEZING_READ, "\tret = task_freezer(task)->state & CGROUP_FREEZING;\n"),),
        {"rcu-unprotected": "bad-04-tree"},
    ),
    Spec(
        "stats-cgroup-lookup-without-rcu",
        "cgroup: look up the stats cgroup without the RCU dance",
        "The dentry is pinned by the caller, so kn->priv cannot go away.",
        ((CGROUP_V1, STATS_LOOKUP, "\tcgrp = rcu_dereference(*(void __rcu __force **)&kn->priv);\n"
          "\tif (!cgrp || !cgroup_tryget(cgrp))\n\t\treturn -ENOENT;\n"),),
        {"rcu-unprotected": "bad-05-tree"},
    ),
    Spec(
        "attach-src-csets-under-css-set-lock",
        "cgroup: look up the source csets under css_set_lock alone",
        "css_set_lock already keeps task->cgroups stable; the RCU section adds nothing.",
        ((CGROUP, ATTACH_SRC, "\t/* look up all src csets */\n\tspin_lock_irq(&css_set_lock);\n\ttask = leader;\n"),
         (CGROUP, ATTACH_SRC_END, "\t} while_each_thread(leader, task);\n\tspin_unlock_irq(&css_set_lock);\n"
          "\n\t/* prepare dst csets and commit */\n")),
        {"rcu-unprotected": "ok-03-tree"},
    ),
    Spec(
        "fork-cpuset-under-css-set-lock",
        "cpuset: compare the fork's cpusets under css_set_lock",
        "Keep both cpuset reads consistent with a concurrent migration.",
        ((CPUSET, FORK_READ, "\tspin_lock_irq(&css_set_lock);\n\tcs = task_cs(task);\n"
          "\tsame_cs = (cs == task_cs(current));\n\tspin_unlock_irq(&css_set_lock);\n"),),
        {"rcu-unprotected": "ok-04-tree"},
    ),
)
SPECS = SPECS + RCU_REMOVED_SPECS
RWSTAT = "block/blk-cgroup-rwstat.c"
ONLINE_CHILDREN = ("\trcu_read_lock();\n\tcss_for_each_child(child, css) {\n\t\tif (child->flags & CSS_ONLINE) {\n"
                   "\t\t\tret = true;\n\t\t\tbreak;\n\t\t}\n\t}\n\trcu_read_unlock();\n")
RCU_WALK_REMOVED_SPECS: tuple[Spec, ...] = (
    Spec(
        "rwstat-sum-under-queue-lock",
        "blk-cgroup: sum the recursive rwstat under the queue lock alone",
        "The caller holds the queue lock, which keeps every blkg of the queue alive.",
        ((RWSTAT, "\tmemset(sum, 0, sizeof(*sum));\n\trcu_read_lock();\n", "\tmemset(sum, 0, sizeof(*sum));\n"),
         (RWSTAT, "\t\t\tsum->cnt[i] += blkg_rwstat_read_counter(rwstat, i);\n\t}\n\trcu_read_unlock();\n",
          "\t\t\tsum->cnt[i] += blkg_rwstat_read_counter(rwstat, i);\n\t}\n")),
        {"rcu-unprotected": "bad-06-tree"},
    ),
    Spec(
        "online-children-under-cgroup-mutex",
        "cgroup: css_has_online_children() is called with cgroup_mutex held",
        "Every caller holds cgroup_mutex; say so instead of taking the RCU read lock.",
        ((CGROUP, ONLINE_CHILDREN, ONLINE_CHILDREN.replace("\trcu_read_lock();\n", "\tlockdep_assert_held(&cgroup_mutex);\n")
          .replace("\trcu_read_unlock();\n", "")),),
        {"rcu-unprotected": "ok-05-tree"},
    ),
)
SPECS = SPECS + RCU_WALK_REMOVED_SPECS

# --- a lock a percpu_ref release takes: softirq context (facts/derive.py irq_locks) -------
REPARENT_LOCK = "\tspin_lock_irq(&objcg_lock);\n\n\t/* 1) Ready to reparent active objcg. */\n"
REPARENT_UNLOCK = "\tspin_unlock_irq(&objcg_lock);\n\n\tpercpu_ref_kill(&objcg->refcnt);\n"
RELEASE_IRQ_SPECS: tuple[Spec, ...] = (
    Spec(
        "reparent-objcgs-plain-lock",
        "memcg: reparenting objcgs need not disable interrupts",
        "The objcg list is only changed from process context.",
        ((MEMCG, REPARENT_LOCK, "\tspin_lock(&objcg_lock);\n\n\t/* 1) Ready to reparent active objcg. */\n"),
         (MEMCG, REPARENT_UNLOCK, "\tspin_unlock(&objcg_lock);\n\n\tpercpu_ref_kill(&objcg->refcnt);\n")),
        {"irq-unsafe-lock": "bad-04-tree"},
    ),
    Spec(
        "reparent-objcgs-bh-lock",
        "memcg: reparenting objcgs only needs bottom halves off",
        "The other taker of objcg_lock is obj_cgroup_release(), which runs from an RCU callback\n"
        "at worst, in softirq.",
        ((MEMCG, REPARENT_LOCK, "\tspin_lock_bh(&objcg_lock);\n\n\t/* 1) Ready to reparent active objcg. */\n"),
         (MEMCG, REPARENT_UNLOCK, "\tspin_unlock_bh(&objcg_lock);\n\n\tpercpu_ref_kill(&objcg->refcnt);\n")),
        {"irq-unsafe-lock": "ok-03-tree"},
    ),
)
SPECS = SPECS + RELEASE_IRQ_SPECS

# --- lock-order-inversion: an order the base keeps with the inner lock under a condition ----
CGROUP_V1 = "kernel/cgroup/cgroup-v1.c"
ATTACH_ALL_LOCK = "\tcgroup_lock();\n\tcgroup_attach_lock(true);\n\tfor_each_root(root) {\n"
ATTACH_ALL_UNLOCK = "\tcgroup_attach_unlock(true);\n\tcgroup_unlock();\n\n\treturn retval;\n"
CONDITIONAL_ORDER_SPECS: tuple[Spec, ...] = (
    Spec(
        "attach-all-threadgroup-before-hotplug",
        "cgroup-v1: open-code the attach locking of cgroup_attach_task_all()",
        "Take the locks cgroup_attach_lock() takes directly, the threadgroup rwsem first.",
        ((CGROUP_V1, ATTACH_ALL_LOCK, "\tcgroup_lock();\n\tpercpu_down_write(&cgroup_threadgroup_rwsem);\n"
          "\tcpus_read_lock();\n\tfor_each_root(root) {\n"),
         (CGROUP_V1, ATTACH_ALL_UNLOCK, "\tcpus_read_unlock();\n\tpercpu_up_write(&cgroup_threadgroup_rwsem);\n"
          "\tcgroup_unlock();\n\n\treturn retval;\n")),
        {"lock-order-inversion": "bad-03-tree"},
    ),
    Spec(
        "attach-all-hotplug-before-threadgroup",
        "cgroup-v1: open-code the attach locking of cgroup_attach_task_all()",
        "Take the locks cgroup_attach_lock() takes directly, in its order.",
        ((CGROUP_V1, ATTACH_ALL_LOCK, "\tcgroup_lock();\n\tcpus_read_lock();\n"
          "\tpercpu_down_write(&cgroup_threadgroup_rwsem);\n\tfor_each_root(root) {\n"),
         (CGROUP_V1, ATTACH_ALL_UNLOCK, "\tpercpu_up_write(&cgroup_threadgroup_rwsem);\n\tcpus_read_unlock();\n"
          "\tcgroup_unlock();\n\n\treturn retval;\n")),
        {"lock-order-inversion": "ok-03-tree"},
    ),
)
SPECS = SPECS + CONDITIONAL_ORDER_SPECS
