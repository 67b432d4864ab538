"""Fixture specs of the generalised wrong-cgroup-charge rules (session 12): allocations
added uncharged beside charged ones (any allocator, a SLAB_ACCOUNT cache), a charge and
its uncharge that a patch makes disagree, and more ways to name current's memcg. Edits of
Linux 6.1 source, as in fixture_specs.py."""

from __future__ import annotations

from fixture_specs_base import Spec

IPC_MSG = "ipc/msg.c"
FORK = "kernel/fork.c"
PERCPU = "mm/percpu.c"
PIDS = "kernel/cgroup/pids.c"

MSQ_ALLOC = "\tmsq = kmalloc(sizeof(*msq), GFP_KERNEL_ACCOUNT);\n\tif (unlikely(!msq))\n\t\treturn -ENOMEM;\n"
MSQ_COMM = MSQ_ALLOC + "\tmsq->q_comm = kstrdup(current->comm, GFP_KERNEL@@ACCOUNT@@);\n"
SIG_ALLOC = "\tsig = kmem_cache_zalloc(signal_cachep, GFP_KERNEL);\n\ttsk->signal = sig;\n\tif (!sig)\n\t\treturn -ENOMEM;\n"
SIG_NAME = SIG_ALLOC + "\tsig->comm = kmemdup(current->comm, TASK_COMM_LEN, GFP_KERNEL@@ACCOUNT@@);\n"

PCPU_CHARGE = "\tif (obj_cgroup_charge(objcg, gfp, pcpu_obj_full_size(size))) {\n"
PCPU_POST_UNCHARGE = "\t\tobj_cgroup_uncharge(objcg, pcpu_obj_full_size(size));\n\t\tobj_cgroup_put(objcg);\n"
PCPU_FREE_UNCHARGE = "\tobj_cgroup_uncharge(objcg, pcpu_obj_full_size(size));\n\n\trcu_read_lock();\n"

PIDS_MOVE = "\t\tpids_charge(pids, 1);\n\t\tpids_uncharge(old_pids, 1);\n\t}\n\n\treturn 0;\n}\n"
PIDS_CAN_ATTACH = "static int pids_can_attach(struct cgroup_taskset *tset)\n{\n"
PIDS_HELPER = """/* Move one task's charge from @from to @to. */
static void pids_move_charge(struct pids_cgroup *to, struct pids_cgroup *from)
{
\tpids_charge(to, 1);
\tpids_uncharge(from, 1);
}

"""

# Allocators whose gfp flags are optional (kzalloc_obj() and friends, include/linux/slab.h
# since 7.0): left out, they are GFP_KERNEL, so uncharged and sleeping.
SHM = "ipc/shm.c"
CGROUP = "kernel/cgroup/cgroup.c"
SHP_ALLOC = "\tshp = kmalloc(sizeof(*shp), GFP_KERNEL_ACCOUNT);\n\tif (unlikely(!shp))\n\t\treturn -ENOMEM;\n"
SHP_STATS = SHP_ALLOC + "\tshp->stats = kzalloc_obj(*shp->stats@@FLAGS@@);\n\tif (!shp->stats) {\n" \
    "\t\tkfree(shp);\n\t\treturn -ENOMEM;\n\t}\n"
NOTIFY_KN = "\t\tunsigned long next = last + CGROUP_FILE_NOTIFY_MIN_INTV;\n\n"
NOTIFY_LOG = "\t\tunsigned long next = last + CGROUP_FILE_NOTIFY_MIN_INTV;\n" \
    "\t\tstruct cgroup_notify_rec *rec = kzalloc_obj(*rec@@FLAGS@@);\n\n" \
    "\t\tif (rec)\n\t\t\tllist_add(&rec->node, &cfile->notify_log);\n"

# Task-state scopes: set_active_memcg() and memalloc_noio_save() undone on every path.
INOTIFY = "fs/notify/inotify/inotify_fsnotify.c"
ZONED = "block/blk-zoned.c"
INOTIFY_ALLOC = ("\tevent = kmalloc(alloc_len, GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL);\n"
                 "\tset_active_memcg(old_memcg);\n\n\tif (unlikely(!event)) {\n")
INOTIFY_OVERFLOW = "\t\tfsnotify_queue_overflow(group);\n\t\treturn -ENOMEM;\n\t}\n\n"
INOTIFY_LATE = ("\tevent = kmalloc(alloc_len, GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL);\n"
                "\n\tif (unlikely(!event)) {\n")
INOTIFY_COOKIE = ("\t\tfsnotify_queue_overflow(group);\n@@RESTORE@@\t\treturn -ENOMEM;\n\t}\n"
                  "\tevent->cookie_name = kstrdup(name->name, GFP_KERNEL_ACCOUNT);\n"
                  "\tset_active_memcg(old_memcg);\n\n")
ZONES_NONE = "\tif (!ret) {\n\t\tpr_warn(\"%s: No zones reported\\n\", disk->disk_name);\n\t\tret = -ENODEV;\n\t}\n"
ZONES_FAIL = ("\tif (!ret) {\n\t\tpr_warn(\"%s: No zones reported\\n\", disk->disk_name);\n"
              "@@RESTORE@@\t\treturn -ENODEV;\n\t}\n")

SPECS: tuple[Spec, ...] = (
    Spec(
        "tree-inotify-name-charged-to-group-leaks-memcg",
        "inotify: charge the copied name to the listening group too",
        "Keep a copy of the name with the event, paid for by the group like the event.",
        ((INOTIFY, INOTIFY_ALLOC, INOTIFY_LATE),
         (INOTIFY, INOTIFY_OVERFLOW, INOTIFY_COOKIE.replace("@@RESTORE@@", ""))),
        {"scope-not-restored": "bad-01"},
    ),
    Spec(
        "tree-inotify-name-charged-to-group",
        "inotify: charge the copied name to the listening group too",
        "Keep a copy of the name with the event, paid for by the group like the event;\n"
        "the allocation failure path restores the task's memcg first.",
        ((INOTIFY, INOTIFY_ALLOC, INOTIFY_LATE),
         (INOTIFY, INOTIFY_OVERFLOW, INOTIFY_COOKIE.replace(
             "@@RESTORE@@", "\t\tset_active_memcg(old_memcg);\n"))),
        {"scope-not-restored": "ok-01"},
    ),
    Spec(
        "tree-inotify-charge-group-only-when-set",
        "inotify: charge the group only when it has a memcg",
        "Skip switching the active memcg for groups created without one.",
        ((INOTIFY, "\told_memcg = set_active_memcg(group->memcg);\n",
          "\tif (group->memcg)\n\t\told_memcg = set_active_memcg(group->memcg);\n"),
         (INOTIFY, "\tset_active_memcg(old_memcg);\n\n\tif (unlikely(!event)) {\n",
          "\tif (group->memcg)\n\t\tset_active_memcg(old_memcg);\n\n\tif (unlikely(!event)) {\n")),
        {"scope-not-restored": "ok-03"},
    ),
    Spec(
        "tree-zoned-no-zones-returns-in-noio",
        "block: fail at once when a zoned disk reports no zones",
        "Nothing after the report can succeed without zones: return the error directly.",
        ((ZONED, ZONES_NONE, ZONES_FAIL.replace("@@RESTORE@@", "")),),
        {"scope-not-restored": "bad-02"},
    ),
    Spec(
        "tree-zoned-no-zones-returns-after-restore",
        "block: fail at once when a zoned disk reports no zones",
        "Nothing after the report can succeed without zones: leave the noio scope and\n"
        "return the error directly.",
        ((ZONED, ZONES_NONE, ZONES_FAIL.replace("@@RESTORE@@", "\t\tmemalloc_noio_restore(noio_flag);\n")),),
        {"scope-not-restored": "ok-02"},
    ),
    Spec(
        "shm-stats-obj-unaccounted",
        "ipc/shm: keep attach statistics per segment",
        "Count attaches and detaches of each segment for /proc/sysvipc/shm.",
        ((SHM, SHP_ALLOC, SHP_STATS.replace("@@FLAGS@@", "")),),
        {"accounting-partial-conversion": "bad-05"},
    ),
    Spec(
        "shm-stats-obj-accounted",
        "ipc/shm: keep attach statistics per segment",
        "Count attaches and detaches of each segment for /proc/sysvipc/shm; the creator\n"
        "pays for them as it pays for the segment.",
        ((SHM, SHP_ALLOC, SHP_STATS.replace("@@FLAGS@@", ", GFP_KERNEL_ACCOUNT")),),
        {"accounting-partial-conversion": "ok-05"},
    ),
    Spec(
        "tree-file-notify-log-default-flags",
        "cgroup: log file notifications for debugging",
        "Record each notification of a cgroup file so that a stuck poller can be debugged.",
        ((CGROUP, NOTIFY_KN, NOTIFY_LOG.replace("@@FLAGS@@", "")),),
        {"sleep-in-atomic": "bad-11"},
    ),
    Spec(
        "tree-file-notify-log-atomic-flags",
        "cgroup: log file notifications for debugging",
        "Record each notification of a cgroup file so that a stuck poller can be debugged;\n"
        "the record is allocated under the lock and may be dropped.",
        ((CGROUP, NOTIFY_KN, NOTIFY_LOG.replace("@@FLAGS@@", ", GFP_ATOMIC")),),
        {"sleep-in-atomic": "ok-09"},
    ),
    Spec(
        "msg-queue-comm-unaccounted",
        "ipc/msg: remember the creator's command name",
        "Keep the comm of the task that created a message queue, for /proc/sysvipc/msg.",
        ((IPC_MSG, MSQ_ALLOC, MSQ_COMM.replace("@@ACCOUNT@@", "")),),
        {"accounting-partial-conversion": "bad-03"},
    ),
    Spec(
        "msg-queue-comm-accounted",
        "ipc/msg: remember the creator's command name",
        "Keep the comm of the task that created a message queue, for /proc/sysvipc/msg;\n"
        "the creator pays for it as it pays for the queue.",
        ((IPC_MSG, MSQ_ALLOC, MSQ_COMM.replace("@@ACCOUNT@@", "_ACCOUNT")),),
        {"accounting-partial-conversion": "ok-03"},
    ),
    Spec(
        "tree-signal-comm-unaccounted",
        "fork: keep the comm of the task that created a signal struct",
        "For debugging thread-group leaks.",
        ((FORK, SIG_ALLOC, SIG_NAME.replace("@@ACCOUNT@@", "")),),
        {"accounting-partial-conversion": "bad-04"},
    ),
    Spec(
        "tree-signal-comm-accounted",
        "fork: keep the comm of the task that created a signal struct",
        "For debugging thread-group leaks; charged like the signal struct itself.",
        ((FORK, SIG_ALLOC, SIG_NAME.replace("@@ACCOUNT@@", "_ACCOUNT")),),
        {"accounting-partial-conversion": "ok-04"},
    ),
    Spec(
        "tree-percpu-charge-size-only",
        "percpu: charge only the requested size to the memcg",
        "The obj_cgroup pointer array is per chunk, not per allocation: charge the size.",
        ((PERCPU, PCPU_CHARGE, PCPU_CHARGE.replace("pcpu_obj_full_size(size)", "size * num_possible_cpus()")),),
        {"charge-uncharge-asymmetry": "bad-01"},
    ),
    Spec(
        "tree-percpu-charge-sizes-together",
        "percpu: charge only the requested size to the memcg",
        "The obj_cgroup pointer array is per chunk, not per allocation: charge the size,\n"
        "and uncharge the same on failure and on free.",
        ((PERCPU, PCPU_CHARGE, PCPU_CHARGE.replace("pcpu_obj_full_size(size)", "size * num_possible_cpus()")),
         (PERCPU, PCPU_POST_UNCHARGE, PCPU_POST_UNCHARGE.replace("pcpu_obj_full_size(size)", "size * num_possible_cpus()")),
         (PERCPU, PCPU_FREE_UNCHARGE, PCPU_FREE_UNCHARGE.replace("pcpu_obj_full_size(size)", "size * num_possible_cpus()"))),
        {"charge-uncharge-asymmetry": "ok-01"},
    ),
    Spec(
        "tree-pids-attach-charge-dropped",
        "cgroup/pids: do not charge the destination before the move commits",
        "The destination is charged in attach now.",
        ((PIDS, PIDS_MOVE, "\t\tpids_uncharge(old_pids, 1);\n\t}\n\n\treturn 0;\n}\n"),),
        {"charge-uncharge-asymmetry": "bad-02"},
    ),
    Spec(
        "tree-pids-attach-move-helper",
        "cgroup/pids: move a task's charge in one helper",
        "can_attach and cancel_attach move the charge the same way.",
        ((PIDS, PIDS_MOVE, "\t\tpids_move_charge(pids, old_pids);\n\t}\n\n\treturn 0;\n}\n"),
         (PIDS, PIDS_CAN_ATTACH, PIDS_HELPER + PIDS_CAN_ATTACH)),
        {"charge-uncharge-asymmetry": "ok-02"},
    ),
)

MEMCG = "mm/memcontrol.c"
SWAP_STATE = "mm/swap_state.c"
SKMEM_UNCHARGE = "void mem_cgroup_uncharge_skmem(struct mem_cgroup *memcg, unsigned int nr_pages)\n{\n"
HIGH_WORK = "\tmemcg = container_of(work, struct mem_cgroup, high_work);\n\treclaim_high(memcg, MEMCG_CHARGE_BATCH, GFP_KERNEL);\n"
SWAPIN_CHARGE = "\tif (mem_cgroup_swapin_charge_folio(folio, NULL, gfp_mask, entry))\n"

CURRENT_SPECS: tuple[Spec, ...] = (
    Spec(
        "skmem-uncharge-active-memcg",
        "memcg: give socket memory back to the remote-charging target",
        "A socket charged while a remote memcg was active should give its pages back there.",
        ((MEMCG, SKMEM_UNCHARGE, SKMEM_UNCHARGE + "\tmemcg = active_memcg() ?: memcg;\n"),),
        {"uncharge-current": "bad-02"},
    ),
    Spec(
        "high-work-reclaims-current-memcg",
        "memcg: reclaim the cgroup that is over its high limit",
        "Reclaim from the cgroup of the task that allocates, not a stale pointer.",
        ((MEMCG, HIGH_WORK, "\tmemcg = get_mem_cgroup_from_mm(current->mm);\n"
          "\treclaim_high(memcg, MEMCG_CHARGE_BATCH, GFP_KERNEL);\n\tcss_put(&memcg->css);\n"),),
        {"charge-in-async-context": "bad-03"},
    ),
    Spec(
        "high-work-reclaims-own-memcg",
        "memcg: reclaim the cgroup that queued the high work",
        "Keep the cgroup alive while it is reclaimed from its own work item.",
        ((MEMCG, HIGH_WORK, "\tmemcg = container_of(work, struct mem_cgroup, high_work);\n"
          "\tcss_get(&memcg->css);\n\treclaim_high(memcg, MEMCG_CHARGE_BATCH, GFP_KERNEL);\n"
          "\tcss_put(&memcg->css);\n"),),
        {"charge-in-async-context": "ok-04"},
    ),
    Spec(
        "tree-swapin-charges-current-mm",
        "mm/swap: charge swapped-in pages to the faulting mm",
        "Charge the page read from swap to an mm rather than to the swap entry's record.",
        ((SWAP_STATE, SWAPIN_CHARGE,
          "\tif (mem_cgroup_swapin_charge_folio(folio, current->mm, gfp_mask, entry))\n"),),
        {"charge-current-for-other-owner": "bad-02"},
    ),
    Spec(
        "tree-swapin-charges-vma-mm",
        "mm/swap: charge swapped-in pages to the faulting mm",
        "Charge the page read from swap to the mm of the VMA it is read for.",
        ((SWAP_STATE, SWAPIN_CHARGE,
          "\tif (mem_cgroup_swapin_charge_folio(folio, vma ? vma->vm_mm : NULL, gfp_mask, entry))\n"),),
        {"charge-current-for-other-owner": "ok-02"},
    ),
)
SPECS = SPECS + CURRENT_SPECS

# --- accounting-partial-conversion: allocators that store through their first argument ------
CPUSET = "kernel/cgroup/cpuset.c"
CPUMASKS_ALLOC = (
    "\tif (!zalloc_cpumask_var(pmask1, GFP_KERNEL))\n\t\treturn -ENOMEM;\n\n"
    "\tif (!zalloc_cpumask_var(pmask2, GFP_KERNEL))\n\t\tgoto free_one;\n\n"
    "\tif (!zalloc_cpumask_var(pmask3, GFP_KERNEL))\n\t\tgoto free_two;\n"
)
OUT_PARAM_SPECS: tuple[Spec, ...] = (
    Spec(
        "cpuset-masks-partly-accounted",
        "cpuset: charge a cpuset's masks to the cgroup creating it",
        "Every mkdir allocates the masks of a new cpuset; charge them to the creator.",
        ((CPUSET, CPUMASKS_ALLOC,
          CPUMASKS_ALLOC.replace("pmask1, GFP_KERNEL)", "pmask1, GFP_KERNEL_ACCOUNT)")
          .replace("pmask2, GFP_KERNEL)", "pmask2, GFP_KERNEL_ACCOUNT)")),),
        {"accounting-partial-conversion": "bad-06"},
    ),
    Spec(
        "cpuset-masks-accounted",
        "cpuset: charge a cpuset's masks to the cgroup creating it",
        "Every mkdir allocates the masks of a new cpuset; charge all three to the creator.",
        ((CPUSET, CPUMASKS_ALLOC, CPUMASKS_ALLOC.replace("GFP_KERNEL)", "GFP_KERNEL_ACCOUNT)")),),
        {"accounting-partial-conversion": "ok-06"},
    ),
)
SPECS = SPECS + OUT_PARAM_SPECS

# --- charge-bypass-by-task-state --------------------------------------------------------------
PIDS = "kernel/cgroup/pids.c"
PIDS_CHARGE = "\tpids = css_pids(css);\n\terr = pids_try_charge(pids, 1);\n"
RETRY_CHARGE = "\nretry:\n\tif (consume_stock(memcg, nr_pages))\n\t\treturn 0;\n"
BYPASS_SPECS: tuple[Spec, ...] = (
    Spec(
        "pids-fork-skips-kthreads",
        "cgroup/pids: do not count kernel threads",
        "Kernel threads forked by a kthreadd in a pids cgroup should not hit its limit.",
        ((PIDS, PIDS_CHARGE,
          "\tpids = css_pids(css);\n\tif (current->flags & PF_KTHREAD)\n\t\treturn 0;\n"
          "\terr = pids_try_charge(pids, 1);\n"),),
        {"charge-bypass-by-task-state": "bad-01"},
    ),
    Spec(
        "memcg-charge-skips-dying",
        "memcg: let dying tasks allocate freely",
        "A task with a fatal signal pending is about to free its memory; do not make it\n"
        "reclaim on its way out.",
        ((MEMCG, RETRY_CHARGE,
          "\nretry:\n\tif (fatal_signal_pending(current))\n\t\treturn 0;\n"
          "\tif (consume_stock(memcg, nr_pages))\n\t\treturn 0;\n"),),
        {"charge-bypass-by-task-state": "bad-02"},
    ),
    Spec(
        "memcg-charge-forces-dying",
        "memcg: let dying tasks allocate past the limit",
        "A task with a fatal signal pending is about to free its memory; charge it past\n"
        "the limit rather than make it reclaim on its way out.",
        ((MEMCG, RETRY_CHARGE,
          "\nretry:\n\tif (fatal_signal_pending(current))\n\t\tgoto force;\n"
          "\tif (consume_stock(memcg, nr_pages))\n\t\treturn 0;\n"),),
        {"charge-bypass-by-task-state": "ok-01"},
    ),
    Spec(
        "pids-fork-fails-for-dying",
        "cgroup/pids: do not charge a fork that is being killed",
        "A fork whose parent has a fatal signal pending fails anyway; fail it before\n"
        "touching the counter.",
        ((PIDS, PIDS_CHARGE,
          "\tpids = css_pids(css);\n\tif (fatal_signal_pending(current))\n\t\treturn -EINTR;\n"
          "\terr = pids_try_charge(pids, 1);\n"),),
        {"charge-bypass-by-task-state": "ok-02"},
    ),
)
SPECS = SPECS + BYPASS_SPECS

# --- accounting-partial-conversion: alloc_percpu() takes no flags and is never charged -------
IOCOST = "block/blk-iocost.c"
IOC_ALLOC = ("\tioc = kzalloc(sizeof(*ioc), GFP_KERNEL);\n\tif (!ioc)\n\t\treturn -ENOMEM;\n\n"
             "\tioc->pcpu_stat = alloc_percpu(struct ioc_pcpu_stat);\n")
PERCPU_SPECS: tuple[Spec, ...] = (
    Spec(
        "iocost-init-percpu-unaccounted",
        "blk-iocost: charge the controller's state to the task enabling it",
        "Enabling io.cost on a device allocates its controller; charge it to the writer.",
        ((IOCOST, IOC_ALLOC, IOC_ALLOC.replace("sizeof(*ioc), GFP_KERNEL)", "sizeof(*ioc), GFP_KERNEL_ACCOUNT)")),),
        {"accounting-partial-conversion": "bad-07-tree"},
    ),
    Spec(
        "iocost-init-percpu-accounted",
        "blk-iocost: charge the controller's state to the task enabling it",
        "Enabling io.cost on a device allocates its controller and its per-cpu stats;\n"
        "charge both to the writer.",
        ((IOCOST, IOC_ALLOC,
          IOC_ALLOC.replace("sizeof(*ioc), GFP_KERNEL)", "sizeof(*ioc), GFP_KERNEL_ACCOUNT)")
          .replace("alloc_percpu(struct ioc_pcpu_stat)", "alloc_percpu_gfp(struct ioc_pcpu_stat, GFP_KERNEL_ACCOUNT)")),),
        {"accounting-partial-conversion": "ok-07-tree"},
    ),
)
SPECS = SPECS + PERCPU_SPECS

# --- charge-current-for-other-owner: a function handed the memcg it charges -----------------
SKMEM_CHARGE = "\tif (try_charge(memcg, gfp_mask, nr_pages) == 0) {\n\t\tmod_memcg_state(memcg, MEMCG_SOCK, nr_pages);\n"
HANDED_MEMCG_SPECS: tuple[Spec, ...] = (
    Spec(
        "skmem-charges-running-task",
        "memcg: charge socket buffers to the task that runs the charge",
        "Attribute socket memory to whoever is allocating it right now.",
        ((MEMCG, SKMEM_CHARGE,
          "\tstruct mem_cgroup *cur = get_mem_cgroup_from_mm(current->mm);\n\n"
          "\tif (try_charge(cur, gfp_mask, nr_pages) == 0) {\n"
          "\t\tmod_memcg_state(cur, MEMCG_SOCK, nr_pages);\n"),),
        {"charge-current-for-other-owner": "bad-03"},
    ),
    Spec(
        "skmem-falls-back-to-running-task",
        "memcg: charge socket buffers of sockets without a memcg to the running task",
        "A socket created before the memory controller was enabled has no memcg; charge\n"
        "its buffers to the allocating task instead of not at all.",
        ((MEMCG, SKMEM_CHARGE,
          "\tif (!memcg)\n\t\tmemcg = get_mem_cgroup_from_mm(current->mm);\n\n" + SKMEM_CHARGE),),
        {"charge-current-for-other-owner": "ok-03"},
    ),
)
SPECS = SPECS + HANDED_MEMCG_SPECS

# --- charge-current-for-other-owner: a fallback to current when a lookup finds nothing -------
KSM = "mm/ksm.c"
KSM_COPY_CHARGE = ("\tnew_page = alloc_page_vma(GFP_HIGHUSER_MOVABLE, vma, address);\n\tif (new_page &&\n"
                   "\t    mem_cgroup_charge(page_folio(new_page), vma->vm_mm, GFP_KERNEL)) {\n")
KSM_COPY_MEMCG = ("\tnew_page = alloc_page_vma(GFP_HIGHUSER_MOVABLE, vma, address);\n"
                  "\tmemcg = get_mem_cgroup_from_objcg(folio_objcg(folio));\n"
                  "\tif (!memcg)\n\t\tmemcg = get_mem_cgroup_from_mm(@@FALLBACK@@);\n"
                  "\tif (new_page && charge_memcg(page_folio(new_page), memcg, GFP_KERNEL)) {\n")
FALLBACK_SPECS: tuple[Spec, ...] = (
    Spec(
        "ksm-copy-falls-back-to-running-task",
        "ksm: charge a page's copy to the original page's memcg",
        "The copy of a KSM page belongs with the page it copies: charge it to that page's\n"
        "memcg, and to the running task's when the page has none.",
        ((KSM, KSM_COPY_CHARGE, KSM_COPY_MEMCG.replace("@@FALLBACK@@", "current->mm")),),
        {"charge-current-for-other-owner": "bad-04-tree"},
    ),
    Spec(
        "ksm-copy-falls-back-to-vma-mm",
        "ksm: charge a page's copy to the original page's memcg",
        "The copy of a KSM page belongs with the page it copies: charge it to that page's\n"
        "memcg, and to the mm of the VMA it is mapped in when the page has none.",
        ((KSM, KSM_COPY_CHARGE, KSM_COPY_MEMCG.replace("@@FALLBACK@@", "vma->vm_mm")),),
        {"charge-current-for-other-owner": "ok-04-tree"},
    ),
)
SPECS = SPECS + FALLBACK_SPECS

# --- interrupt-guard-removed: a test for interrupt context taken out before current is read --
SK_ALLOC_GUARD = ("\trcu_read_lock();\n\t/* Don't associate the sock with unrelated interrupted task's cgroup. */\n"
                  "\tif (in_interrupt()) {\n\t\tcgroup = &cgrp_dfl_root.cgrp;\n\t\tcgroup_get(cgroup);\n"
                  "\t\tgoto out;\n\t}\n\n\twhile (true) {\n")
ACTIVE_MEMCG_BODY = ("\tif (!in_task())\n\t\treturn this_cpu_read(int_active_memcg);\n"
                     "\telse\n\t\treturn current->active_memcg;\n}\n")
GUARD_SPECS: tuple[Spec, ...] = (
    Spec(
        "sk-alloc-cgroup-in-softirq",
        "cgroup: associate every new socket with its creator's cgroup",
        "Sockets created in softirq (a TCP child socket) got the root cgroup; give them\n"
        "the cgroup of the task that runs the code instead, like all the others.",
        ((CGROUP, SK_ALLOC_GUARD, "\trcu_read_lock();\n\twhile (true) {\n"),),
        {"interrupt-guard-removed": "bad-01-tree"},
    ),
    Spec(
        "active-memcg-task-only",
        "memcg: read the active memcg from the task",
        "Simplify active_memcg(): the remote memcg is a property of the task.",
        ((MEMCG, ACTIVE_MEMCG_BODY, "\treturn current->active_memcg;\n}\n"),),
        {"interrupt-guard-removed": "bad-02"},
    ),
    Spec(
        "sk-alloc-cgroup-reworded-guard",
        "cgroup: test for task context in cgroup_sk_alloc()",
        "in_task() also excludes NMI context, which in_interrupt() covers differently;\n"
        "say what is meant.",
        ((CGROUP, SK_ALLOC_GUARD, "\trcu_read_lock();\n\t/* Don't associate the sock with unrelated interrupted task's cgroup. */\n"
          "\tif (!in_task()) {\n\t\tcgroup = &cgrp_dfl_root.cgrp;\n\t\tcgroup_get(cgroup);\n"
          "\t\tgoto out;\n\t}\n\n\twhile (true) {\n"),),
        {"interrupt-guard-removed": "ok-01"},
    ),
    Spec(
        "active-memcg-guard-without-current",
        "memcg: remote charging only from task context",
        "Interrupt context has no remote memcg to charge: stop keeping a per-CPU one.",
        ((MEMCG, ACTIVE_MEMCG_BODY, "\treturn in_task() ? current->active_memcg : NULL;\n}\n"),),
        {"interrupt-guard-removed": "ok-02"},
    ),
)
SPECS = SPECS + GUARD_SPECS

# --- cgroup-charge-current-for-other-task: a controller counter of current's cgroup ---------
PIDS_RELEASE = "\tstruct pids_cgroup *pids = css_pids(task_css(task, pids_cgrp_id));\n\n\tpids_uncharge(pids, 1);\n"
OTHER_TASK_SPECS: tuple[Spec, ...] = (
    Spec(
        "pids-release-uncharges-reaper",
        "cgroup/pids: uncharge released tasks from the running cgroup",
        "Look the pids cgroup up through the task running the release.",
        ((PIDS, PIDS_RELEASE, PIDS_RELEASE.replace("task_css(task,", "task_css(current,")),),
        {"cgroup-charge-current-for-other-task": "bad-01"},
    ),
    Spec(
        "pids-release-uncharges-task",
        "cgroup/pids: uncharge released tasks from their own cgroup",
        "Look the pids cgroup up through the task being released, checked.",
        ((PIDS, PIDS_RELEASE, PIDS_RELEASE.replace("task_css(task, pids_cgrp_id)",
                                                   "task_css_check(task, pids_cgrp_id, true)")),),
        {"cgroup-charge-current-for-other-task": "ok-01"},
    ),
    Spec(
        "pids-cancel-fork-current-without-cset",
        "cgroup/pids: cancel a fork's charge where it was made",
        "Use current's cgroup only when the fork was not given a css_set.",
        ((PIDS, "\tif (cset)\n\t\tcss = cset->subsys[pids_cgrp_id];\n\telse\n\t\tcss = task_css_check(current, pids_cgrp_id, true);\n\tpids = css_pids(css);\n\tpids_uncharge(pids, 1);\n",
          "\tcss = cset ? cset->subsys[pids_cgrp_id] : task_css_check(current, pids_cgrp_id, true);\n"
          "\tpids = css_pids(css);\n\tpids_uncharge(pids, 1);\n"),),
        {"cgroup-charge-current-for-other-task": "ok-02"},
    ),
)
SPECS = SPECS + OTHER_TASK_SPECS

# --- remote-charge-scope-removed: accounted allocations left without their remote memcg -----
FANOTIFY = "fs/notify/fanotify/fanotify.c"
INOTIFY_SCOPE = ("\t */\n\told_memcg = set_active_memcg(group->memcg);\n"
                 "\tevent = kmalloc(alloc_len, GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL);\n"
                 "\tset_active_memcg(old_memcg);\n")
FANOTIFY_SCOPE = ("\t/* Whoever is interested in the event, pays for the allocation. */\n"
                  "\told_memcg = set_active_memcg(group->memcg);\n\n\tif (fanotify_is_perm_event(mask)) {\n")
FANOTIFY_RESTORE = "out:\n\tset_active_memcg(old_memcg);\n\treturn event;\n}\n"
REMOTE_SCOPE_SPECS: tuple[Spec, ...] = (
    Spec(
        "inotify-event-charged-to-writer",
        "inotify: allocate events in the context that generates them",
        "Switching the active memcg for every event costs more than it is worth.",
        ((INOTIFY, INOTIFY_SCOPE, "\t */\n\tevent = kmalloc(alloc_len, GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL);\n"),),
        {"remote-charge-scope-removed": "bad-01"},
    ),
    Spec(
        "inotify-event-unaccounted",
        "inotify: stop accounting event allocations",
        "Events are bounded by max_queued_events; do not charge them to anyone.",
        ((INOTIFY, INOTIFY_SCOPE, "\t */\n\tevent = kmalloc(alloc_len, GFP_KERNEL | __GFP_RETRY_MAYFAIL);\n"),),
        {"remote-charge-scope-removed": "ok-01"},
    ),
    Spec(
        "fanotify-event-charged-to-writer",
        "fanotify: drop the remote memcg around event allocation",
        "The allocation helpers already take the group's gfp flags.",
        ((FANOTIFY, FANOTIFY_SCOPE, "\tif (fanotify_is_perm_event(mask)) {\n"),
         (FANOTIFY, FANOTIFY_RESTORE, "out:\n\treturn event;\n}\n")),
        {"remote-charge-scope-removed": "bad-02-tree"},
    ),
    Spec(
        "fanotify-event-scope-commented",
        "fanotify: explain who pays for events",
        "Say why the group's memcg is charged, next to the scope that does it.",
        ((FANOTIFY, FANOTIFY_SCOPE, "\t/*\n\t * Whoever is interested in the event pays for it: the listener's\n"
          "\t * memcg, not the task that triggered the event.\n\t */\n"
          "\told_memcg = set_active_memcg(group->memcg);\n\n\tif (fanotify_is_perm_event(mask)) {\n"),),
        {"remote-charge-scope-removed": "ok-02-tree"},
    ),
)
SPECS = SPECS + REMOTE_SCOPE_SPECS

# --- charge-uncharge-asymmetry: a page count made a literal while its twin keeps the count ---
RELEASE_UNCHARGE = ("\tnr_pages = nr_bytes >> PAGE_SHIFT;\n\n\tif (nr_pages)\n"
                    "\t\tobj_cgroup_uncharge_pages(objcg, nr_pages);\n")
LITERAL_AMOUNT_SPECS: tuple[Spec, ...] = (
    Spec(
        "objcg-release-uncharges-one-page",
        "memcg: the leftover of a released objcg is at most one page",
        "Byte leftovers of per-CPU stocks never add up to more than a page.",
        ((MEMCG, RELEASE_UNCHARGE, "\tnr_pages = nr_bytes >> PAGE_SHIFT;\n\n\tif (nr_pages)\n"
          "\t\tobj_cgroup_uncharge_pages(objcg, 1);\n"),),
        {"charge-uncharge-asymmetry": "bad-03-tree"},
    ),
)
SPECS = SPECS + LITERAL_AMOUNT_SPECS

# --- owner-lookup-replaced-by-current: an object's cgroup swapped for current's ---------------
PAGE_IO = "mm/page_io.c"
HUGE_MEMORY = "mm/huge_memory.c"
SWAP_BLKG = "\tmemcg = page_memcg(page);\n\tif (!memcg)\n\t\treturn;\n"
DEFERRED_MEMCG = "\tstruct mem_cgroup *memcg = page_memcg(compound_head(page));\n#endif\n"
OWNER_LOOKUP_SPECS: tuple[Spec, ...] = (
    Spec(
        "swap-io-associated-with-reclaimer",
        "mm: associate swap-out I/O with the task doing the writeout",
        "The page may be racing with uncharge; the running task's memcg is always there.",
        ((PAGE_IO, SWAP_BLKG, "\tmemcg = mem_cgroup_from_task(current);\n\tif (!memcg)\n\t\treturn;\n"),),
        {"owner-lookup-replaced-by-current": "bad-01"},
    ),
    Spec(
        "deferred-split-memcg-from-folio",
        "mm: thp: look up the deferred split memcg through the folio",
        "Use the folio API for the head page's memcg.",
        ((HUGE_MEMORY, DEFERRED_MEMCG,
          "\tstruct mem_cgroup *memcg = folio_memcg(page_folio(page));\n#endif\n"),),
        {"owner-lookup-replaced-by-current": "ok-01"},
    ),
    Spec(
        "pids-cancel-fork-task-css",
        "cgroup/pids: cancel a fork's charge in the child's cgroup",
        "The child's css_set is what was charged; use the task, not current.",
        ((PIDS, "\t\tcss = task_css_check(current, pids_cgrp_id, true);\n\tpids = css_pids(css);\n"
          "\tpids_uncharge(pids, 1);\n",
          "\t\tcss = task_css_check(task, pids_cgrp_id, true);\n\tpids = css_pids(css);\n"
          "\tpids_uncharge(pids, 1);\n"),),
        {"owner-lookup-replaced-by-current": "ok-02"},
    ),
)
OWNER_LOOKUP_SPECS = OWNER_LOOKUP_SPECS + (
    Spec(
        "swap-io-falls-back-to-reclaimer",
        "mm: associate swap-out I/O of uncharged pages with the writer",
        "A page without a memcg still gets its I/O throttled: use the writer's cgroup then.",
        ((PAGE_IO, SWAP_BLKG, "\tmemcg = page_memcg(page) ?: mem_cgroup_from_task(current);\n"),),
        {"owner-lookup-replaced-by-current": "ok-03"},
    ),
)
SPECS = SPECS + OWNER_LOOKUP_SPECS
