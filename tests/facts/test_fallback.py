"""A callee the nearest base lacks is judged by an older base that has it
(reviewbot/facts/fallback.py)."""

from __future__ import annotations

from reviewbot.facts.fallback import Fallback
from reviewbot.facts.tables import Facts


def test_a_function_the_nearest_base_lacks_is_judged_by_the_next_base_that_has_it() -> None:
    nearest = Facts(revision="n", digest="d", names=["css_rstat_flush", "renamed_helper"],
                    sleeps={"css_rstat_flush": ["might_sleep"]},
                    field_locks={"css_set->nr_tasks": ["css_set_lock", "4", "4", "f", "g"]})
    older = Facts(revision="o", digest="d", names=["cgroup_rstat_flush", "renamed_helper"],
                  sleeps={"cgroup_rstat_flush": ["might_sleep"], "renamed_helper": ["mutex_lock"]},
                  locks={"cgroup_rstat_flush": {"cgroup_rstat_lock": ["spin_lock_irq"]}},
                  field_locks={"css_set->nr_tasks": ["other_lock", "4", "4", "f", "g"]})
    loads: list[str] = []

    def load_older() -> Facts:
        loads.append("older")
        return older

    facts = Fallback(nearest, [lambda: None, load_older])
    assert facts.sleep_chain("css_rstat_flush") == ["might_sleep"]
    assert loads == []  # the nearest base defines it: no other base is read
    # Renamed since: the older base that still has it answers.
    assert facts.sleep_chain("cgroup_rstat_flush") == ["might_sleep"]
    assert facts.locks_taken("cgroup_rstat_flush") == {"cgroup_rstat_lock": ["spin_lock_irq"]}
    assert facts.defines("cgroup_rstat_flush") and loads == ["older"]
    # The nearest base's own body is the reference for a function it defines.
    assert facts.sleep_chain("renamed_helper") is None
    # Nobody defines it: the nearest base's (empty) answer.
    assert facts.sleep_chain("no_such_function") is None and not facts.defines("no_such_function")
    # Conventions of the tree stay the nearest base's.
    assert facts.field_lock("css_set->nr_tasks")[0] == "css_set_lock"
    assert facts.revision == "n"
    # A patch's overlay on top asks the fallback for what the patch does not define.
    top = Facts(revision="", digest="d", defined=["new_fn"], sleeps={"new_fn": ["msleep"]})
    over = facts.overlay(top)
    assert over.sleep_chain("new_fn") == ["msleep"]
    assert over.locks_taken("cgroup_rstat_flush") == {"cgroup_rstat_lock": ["spin_lock_irq"]}
    assert over.defines("new_fn") and over.defines("cgroup_rstat_flush")
