"""Fixture specs of session 12: the plain C slips a CI robot is expected to catch beside
the memcg rules (a comparison typed for a shift, an unsigned variable tested for being
negative, an error path that returns the 0 of an earlier success), and lock contracts
stated by other assertions than lockdep_assert_held()."""

from __future__ import annotations

from fixture_specs_base import Spec

CGROUP = "kernel/cgroup/cgroup.c"
MEMCG = "mm/memcontrol.c"

PSI_ENABLED = "\treturn (cgroup_feature_disable_mask & (1 << OPT_FEATURE_PRESSURE)) == 0;\n"
DESCENDANTS = "\tstruct cgroup *cgrp;\n\tint descendants;\n\tssize_t ret;\n"
HIGH_RECLAIM = (
    "\t\treclaimed = try_to_free_mem_cgroup_pages(memcg, nr_pages - high,\n"
    "\t\t\t\t\tGFP_KERNEL, MEMCG_RECLAIM_MAY_SWAP);\n\n"
    "\t\tif (!reclaimed && !nr_retries--)\n\t\t\tbreak;\n"
)

MKDIR_POPULATE = "\tret = css_populate_dir(&cgrp->self);\n\tif (ret)\n\t\tgoto out_destroy;\n"
STAT_SHOW = "static int memory_stat_show(struct seq_file *m, void *v)\n"
STAT_SNAPSHOT = """/*
 * A copy of memory.stat for a later dump; the caller frees it.
 */
static int memcg_stat_snapshot(struct mem_cgroup *memcg, char **out)
{
\tchar *buf;
\tint ret;

\tret = memcg_stat_may_dump(memcg);
\tif (ret)
\t\treturn ret;

\tbuf = kmalloc(PAGE_SIZE, GFP_KERNEL);
\tif (!buf)
@@FAIL@@
\tmemory_stat_format(memcg, buf, PAGE_SIZE);
\t*out = buf;
out:
\treturn ret;
}

"""

CPUSET = "kernel/cgroup/cpuset.c"
REBUILD = ("\tcpus_read_lock();\n\tmutex_lock(&cpuset_mutex);\n\trebuild_sched_domains_locked();\n"
           "\tmutex_unlock(&cpuset_mutex);\n\tcpus_read_unlock();\n}\n")

SPECS: tuple[Spec, ...] = (
    # --- comparison-for-shift ----------------------------------------------------------------
    Spec(
        "psi-feature-mask-compared",
        "cgroup: test the pressure feature bit with one expression",
        "Drop the static branch test, the mask alone says it.",
        ((CGROUP, PSI_ENABLED,
          "\treturn !(cgroup_feature_disable_mask & (1 < OPT_FEATURE_PRESSURE));\n"),),
        {"comparison-for-shift": "bad-01"},
    ),
    Spec(
        "psi-feature-mask-bit",
        "cgroup: test the pressure feature bit with BIT()",
        "Drop the open-coded shift.",
        ((CGROUP, PSI_ENABLED,
          "\treturn !(cgroup_feature_disable_mask & BIT(OPT_FEATURE_PRESSURE)) &&\n"
          "\t       1 < CGROUP_SUBSYS_COUNT + 1;\n"),),
        {"comparison-for-shift": "ok-01"},
    ),
    # --- unsigned-compared-negative ----------------------------------------------------------
    Spec(
        "max-descendants-unsigned",
        "cgroup: keep cgroup.max.descendants in an unsigned int",
        "The limit can never be negative, say so in the type.",
        ((CGROUP, DESCENDANTS, "\tstruct cgroup *cgrp;\n\tunsigned int descendants;\n\tssize_t ret;\n"),),
        {"unsigned-compared-negative": "bad-01-tree"},
    ),
    Spec(
        "memory-high-reclaim-error",
        "memcg: stop memory.high reclaim on a reclaim error",
        "Leave the loop when reclaim reports a failure.",
        ((MEMCG, HIGH_RECLAIM,
          "\t\treclaimed = try_to_free_mem_cgroup_pages(memcg, nr_pages - high,\n"
          "\t\t\t\t\tGFP_KERNEL, MEMCG_RECLAIM_MAY_SWAP);\n"
          "\t\tif (reclaimed < 0)\n\t\t\tbreak;\n\n"
          "\t\tif (!reclaimed && !nr_retries--)\n\t\t\tbreak;\n"),),
        {"unsigned-compared-negative": "bad-02-tree"},
    ),
    Spec(
        "max-descendants-long",
        "cgroup: parse cgroup.max.descendants as a long",
        "Reject values above INT_MAX instead of wrapping them.",
        ((CGROUP, DESCENDANTS, "\tstruct cgroup *cgrp;\n\tlong descendants;\n\tssize_t ret;\n"),),
        {"unsigned-compared-negative": "ok-01"},
    ),
    Spec(
        "memory-high-retries-range",
        "memcg: check the memory.high retry budget",
        "Catch a corrupted retry count early.",
        ((MEMCG, HIGH_RECLAIM,
          HIGH_RECLAIM + "\t\tif (nr_retries < 0 || nr_retries > MAX_RECLAIM_RETRIES)\n\t\t\tbreak;\n"),),
        {"unsigned-compared-negative": "ok-02"},
    ),
    # --- error-path-returns-success ---------------------------------------------------------
    Spec(
        "mkdir-populate-tested-inline",
        "cgroup: test css_populate_dir() where it is called",
        "One statement instead of two.",
        ((CGROUP, MKDIR_POPULATE, "\tif (css_populate_dir(&cgrp->self) < 0)\n\t\tgoto out_destroy;\n"),),
        {"error-path-returns-success": "bad-01-tree"},
    ),
    Spec(
        "mkdir-populate-error-kept",
        "cgroup: only negative css_populate_dir() results are errors",
        "Positive values are not returned, say what is tested.",
        ((CGROUP, MKDIR_POPULATE, "\tret = css_populate_dir(&cgrp->self);\n\tif (ret < 0)\n\t\tgoto out_destroy;\n"),),
        {"error-path-returns-success": "ok-01-tree"},
    ),
    Spec(
        "stat-snapshot-alloc-fails-silently",
        "memcg: keep a copy of memory.stat for later dumps",
        "Add a helper that formats memory.stat into a buffer the caller owns.",
        ((MEMCG, STAT_SHOW, STAT_SNAPSHOT.replace("@@FAIL@@", "\t\tgoto out;") + STAT_SHOW),),
        {"error-path-returns-success": "bad-02"},
    ),
    Spec(
        "stat-snapshot-alloc-fails-enomem",
        "memcg: keep a copy of memory.stat for later dumps",
        "Add a helper that formats memory.stat into a buffer the caller owns.",
        ((MEMCG, STAT_SHOW, STAT_SNAPSHOT.replace("@@FAIL@@", "\t{\n\t\tret = -ENOMEM;\n\t\tgoto out;\n\t}")
          .replace("\tif (!buf)\n\t{", "\tif (!buf) {") + STAT_SHOW),),
        {"error-path-returns-success": "ok-02"},
    ),
    # --- lock-not-held, contracts stated by lockdep_assert_cpus_held() ----------------------
    # (Kept here: lock contracts beyond lockdep_assert_held(), session 12.)
    Spec(
        "rebuild-domains-hotplug-dropped-early",
        "cgroup/cpuset: hold the hotplug lock only to order it before cpuset_mutex",
        "Once cpuset_mutex is held the CPU masks cannot change under us.",
        ((CPUSET, REBUILD, "\tcpus_read_lock();\n\tmutex_lock(&cpuset_mutex);\n\tcpus_read_unlock();\n"
          "\trebuild_sched_domains_locked();\n\tmutex_unlock(&cpuset_mutex);\n}\n"),),
        {"lock-not-held": "bad-04-tree"},
    ),
    Spec(
        "rebuild-domains-hotplug-kept",
        "cgroup/cpuset: say why rebuild_sched_domains() takes both locks",
        "Document the order.",
        ((CPUSET, REBUILD, "\t/* the hotplug lock first: cpuset_mutex nests inside it */\n" + REBUILD),),
        {"lock-not-held": "ok-03"},
    ),
)
