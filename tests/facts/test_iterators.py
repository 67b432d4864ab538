"""Iterator macros that wrap an RCU walk, read from their definitions (facts/iterators.py)."""

from __future__ import annotations

from reviewbot.facts.extract import definitions
from reviewbot.facts.iterators import rcu_iterators

SOURCE = r"""
#define cpuset_for_each_child(child_cs, pos_css, parent_cs)		\
	css_for_each_child((pos_css), &(parent_cs)->css)		\
		if (is_cpuset_online(((child_cs) = css_cs((pos_css)))))

#define cpuset_for_each_online_child(c, pos, p)					\
	cpuset_for_each_child(c, pos, p)

#define task_for_each_thread(t, p)					\
	for (t = p; t; t = next_thread(t))

#define odd_for_each(a, b)						\
	list_for_each_entry(a, b, node)
"""


def test_wrappers_of_rcu_walks_are_found_through_each_other() -> None:
    found = rcu_iterators(list(definitions(SOURCE, "kernel/cgroup/x.c")))
    assert found == {"cpuset_for_each_child": "css_for_each_child",
                     "cpuset_for_each_online_child": "css_for_each_child"}
    # A plain list walk or an open-coded loop is no RCU walk.
    assert "task_for_each_thread" not in found and "odd_for_each" not in found
