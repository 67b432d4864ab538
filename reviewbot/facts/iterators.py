"""Iterator macros that walk an RCU-protected list, as the tree defines them.

``css_for_each_child()`` and ``list_for_each_entry_rcu()`` must run under
``rcu_read_lock()``, and so must every macro built on them: ``cpuset_for_each_child()``
expands to ``css_for_each_child()``, ``blkg_for_each_descendant_pre()`` to
``css_for_each_descendant_pre()``. A rule that knows the primitives by name would miss
the wrappers each subsystem defines; they are read from the macro definitions of the base
(once per base, in the facts).
"""

from __future__ import annotations

import re

from reviewbot.facts.extract import Definition

__all__ = ["RCU_ITERATORS", "rcu_iterators"]

# The primitives: RCU list walks, and the css walks documented as needing rcu_read_lock().
RCU_ITERATORS = re.compile(
    r"list_for_each_entry_rcu|hlist_for_each_entry_rcu|list_for_each_entry_continue_rcu|"
    r"css_for_each_(child|descendant_pre|descendant_post)|"
    r"cgroup_for_each_live_(child|descendant_pre|descendant_post)")
_DEPTH = 3  # wrappers of wrappers of wrappers


def rcu_iterators(defs: list[Definition]) -> dict[str, str]:
    """Iterator macro (``*for_each*``) -> the RCU primitive it expands to, through other
    such macros."""
    macros = {d.name: [c.name for c in d.calls] for d in defs if d.macro and "for_each" in d.name}
    found: dict[str, str] = {}
    for _ in range(_DEPTH):
        grew = False
        for name, calls in macros.items():
            if name in found or RCU_ITERATORS.fullmatch(name):
                continue
            base = next((c if RCU_ITERATORS.fullmatch(c) else found[c] for c in calls
                         if RCU_ITERATORS.fullmatch(c) or c in found), None)
            if base is not None:
                found[name], grew = base, True
        if not grew:
            break
    return found
