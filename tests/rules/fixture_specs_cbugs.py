"""Fixture specs of the plain C slips a CI robot is expected to catch beside the memcg
rules: a comparison typed for a shift, an unsigned variable tested for being negative."""

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
)
