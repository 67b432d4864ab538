"""Fixture edits for the locking checks generalised from kernel semantics: an unlock that
does not match its lock, GFP flags carried by a local, a list walk whose body drops its
lock, and a lock a patch takes away from a call that needs it. Written here, in memcg and
cgroup code of Linux 6.1; see fixture_specs.py for the format."""

from __future__ import annotations

from fixture_specs_base import Spec

MEMCG = "mm/memcontrol.c"
CGROUP = "kernel/cgroup/cgroup.c"

OOM_REGISTER = "\tspin_lock(&memcg_oom_lock);\n\n\tevent->eventfd = eventfd;\n"
OOM_UNREGISTER_TAIL = "\t\t\tkfree(ev);\n\t\t}\n\t}\n\n\tspin_unlock(&memcg_oom_lock);\n"
OOM_NOTIFY_WALK = "\tlist_for_each_entry(ev, &memcg->oom_notify, list)\n\t\teventfd_signal(ev->eventfd, 1);\n"
OOM_EVENT_STRUCT = "struct mem_cgroup_eventfd_list {\n\tstruct list_head list;\n"
TASK_COUNT = (
    "\tspin_lock_irq(&css_set_lock);\n"
    "\tcount = __cgroup_task_count(cgrp);\n"
    "\tspin_unlock_irq(&css_set_lock);\n"
)
NAMED_EVENT = (MEMCG, OOM_EVENT_STRUCT, OOM_EVENT_STRUCT + "\tconst char *name;\n")

# Per-CPU work in a function that runs preemptible (it reclaims with GFP_KERNEL).
HIGH_RECLAIM = ("\t\treclaimed = try_to_free_mem_cgroup_pages(memcg, nr_pages - high,\n"
                "\t\t\t\t\tGFP_KERNEL, MEMCG_RECLAIM_MAY_SWAP);\n")
HIGH_COUNTED = HIGH_RECLAIM + "\t\t@@OP@@(memcg->vmstats_percpu->events[HIGH_RECLAIMS], reclaimed);\n"
MAX_RECLAIM = "\t\tif (nr_reclaims) {\n\t\t\tif (!try_to_free_mem_cgroup_pages(memcg, nr_pages - max,\n"
MAX_COUNTED = "\t\tif (nr_reclaims) {\n\t\t\t@@OP@@(memcg, PGSCAN_DIRECT, nr_pages - max);\n" \
    "\t\t\tif (!try_to_free_mem_cgroup_pages(memcg, nr_pages - max,\n"

SPECS: tuple[Spec, ...] = (
    # --- percpu-op-preemptible ---------------------------------------------------------------
    Spec(
        "high-write-counts-reclaim-percpu",
        "memcg: count the pages reclaimed by memory.high writes",
        "Account reclaim done on behalf of a memory.high write in the per-cpu events.",
        ((MEMCG, HIGH_RECLAIM, HIGH_COUNTED.replace("@@OP@@", "__this_cpu_add")),),
        {"percpu-op-preemptible": "bad-01"},
    ),
    Spec(
        "high-write-counts-reclaim-percpu-safe",
        "memcg: count the pages reclaimed by memory.high writes",
        "Account reclaim done on behalf of a memory.high write in the per-cpu events;\n"
        "the writer is preemptible, so use the preempt-safe operation.",
        ((MEMCG, HIGH_RECLAIM, HIGH_COUNTED.replace("@@OP@@", "this_cpu_add")),),
        {"percpu-op-preemptible": "ok-01"},
    ),
    Spec(
        "tree-max-write-counts-scan",
        "memcg: count reclaim scans started by memory.max writes",
        "Show in memory.stat how much reclaim a memory.max write asked for.",
        ((MEMCG, MAX_RECLAIM, MAX_COUNTED.replace("@@OP@@", "__count_memcg_events")),),
        {"percpu-op-preemptible": "bad-02"},
    ),
    Spec(
        "tree-max-write-counts-scan-safe",
        "memcg: count reclaim scans started by memory.max writes",
        "Show in memory.stat how much reclaim a memory.max write asked for; the writer\n"
        "is preemptible, so the counting helper that disables interrupts itself.",
        ((MEMCG, MAX_RECLAIM, MAX_COUNTED.replace("@@OP@@", "count_memcg_events")),),
        {"percpu-op-preemptible": "ok-02"},
    ),
    # --- sleep-in-atomic: blocking flags through a local ----------------------------------
    Spec(
        "oom-event-name-flags-in-local",
        "memcg: keep the arguments of an oom eventfd registration",
        "Remember what userspace wrote, for the debug output.",
        (NAMED_EVENT,
         (MEMCG, OOM_REGISTER, "\tgfp_t gfp = GFP_KERNEL;\n\n" + OOM_REGISTER
          + "\tevent->name = kstrdup(args, gfp);\n")),
        {"sleep-in-atomic": "bad-06"},
    ),
    Spec(
        "oom-event-name-flags-atomic-in-local",
        "memcg: keep the arguments of an oom eventfd registration",
        "Remember what userspace wrote, for the debug output; the copy is made under the lock\n"
        "and may fail.",
        (NAMED_EVENT,
         (MEMCG, OOM_REGISTER, "\tgfp_t gfp = GFP_NOWAIT | __GFP_NOWARN;\n\n"
          + OOM_REGISTER + "\tevent->name = kstrdup(args, gfp);\n")),
        {"sleep-in-atomic": "ok-04"},
    ),
    # --- lock-imbalance: an unlock that does not match the lock -----------------------------
    Spec(
        "oom-unregister-unlocks-irq",
        "memcg: re-enable interrupts after unregistering an oom eventfd",
        "Balance the interrupt state for callers from the eventfd wakeup path.",
        ((MEMCG, OOM_UNREGISTER_TAIL, OOM_UNREGISTER_TAIL.replace(
            "spin_unlock(&memcg_oom_lock)", "spin_unlock_irq(&memcg_oom_lock)")),),
        {"lock-imbalance": "bad-03-tree"},
    ),
    Spec(
        "oom-unregister-unlocks-event-lock",
        "memcg: unregister oom eventfds under the event list lock",
        "The event list lock already serialises the eventfd bookkeeping.",
        ((MEMCG, OOM_UNREGISTER_TAIL, OOM_UNREGISTER_TAIL.replace(
            "spin_unlock(&memcg_oom_lock)", "spin_unlock(&memcg->event_list_lock)")),),
        {"lock-imbalance": "bad-04-tree"},
    ),
    Spec(
        "oom-unregister-restores-irq-apart",
        "memcg: unregister oom eventfds with interrupts off",
        "The eventfd wakeup path may call in with interrupts disabled; restore them only after "
        "the list is consistent.",
        ((MEMCG, "\tstruct mem_cgroup_eventfd_list *ev, *tmp;\n\n\tspin_lock(&memcg_oom_lock);\n",
          "\tstruct mem_cgroup_eventfd_list *ev, *tmp;\n\tunsigned long flags;\n\n"
          "\tspin_lock_irqsave(&memcg_oom_lock, flags);\n"),
         (MEMCG, OOM_UNREGISTER_TAIL, OOM_UNREGISTER_TAIL + "\tlocal_irq_restore(flags);\n")),
        {"lock-imbalance": "ok-03"},
    ),
    # --- list-walk-lock-dropped -------------------------------------------------------------
    Spec(
        "oom-notify-signals-unlocked",
        "memcg: signal oom eventfds without holding memcg_oom_lock",
        "eventfd_signal() takes the eventfd's wait queue lock; do not nest it under ours.",
        ((MEMCG, OOM_NOTIFY_WALK,
          "\tlist_for_each_entry(ev, &memcg->oom_notify, list) {\n"
          "\t\tspin_unlock(&memcg_oom_lock);\n"
          "\t\teventfd_signal(ev->eventfd, 1);\n"
          "\t\tspin_lock(&memcg_oom_lock);\n"
          "\t}\n"),),
        {"list-walk-lock-dropped": "bad-01"},
    ),
    Spec(
        "oom-notify-stops-when-killed",
        "memcg: stop signalling oom eventfds when the notifier is killed",
        "A long list of listeners should not keep a dying task busy.",
        ((MEMCG, OOM_NOTIFY_WALK,
          "\tlist_for_each_entry(ev, &memcg->oom_notify, list) {\n"
          "\t\tif (fatal_signal_pending(current)) {\n"
          "\t\t\tspin_unlock(&memcg_oom_lock);\n"
          "\t\t\treturn -EINTR;\n"
          "\t\t}\n"
          "\t\teventfd_signal(ev->eventfd, 1);\n"
          "\t}\n"),),
        {"list-walk-lock-dropped": "ok-01"},
    ),
    # --- lock-not-held: the patch takes the lock away ---------------------------------------
    Spec(
        "task-count-unlocked",
        "cgroup: read the task count without css_set_lock",
        "The count is only a hint for userspace; avoid the irq-disabled section.",
        ((CGROUP, TASK_COUNT, "\tcount = __cgroup_task_count(cgrp);\n"),),
        {"lock-not-held": "bad-03-tree"},
    ),
    Spec(
        "task-count-scoped-guard",
        "cgroup: take css_set_lock with a scoped guard to count tasks",
        "No functional change.",
        ((CGROUP, TASK_COUNT, "\tscoped_guard(spinlock_irq, &css_set_lock)\n"
                              "\t\tcount = __cgroup_task_count(cgrp);\n"),),
        {"lock-not-held": "ok-02-tree"},
    ),
)

OOM_REGISTER_SECTION = (
    "\tspin_lock(&memcg_oom_lock);\n\n\tevent->eventfd = eventfd;\n"
    "\tlist_add(&event->list, &memcg->oom_notify);\n\n"
    "\t/* already in OOM ? */\n\tif (memcg->under_oom)\n\t\teventfd_signal(eventfd, 1);\n"
    "\tspin_unlock(&memcg_oom_lock);\n"
)

SCOPE_SPECS: tuple[Spec, ...] = (
    # --- lock-scope-shrunk ------------------------------------------------------------------
    Spec(
        "oom-register-links-after-unlock",
        "memcg: signal a new oom listener outside memcg_oom_lock",
        "eventfd_signal() takes the eventfd's wait queue lock; keep the oom lock section short.",
        ((MEMCG, OOM_REGISTER_SECTION,
          "\tspin_lock(&memcg_oom_lock);\n\tevent->eventfd = eventfd;\n"
          "\tspin_unlock(&memcg_oom_lock);\n\n"
          "\tlist_add(&event->list, &memcg->oom_notify);\n\n"
          "\t/* already in OOM ? */\n\tif (memcg->under_oom)\n\t\teventfd_signal(eventfd, 1);\n"),),
        {"lock-scope-shrunk": "bad-01-tree"},
    ),
    Spec(
        "oom-register-initialises-before-lock",
        "memcg: fill in a new oom listener before taking memcg_oom_lock",
        "The entry is private until list_add(); only the list needs the lock.",
        ((MEMCG, OOM_REGISTER_SECTION,
          "\tevent->eventfd = eventfd;\n\n\tspin_lock(&memcg_oom_lock);\n"
          "\tlist_add(&event->list, &memcg->oom_notify);\n\n"
          "\t/* already in OOM ? */\n\tif (memcg->under_oom)\n\t\teventfd_signal(eventfd, 1);\n"
          "\tspin_unlock(&memcg_oom_lock);\n"),),
        {"lock-scope-shrunk": "ok-01-tree"},
    ),
    Spec(
        "task-iter-fills-iterator-before-lock",
        "cgroup: fill in a task iterator before taking css_set_lock",
        "The iterator is the caller's own until css_task_iter_start() returns; only the\n"
        "css_set walk needs the lock.",
        ((CGROUP, "\tspin_lock_irq(&css_set_lock);\n\n\tit->ss = css->ss;\n\tit->flags = flags;\n\n",
          "\tit->ss = css->ss;\n\tit->flags = flags;\n\n\tspin_lock_irq(&css_set_lock);\n\n"),),
        {"lock-scope-shrunk": "ok-02-tree"},
    ),
)

SPECS = SPECS + SCOPE_SPECS

TRANSFER_LOCK = "\tcgroup_lock();\n\n\tcgroup_attach_lock(true);\n"

FLUSH_SPECS: tuple[Spec, ...] = (
    # --- flush-work-under-lock --------------------------------------------------------------
    Spec(
        "transfer-waits-for-source-release",
        "cgroup: let a dying source cgroup finish its release before a transfer",
        "Tasks moved out of a cgroup that is being released race with its css_set teardown.",
        (("kernel/cgroup/cgroup-v1.c", TRANSFER_LOCK,
          "\tcgroup_lock();\n\tflush_work(&from->self.destroy_work);\n\n\tcgroup_attach_lock(true);\n"),),
        {"flush-work-under-lock": "bad-01-tree"},
    ),
    Spec(
        "transfer-waits-for-source-release-unlocked",
        "cgroup: let a dying source cgroup finish its release before a transfer",
        "Tasks moved out of a cgroup that is being released race with its css_set teardown;\n"
        "wait before taking cgroup_mutex, which the release work takes.",
        (("kernel/cgroup/cgroup-v1.c", TRANSFER_LOCK,
          "\tflush_work(&from->self.destroy_work);\n\tcgroup_lock();\n\n\tcgroup_attach_lock(true);\n"),),
        {"flush-work-under-lock": "ok-01-tree"},
    ),
)

SPECS = SPECS + FLUSH_SPECS

# A local_lock_t section (include/linux/local_lock.h): preemption or interrupts are off
# without PREEMPT_RT, so nothing inside may sleep.
ACTIVATE_BATCH = ("\t\tfbatch = this_cpu_ptr(&cpu_fbatches.activate);\n"
                  "\t\tfolio_batch_add_and_move(fbatch, folio, folio_activate_fn);\n"
                  "\t\tlocal_unlock(&cpu_fbatches.lock);\n")
LOCAL_LOCK_SPECS: tuple[Spec, ...] = (
    Spec(
        "activate-batch-drains-under-local-lock",
        "mm/swap: drain every CPU once the activate batch fills",
        "Activated folios linger on other CPUs' batches; drain them all when ours is full.",
        (("mm/swap.c", ACTIVATE_BATCH,
          "\t\tfbatch = this_cpu_ptr(&cpu_fbatches.activate);\n"
          "\t\tif (!folio_batch_space(fbatch))\n\t\t\tlru_add_drain_all();\n"
          "\t\tfolio_batch_add_and_move(fbatch, folio, folio_activate_fn);\n"
          "\t\tlocal_unlock(&cpu_fbatches.lock);\n"),),
        {"sleep-in-atomic": "bad-16-tree"},
    ),
    Spec(
        "activate-batch-drains-after-local-lock",
        "mm/swap: drain every CPU once the activate batch fills",
        "Activated folios linger on other CPUs' batches; drain them all when ours is full,\n"
        "outside the per-CPU section, since the drain waits for the other CPUs.",
        (("mm/swap.c", ACTIVATE_BATCH,
          "\t\tfbatch = this_cpu_ptr(&cpu_fbatches.activate);\n"
          "\t\tif (!folio_batch_space(fbatch)) {\n"
          "\t\t\tlocal_unlock(&cpu_fbatches.lock);\n"
          "\t\t\tlru_add_drain_all();\n"
          "\t\t\tlocal_lock(&cpu_fbatches.lock);\n"
          "\t\t\tfbatch = this_cpu_ptr(&cpu_fbatches.activate);\n"
          "\t\t}\n"
          "\t\tfolio_batch_add_and_move(fbatch, folio, folio_activate_fn);\n"
          "\t\tlocal_unlock(&cpu_fbatches.lock);\n"),),
        {"sleep-in-atomic": "ok-13-tree"},
    ),
)

SPECS = SPECS + LOCAL_LOCK_SPECS

# --- lock-not-held on a function rebuilt on the nearest base: the patch's own lines name
# the lock, so the base's other takes of it count as the author's (engine/context.py) ------
FREEZER = "kernel/cgroup/freezer.c"
FREEZE_REVISIT = ("\tspin_lock_irq(&css_set_lock);\n"
                  "\tif (cgrp->nr_descendants == cgrp->freezer.nr_frozen_descendants)\n"
                  "\t\tcgroup_update_frozen(cgrp);\n\tspin_unlock_irq(&css_set_lock);\n")
FREEZE_FLAG = ("\tspin_lock_irq(&css_set_lock);\n\tif (freeze)\n\t\tset_bit(CGRP_FREEZE, &cgrp->flags);\n"
               "\telse\n\t\tclear_bit(CGRP_FREEZE, &cgrp->flags);\n\tspin_unlock_irq(&css_set_lock);\n")
REBUILT_LOCK_SPECS: tuple[Spec, ...] = (
    Spec(
        "freeze-revisit-without-css-set-lock",
        "cgroup: freezer: revisit the frozen state without css_set_lock",
        "The counters compared here only change under cgroup_mutex, which the caller holds.",
        ((FREEZER, FREEZE_REVISIT,
          "\tif (cgrp->nr_descendants == cgrp->freezer.nr_frozen_descendants)\n"
          "\t\tcgroup_update_frozen(cgrp);\n"),),
        {"lock-not-held": "bad-05-tree"},
    ),
    Spec(
        "freeze-flag-without-css-set-lock",
        "cgroup: freezer: set CGRP_FREEZE without css_set_lock",
        "set_bit() and clear_bit() are atomic; the lock around them protects nothing.",
        ((FREEZER, FREEZE_FLAG,
          "\tif (freeze)\n\t\tset_bit(CGRP_FREEZE, &cgrp->flags);\n"
          "\telse\n\t\tclear_bit(CGRP_FREEZE, &cgrp->flags);\n"),),
        {"lock-not-held": "ok-05-tree"},
    ),
)
FREEZE_WALK_END = "\t\tcgroup_freeze_task(task, freeze);\n\t}\n\tcss_task_iter_end(&it);\n"
REBUILT_LOCK_SPECS += (
    # The patch names no lock: the base's locking of the function is the author's.
    Spec(
        "freeze-walk-updates-state-unlocked",
        "cgroup: freezer: update the frozen state right after the walk",
        "The walk may have frozen the last running task; say so at once.",
        ((FREEZER, FREEZE_WALK_END, FREEZE_WALK_END + "\tcgroup_update_frozen(cgrp);\n"),),
        {"lock-not-held": "bad-06-tree"},
    ),
)
SPECS = SPECS + REBUILT_LOCK_SPECS

# --- lock-not-held: the lock a helper keeps when it succeeds, removed ------------------------
FREEZE_WRITE_LOCKED = ("\tcgrp = cgroup_kn_lock_live(of->kn, false);\n\tif (!cgrp)\n\t\treturn -ENOENT;\n\n"
                       "\tcgroup_freeze(cgrp, freeze);\n\n\tcgroup_kn_unlock(of->kn);\n\n\treturn nbytes;\n")
COND_KEEP_SPECS: tuple[Spec, ...] = (
    Spec(
        "freeze-write-without-kn-lock",
        "cgroup: freeze without the cgroup lock",
        "cgroup_freeze() only flips per-cgroup state; the kernfs node keeps the cgroup alive.",
        ((CGROUP, FREEZE_WRITE_LOCKED, "\tcgrp = of->kn->parent->priv;\n\n"
          "\tcgroup_freeze(cgrp, freeze);\n\n\treturn nbytes;\n"),),
        {"lock-not-held": "bad-07-tree"},
    ),
    Spec(
        "freeze-write-with-cgroup-lock",
        "cgroup: freeze under cgroup_lock()",
        "Take cgroup_mutex directly: the cgroup's liveness is checked by the freezer itself.",
        ((CGROUP, FREEZE_WRITE_LOCKED, "\tcgrp = of->kn->parent->priv;\n\n\tcgroup_lock();\n"
          "\tcgroup_freeze(cgrp, freeze);\n\tcgroup_unlock();\n\n\treturn nbytes;\n"),),
        {"lock-not-held": "ok-07-tree"},
    ),
)
SPECS = SPECS + COND_KEEP_SPECS
