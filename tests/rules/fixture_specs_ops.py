"""Fixture specs of calls through ops tables (facts/opsfacts.py): a cgroup function that
calls a subsystem's ``css_offline`` member, one implementation of which sleeps
(cpuset_css_offline() takes cpus_read_lock()), inside an atomic section; directly, and
through a cleanup class the patch defines that leaves its scope under RCU."""

from __future__ import annotations

from fixture_specs_base import Spec

CGROUP = "kernel/cgroup/cgroup.c"
OFFLINE_CALL = "\tif (ss->css_offline)\n\t\tss->css_offline(css);\n\n\tcss->flags &= ~CSS_ONLINE;\n"
OFFLINE_HEAD = "/* if the CSS is online, invoke ->css_offline() on it and mark it offline */\n"
# A helper and its cleanup class (cleanup.h, as a patch on 6.1 would add it): offline a
# css and drop the reference the caller took.
OFFLINE_PUT = """static void css_offline_put(struct cgroup_subsys_state *css)
{
\tstruct cgroup_subsys *ss = css->ss;

\tif (ss->css_offline)
\t\tss->css_offline(css);
\tcss_put(css);
}

DEFINE_FREE(css_offline_put, struct cgroup_subsys_state *, if (_T) css_offline_put(_T))

/* Offline the online children of @parent (a debugging aid for stuck rmdirs). */
static void __maybe_unused css_offline_children(struct cgroup_subsys_state *parent)
{
\tstruct cgroup_subsys_state *pos;

\trcu_read_lock();
\tcss_for_each_child(pos, parent) {
@@BODY@@\t}
\trcu_read_unlock();
}

"""
SCOPED_BODY = ("\t\tstruct cgroup_subsys_state *css __free(css_offline_put) = NULL;\n\n"
               "\t\tif (!css_tryget_online(pos))\n\t\t\tcontinue;\n"
               "\t\tcss = pos;\n"
               "\t\trcu_read_unlock();\n"
               "\t\tpr_debug(\"offlining %llu\\n\", cgroup_id(css->cgroup));\n"
               "\t\trcu_read_lock();\n")
EXPLICIT_BODY = ("\t\tif (!css_tryget_online(pos))\n\t\t\tcontinue;\n"
                 "\t\trcu_read_unlock();\n"
                 "\t\tpr_debug(\"offlining %llu\\n\", cgroup_id(pos->cgroup));\n"
                 "\t\tcss_offline_put(pos);\n"
                 "\t\trcu_read_lock();\n")

SPECS: tuple[Spec, ...] = (
    Spec(
        "css-offline-member-under-css-set-lock",
        "cgroup: clear CSS_ONLINE together with the subsystem's offline callback",
        "Iterators of css_set_lock should never see a css whose subsystem already went\n"
        "offline but which still claims to be online.",
        ((CGROUP, OFFLINE_CALL,
          "\tspin_lock_irq(&css_set_lock);\n"
          "\tif (ss->css_offline)\n\t\tss->css_offline(css);\n\n"
          "\tcss->flags &= ~CSS_ONLINE;\n"
          "\tspin_unlock_irq(&css_set_lock);\n"),),
        {"sleep-in-atomic": "bad-09-tree"},
    ),
    Spec(
        "css-offline-member-before-css-set-lock",
        "cgroup: clear CSS_ONLINE under css_set_lock",
        "Iterators of css_set_lock should see CSS_ONLINE change atomically; the subsystem's\n"
        "offline callback may sleep, so it runs before the lock is taken.",
        ((CGROUP, OFFLINE_CALL,
          "\tif (ss->css_offline)\n\t\tss->css_offline(css);\n\n"
          "\tspin_lock_irq(&css_set_lock);\n"
          "\tcss->flags &= ~CSS_ONLINE;\n"
          "\tspin_unlock_irq(&css_set_lock);\n"),),
        {"sleep-in-atomic": "ok-07-tree"},
    ),
    Spec(
        "css-offline-cleanup-ends-under-rcu",
        "cgroup: add a helper that offlines the children of a css",
        "A debugging aid for rmdirs that never finish; the walk drops RCU around the\n"
        "message and each child is released by a cleanup class.",
        ((CGROUP, OFFLINE_HEAD, OFFLINE_PUT.replace("@@BODY@@", SCOPED_BODY) + OFFLINE_HEAD),),
        {"sleep-in-atomic": "bad-10-tree"},
    ),
    Spec(
        "css-offline-put-after-rcu",
        "cgroup: add a helper that offlines the children of a css",
        "A debugging aid for rmdirs that never finish; each child is offlined and released\n"
        "with RCU dropped, as the subsystem's offline callback may sleep.",
        ((CGROUP, OFFLINE_HEAD, OFFLINE_PUT.replace("@@BODY@@", EXPLICIT_BODY) + OFFLINE_HEAD),),
        {"sleep-in-atomic": "ok-08-tree"},
    ),
)
