"""Fixture specs of the generalised reference and charge rules: more counted objects
(kernfs nodes), a put on the failure branch of a tryget, charges in a kernel thread.
Edits of Linux 6.1 source, as in fixture_specs.py."""

from __future__ import annotations

from fixture_specs_base import Spec

CGROUP = "kernel/cgroup/cgroup.c"
PSI = "kernel/sched/psi.c"

PATH_FROM_ID = (
    "\tkn = kernfs_find_and_get_node_by_id(cgrp_dfl_root.kf_root, id);\n\tif (!kn)\n\t\treturn;\n"
    "\tkernfs_path(kn, buf, buflen);\n"
)
TRYGET_FROM_ID = "\tif (cgrp && !cgroup_tryget(cgrp))\n\t\tcgrp = NULL;\n"
RTPOLL_LOOP = "\t\tif (kthread_should_stop())\n\t\t\tbreak;\n\n\t\tpsi_rtpoll_work(group);\n"

SPECS: tuple[Spec, ...] = (
    Spec(
        "kernfs-path-leaks-node",
        "cgroup: print nothing for a cgroup id that names a file",
        "Only directories are cgroups; leave the buffer alone for anything else.",
        ((CGROUP, PATH_FROM_ID,
          "\tkn = kernfs_find_and_get_node_by_id(cgrp_dfl_root.kf_root, id);\n\tif (!kn)\n\t\treturn;\n"
          "\tif (kernfs_type(kn) != KERNFS_DIR)\n\t\treturn;\n"
          "\tkernfs_path(kn, buf, buflen);\n"),),
        {"refcount-imbalance": "bad-08"},
    ),
    Spec(
        "kernfs-path-puts-node",
        "cgroup: print nothing for a cgroup id that names a file",
        "Only directories are cgroups; drop the node and leave the buffer alone otherwise.",
        ((CGROUP, PATH_FROM_ID,
          "\tkn = kernfs_find_and_get_node_by_id(cgrp_dfl_root.kf_root, id);\n\tif (!kn)\n\t\treturn;\n"
          "\tif (kernfs_type(kn) != KERNFS_DIR) {\n\t\tkernfs_put(kn);\n\t\treturn;\n\t}\n"
          "\tkernfs_path(kn, buf, buflen);\n"),),
        {"refcount-imbalance": "ok-06"},
    ),
    Spec(
        "failed-tryget-puts-cgroup",
        "cgroup: drop a dying cgroup found by id",
        "A cgroup that is being released cannot be returned; let go of it.",
        ((CGROUP, TRYGET_FROM_ID,
          "\tif (cgrp && !cgroup_tryget(cgrp)) {\n\t\tcgroup_put(cgrp);\n\t\tcgrp = NULL;\n\t}\n"),),
        {"refcount-imbalance": "bad-09"},
    ),
    Spec(
        "failed-tryget-forgets-cgroup",
        "cgroup: note a dying cgroup found by id",
        "A cgroup that is being released cannot be returned; say so in the debug log.",
        ((CGROUP, TRYGET_FROM_ID,
          "\tif (cgrp && !cgroup_tryget(cgrp)) {\n\t\tpr_debug(\"cgroup %llu is dying\\n\", id);\n"
          "\t\tcgrp = NULL;\n\t}\n"),),
        {"refcount-imbalance": "ok-07"},
    ),
    Spec(
        "rtpoll-worker-logs-accounted",
        "psi: keep a log of rtpoll wakeups",
        "Record each poll wakeup for the debug file.",
        ((PSI, RTPOLL_LOOP,
          "\t\tif (kthread_should_stop())\n\t\t\tbreak;\n\n"
          "\t\tgroup->rtpoll_log = kzalloc(sizeof(*group->rtpoll_log), GFP_KERNEL_ACCOUNT);\n"
          "\t\tpsi_rtpoll_work(group);\n"),),
        {"charge-in-async-context": "bad-02"},
    ),
    Spec(
        "rtpoll-worker-logs-unaccounted",
        "psi: keep a log of rtpoll wakeups",
        "Record each poll wakeup for the debug file; the log is the system's, not a cgroup's.",
        ((PSI, RTPOLL_LOOP,
          "\t\tif (kthread_should_stop())\n\t\t\tbreak;\n\n"
          "\t\tgroup->rtpoll_log = kzalloc(sizeof(*group->rtpoll_log), GFP_KERNEL);\n"
          "\t\tpsi_rtpoll_work(group);\n"),),
        {"charge-in-async-context": "ok-03"},
    ),
)

KHUGEPAGED = "mm/khugepaged.c"
MEMCG = "mm/memcontrol.c"

CHARGE_SPECS: tuple[Spec, ...] = (
    Spec(
        "khugepaged-charges-itself",
        "mm/khugepaged: charge the collapsed page where it is allocated",
        "Charge the new huge page from the allocating context.",
        ((KHUGEPAGED, "\tif (unlikely(mem_cgroup_charge(page_folio(*hpage), mm, gfp)))\n",
          "\tif (unlikely(mem_cgroup_charge(page_folio(*hpage), current->mm, gfp)))\n"),),
        {"charge-current-for-other-owner": "bad-01"},
    ),
    Spec(
        "charge-own-mm-as-current",
        "memcg: charge faults in our own address space to current",
        "A fault in current's own mm may use current's (or the active) memcg directly.",
        ((MEMCG, "\tmemcg = get_mem_cgroup_from_mm(mm);\n\tret = charge_memcg(folio, memcg, gfp);\n",
          "\tif (mm == current->mm)\n\t\tmemcg = get_mem_cgroup_from_mm(current->mm);\n"
          "\telse\n\t\tmemcg = get_mem_cgroup_from_mm(mm);\n"
          "\tret = charge_memcg(folio, memcg, gfp);\n"),),
        {"charge-current-for-other-owner": "ok-01"},
    ),
)
SPECS = SPECS + CHARGE_SPECS

BFQ_CGROUP = "block/bfq-cgroup.c"
BFQG_PUT_END = "\tblkg_put(bfqg_to_blkg(bfqg));\n\n\tbfqg_put(bfqg);\n}\n"
# A new user of bfq's own get/put helpers (bfqg_get() is atomic_inc(&bfqg->ref),
# bfqg_put() frees the group with the last reference): known from the tree's facts only.
BFQG_SNAPSHOT = """
/* Copy @bfqg's weight for a debug dump, keeping the group alive meanwhile. */
static int bfqg_weight_snapshot(struct bfq_group *bfqg, unsigned short *weight)
{
\tbfqg_get(bfqg);
\tif (!bfqg->online)
@@EXIT@@\t*weight = bfqg->entity.weight;
\tbfqg_put(bfqg);
\treturn 0;
}
"""

HELPER_SPECS: tuple[Spec, ...] = (
    Spec(
        "tree-bfqg-get-helper-leaks",
        "bfq: add a weight snapshot of a group",
        "For the debug dump of a group's weight.",
        ((BFQ_CGROUP, BFQG_PUT_END,
          BFQG_PUT_END + BFQG_SNAPSHOT.replace("@@EXIT@@", "\t\treturn -ENODEV;\n")),),
        {"memory-leak": "bad-03"},
    ),
    Spec(
        "tree-bfqg-get-helper-put-on-exit",
        "bfq: add a weight snapshot of a group",
        "For the debug dump of a group's weight.",
        ((BFQ_CGROUP, BFQG_PUT_END,
          BFQG_PUT_END + BFQG_SNAPSHOT.replace(
              "@@EXIT@@", "\t\tgoto out;\n").replace("\tbfqg_put(bfqg);\n\treturn 0;",
                                                 "out:\n\tbfqg_put(bfqg);\n\treturn 0;")),),
        {"memory-leak": "ok-03"},
    ),
)
SPECS = SPECS + HELPER_SPECS

UNCHARGE_SPECS: tuple[Spec, ...] = (
    Spec(
        "kmem-uncharge-current-objcg",
        "memcg: uncharge kmem pages without decoding memcg_data",
        "Look the objcg up directly instead of decoding the page's memcg_data.",
        ((MEMCG, "\tobjcg = __folio_objcg(folio);\n\tobj_cgroup_uncharge_pages(objcg, nr_pages);\n",
          "\tobjcg = get_obj_cgroup_from_current();\n\tobj_cgroup_uncharge_pages(objcg, nr_pages);\n"),),
        {"uncharge-current": "bad-01"},
    ),
    Spec(
        "kmem-charge-cancelled-on-busy-page",
        "memcg: refuse to charge a kmem page that is already charged",
        "Give the fresh charge back when the page already has memcg_data; say who pays.",
        ((MEMCG, "\t\tret = obj_cgroup_charge_pages(objcg, gfp, 1 << order);\n\t\tif (!ret) {\n",
          "\t\tret = obj_cgroup_charge_pages(objcg, gfp, 1 << order);\n"
          "\t\tif (!ret && WARN_ON_ONCE(page->memcg_data)) {\n"
          "\t\t\tobj_cgroup_uncharge_pages(objcg, 1 << order);\n\t\t\tret = -EBUSY;\n\t\t}\n"
          "\t\tif (!ret) {\n"),
         (MEMCG, "\tobjcg = get_obj_cgroup_from_current();\n\tif (objcg) {\n",
          "\tobjcg = get_obj_cgroup_from_current();\t/* the allocating task pays */\n\tif (objcg) {\n")),
        {"uncharge-current": "ok-01"},
    ),
)
SPECS = SPECS + UNCHARGE_SPECS

# --- a reference taken after the RCU section that found the object (css-get-after-rcu-unlock)
PID = "kernel/pid.c"
VPID_GET = "\ttask = find_task_by_vpid(nr);\n\tif (task)\n\t\tget_task_struct(task);\n\trcu_read_unlock();\n"
OOM_GROUP_GET = "\tif (oom_group)\n\t\tcss_get(&oom_group->css);\nout:\n\trcu_read_unlock();\n"
RCU_GAP_SPECS: tuple[Spec, ...] = (
    Spec(
        "vpid-task-pinned-after-rcu",
        "pid: keep the RCU section of find_get_task_by_vpid() short",
        "Only the lookup needs RCU; take the task reference after it.",
        ((PID, VPID_GET, "\ttask = find_task_by_vpid(nr);\n\trcu_read_unlock();\n\n\tif (task)\n"
          "\t\tget_task_struct(task);\n"),),
        {"css-get-after-rcu-unlock": "bad-01"},
    ),
    Spec(
        "vpid-task-pinned-in-rcu",
        "pid: document find_get_task_by_vpid()",
        "Say why the reference is taken inside the RCU section.",
        ((PID, VPID_GET, "\ttask = find_task_by_vpid(nr);\n\t/* pinned before the task can be freed */\n"
          "\tif (task)\n\t\tget_task_struct(task);\n\trcu_read_unlock();\n"),),
        {"css-get-after-rcu-unlock": "ok-01"},
    ),
    Spec(
        "vpid-task-early-exit-unlock",
        "pid: return early from find_get_task_by_vpid() when no task has the id",
        "Leave the RCU section at once when the lookup fails.",
        ((PID, VPID_GET, "\ttask = find_task_by_vpid(nr);\n\tif (!task) {\n\t\trcu_read_unlock();\n"
          "\t\treturn NULL;\n\t}\n\tget_task_struct(task);\n\trcu_read_unlock();\n"),),
        {"css-get-after-rcu-unlock": "ok-03"},
    ),
    Spec(
        "tree-oom-group-pinned-after-rcu",
        "memcg: take the oom group reference outside the RCU section",
        "The hierarchy walk needs RCU, the reference does not.",
        ((MEMCG, OOM_GROUP_GET, "out:\n\trcu_read_unlock();\n\n\tif (oom_group)\n\t\tcss_get(&oom_group->css);\n"),),
        {"css-get-after-rcu-unlock": "bad-02"},
    ),
    Spec(
        "tree-oom-group-tryget-in-rcu",
        "memcg: do not pick a dying oom group",
        "A group whose css is already released cannot be killed as a whole: skip it.",
        ((MEMCG, OOM_GROUP_GET, "\tif (oom_group && !css_tryget(&oom_group->css))\n\t\toom_group = NULL;\n"
          "out:\n\trcu_read_unlock();\n"),),
        {"css-get-after-rcu-unlock": "ok-02"},
    ),
)
SPECS = SPECS + RCU_GAP_SPECS

# --- get-removed-put-kept: a get deleted, its put left behind ---------------------------------
V1 = "kernel/cgroup/cgroup-v1.c"
CPUSET = "kernel/cgroup/cpuset.c"
TRANSFER_PIN = "\t\tif (task)\n\t\t\tget_task_struct(task);\n\t\tcss_task_iter_end(&it);\n"
RESMASK_PIN = "\tcss_get(&cs->css);\n\tkernfs_break_active_protection(of->kn);\n"
RESMASK_UNPIN = "\tkernfs_unbreak_active_protection(of->kn);\n\tcss_put(&cs->css);\n"
GET_REMOVED_SPECS: tuple[Spec, ...] = (
    Spec(
        "transfer-relies-on-iterator-pin",
        "cgroup: drop the extra task reference in cgroup_transfer_tasks()",
        "The css task iterator already pins the task it returns, so the extra reference\n"
        "is redundant.",
        ((V1, TRANSFER_PIN, "\t\tcss_task_iter_end(&it);\n"),),
        {"get-removed-put-kept": "bad-01-tree"},
    ),
    Spec(
        "resmask-write-relies-on-open-file",
        "cpuset: the open file keeps the cpuset alive",
        "An open cpuset file pins its css, so the write does not need its own reference\n"
        "around the flush of the hotplug work.",
        ((CPUSET, RESMASK_PIN, "\tkernfs_break_active_protection(of->kn);\n"),),
        {"get-removed-put-kept": "bad-02-tree"},
    ),
    Spec(
        "resmask-write-drops-pin-and-put",
        "cpuset: the open file keeps the cpuset alive",
        "An open cpuset file pins its css, so the write needs neither its own reference\n"
        "nor the put that dropped it.",
        ((CPUSET, RESMASK_PIN, "\tkernfs_break_active_protection(of->kn);\n"),
         (CPUSET, RESMASK_UNPIN, "\tkernfs_unbreak_active_protection(of->kn);\n")),
        {"get-removed-put-kept": "ok-01-tree"},
    ),
    Spec(
        "transfer-pins-with-tryget",
        "cgroup: skip tasks that are already being freed in cgroup_transfer_tasks()",
        "Only migrate a task whose usage count is still positive.",
        ((V1, TRANSFER_PIN,
          "\t\tif (task && !refcount_inc_not_zero(&task->usage))\n\t\t\ttask = NULL;\n"
          "\t\tcss_task_iter_end(&it);\n"),),
        {"get-removed-put-kept": "ok-02-tree"},
    ),
)
SPECS = SPECS + GET_REMOVED_SPECS

# --- refcount-imbalance: a css task iteration left without its css_task_iter_end() ---------
NODEMASK_WALK = ("\t\tcpuset_change_task_nodemask(task, &newmems);\n\n\t\tmm = get_task_mm(task);\n"
                 "\t\tif (!mm)\n\t\t\tcontinue;\n")
ITER_SPECS: tuple[Spec, ...] = (
    Spec(
        "nodemask-walk-returns-on-dying-task",
        "cgroup/cpuset: stop rebinding at a dying task",
        "Once a task is exiting the rest of the walk is racing with the exits; stop there.",
        ((CPUSET, NODEMASK_WALK, NODEMASK_WALK.replace(
            "\t\tcpuset_change_task_nodemask(task, &newmems);\n",
            "\t\tif (task->flags & PF_EXITING)\n\t\t\treturn;\n\t\tcpuset_change_task_nodemask(task, &newmems);\n")),),
        {"refcount-imbalance": "bad-13-tree"},
    ),
    Spec(
        "nodemask-walk-breaks-on-dying-task",
        "cgroup/cpuset: stop rebinding at a dying task",
        "Once a task is exiting the rest of the walk is racing with the exits; stop there.",
        ((CPUSET, NODEMASK_WALK, NODEMASK_WALK.replace(
            "\t\tcpuset_change_task_nodemask(task, &newmems);\n",
            "\t\tif (task->flags & PF_EXITING)\n\t\t\tbreak;\n\t\tcpuset_change_task_nodemask(task, &newmems);\n")),),
        {"refcount-imbalance": "ok-13-tree"},
    ),
)
SPECS = SPECS + ITER_SPECS

# --- refcount-imbalance: a reference stored through an out-parameter on a failing path -------
RDMA = "kernel/cgroup/rdma.c"
RDMA_ERR = ("err:\n\tmutex_unlock(&rdmacg_mutex);\n\trdmacg_uncharge_hierarchy(cg, device, p, index);\n"
            "\treturn ret;\n}\nEXPORT_SYMBOL(rdmacg_try_charge);\n")
OUT_PARAM_SPECS: tuple[Spec, ...] = (
    Spec(
        "rdma-charge-failure-reports-cgroup",
        "cgroup/rdma: tell the caller which cgroup refused the charge",
        "Drivers want to log the cgroup that hit its limit; hand it back on failure too, and "
        "leave the partial charge to the caller's error handling.",
        ((RDMA, RDMA_ERR, "err:\n\tmutex_unlock(&rdmacg_mutex);\n\t*rdmacg = cg;\n\treturn ret;\n}\n"
          "EXPORT_SYMBOL(rdmacg_try_charge);\n"),),
        {"refcount-imbalance": "bad-14-tree"},
    ),
    Spec(
        "rdma-charge-failure-clears-out",
        "cgroup/rdma: clear the caller's cgroup pointer on failure",
        "Callers that print the cgroup on failure must not see a stale pointer.",
        ((RDMA, RDMA_ERR, RDMA_ERR.replace("\treturn ret;\n", "\t*rdmacg = NULL;\n\treturn ret;\n")),),
        {"refcount-imbalance": "ok-14-tree"},
    ),
)
SPECS = SPECS + OUT_PARAM_SPECS
