"""Fixture specs of references returned by functions the tree facts learn (facts/
returnrefs.py): get_proc_task() returns get_pid_task()'s task reference, get_swap_device()
a percpu_ref tryget of the swap device. Neither is named by kernel.yaml; a caller that
forgets the put (or puts twice) is found through the facts of the 6.1 tree, so these
fixtures run in tree mode. Edits of Linux 6.1 source, as in fixture_specs.py."""

from __future__ import annotations

from fixture_specs_base import Spec

PROC_BASE = "fs/proc/base.c"
SWAP_STATE = "mm/swap_state.c"

# comm_write(): the rename of a thread of another process is refused.
COMM_REFUSE = "\telse\n\t\tcount = -EINVAL;\n\n\tput_task_struct(p);\n\n\treturn count;\n}\n\nstatic int comm_show"
# swap_cache_get_folio(): the swap device is pinned around the page cache lookup.
SWAP_PIN = "\tsi = get_swap_device(entry);\n\tif (!si)\n\t\treturn NULL;\n\tfolio = filemap_get_folio("

SPECS: tuple[Spec, ...] = (
    Spec(
        "tree-proc-task-refused-rename-returns",
        "proc: refuse to rename a foreign thread at once",
        "Return -EINVAL as soon as the task is known to be in another thread group.",
        ((PROC_BASE, COMM_REFUSE, COMM_REFUSE.replace("\t\tcount = -EINVAL;\n", "\t\treturn -EINVAL;\n")),),
        {"refcount-imbalance": "bad-10"},
    ),
    Spec(
        "tree-proc-task-refused-rename-puts",
        "proc: refuse to rename a foreign thread at once",
        "Return -EINVAL as soon as the task is known to be in another thread group.",
        ((PROC_BASE, COMM_REFUSE, COMM_REFUSE.replace(
            "\telse\n\t\tcount = -EINVAL;\n",
            "\telse {\n\t\tput_task_struct(p);\n\t\treturn -EINVAL;\n\t}\n")),),
        {"refcount-imbalance": "ok-08"},
    ),
    Spec(
        "tree-proc-task-put-twice",
        "proc: release the task on the refused rename",
        "Put the task on the error branch too.",
        ((PROC_BASE, COMM_REFUSE, COMM_REFUSE.replace(
            "\telse\n\t\tcount = -EINVAL;\n",
            "\telse {\n\t\tput_task_struct(p);\n\t\tcount = -EINVAL;\n\t}\n")),),
        {"refcount-imbalance": "bad-11"},
    ),
    Spec(
        "tree-swap-device-pinned-early-return",
        "mm/swap: no swap cache lookup for a non-swap entry",
        "Migration and hwpoison entries have no swap cache: return before the lookup.",
        ((SWAP_STATE, SWAP_PIN, SWAP_PIN.replace(
            "\t\treturn NULL;\n\tfolio", "\t\treturn NULL;\n\tif (non_swap_entry(entry))\n\t\treturn NULL;\n\tfolio")),),
        {"refcount-imbalance": "bad-12"},
    ),
    Spec(
        "tree-swap-device-checked-before-pin",
        "mm/swap: no swap cache lookup for a non-swap entry",
        "Migration and hwpoison entries have no swap cache: return before the lookup.",
        ((SWAP_STATE, SWAP_PIN, "\tif (non_swap_entry(entry))\n\t\treturn NULL;\n" + SWAP_PIN),),
        {"refcount-imbalance": "ok-09"},
    ),
    Spec(
        "tree-proc-task-put-before-rename",
        "proc: drop the task reference before the rename",
        "The reference is not needed once the task is found.",
        ((PROC_BASE,
          "\tif (same_thread_group(current, p)) {\n\t\tset_task_comm(p, buffer);\n\t\tproc_comm_connector(p);\n"
          "\t}\n\telse\n\t\tcount = -EINVAL;\n\n\tput_task_struct(p);\n",
          "\tput_task_struct(p);\n\tif (same_thread_group(current, p)) {\n\t\tset_task_comm(p, buffer);\n"
          "\t\tproc_comm_connector(p);\n\t}\n\telse\n\t\tcount = -EINVAL;\n\n"),),
        {"use-after-release": "bad-03"},
    ),
)
