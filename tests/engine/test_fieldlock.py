"""The context walk judged against the tree's locking conventions (engine/fieldlock.py and
the majority branch of the irq-unsafe check)."""

from __future__ import annotations

from reviewbot.engine.cfunc import views_from_text
from reviewbot.engine.contextrun import run_context
from reviewbot.facts.tables import Facts

FACTS = Facts(revision="", digest="",
              field_locks={"pool->avail": ["pool->lock", "6", "6", "pool_get", "pool_put"],
                           "pool->users": ["pool_mutex", "5", "5", "pool_open", "pool_close"]},
              irq_shared={"pool->lock": ["8", "8", "pool_get", "pool_put", "pool_irq"],
                          "pool_list_lock": ["6", "6", "pool_add", "pool_del", "pool_scan"]})


def hits(check: str, body: str, name: str = "pool_take", added: range = range(1, 200)) -> list[str]:
    src = f"int {name}(struct pool *p, long n)\n{{\n{body}}}\n"
    view = views_from_text("mm/pool.c", src, added=frozenset(added))[0]
    return [r.captures["detail"] for r in run_context({"check": check}, view, FACTS)]


def test_a_write_outside_the_lock_every_other_writer_holds_is_reported() -> None:
    body = "\tp->avail -= n;\n\tspin_lock(&p->lock);\n\tp->total += n;\n\tspin_unlock(&p->lock);\n\treturn 0;\n"
    (detail,) = hits("field-unlocked", body)
    assert "line 3 writes p->avail without pool->lock" in detail and "6 of the 6" in detail
    assert "pool_get()" in detail


def test_the_same_write_under_the_lock_or_marked_is_not() -> None:
    locked = "\tspin_lock(&p->lock);\n\tp->avail -= n;\n\tspin_unlock(&p->lock);\n\treturn 0;\n"
    marked = ("\tWRITE_ONCE(p->avail, n);\n\tspin_lock(&p->lock);\n\tp->total += n;\n"
              "\tspin_unlock(&p->lock);\n\treturn 0;\n")
    assert not hits("field-unlocked", locked) and not hits("field-unlocked", marked)


def test_a_path_that_skips_the_lock_is_reported_for_a_global_lock() -> None:
    body = ("\tif (n)\n\t\tmutex_lock(&pool_mutex);\n\tp->users++;\n\tif (n)\n"
            "\t\tmutex_unlock(&pool_mutex);\n\treturn 0;\n")
    (detail,) = hits("field-unlocked", body)
    assert "writes p->users without pool_mutex" in detail


def test_callers_lock_constructors_and_fresh_objects_are_left_alone() -> None:
    unlocked = "\tp->avail = n;\n\tspin_lock(&other_lock);\n\tspin_unlock(&other_lock);\n\treturn 0;\n"
    assert hits("field-unlocked", unlocked)
    assert not hits("field-unlocked", "\tlockdep_assert_held(&p->lock);\n" + unlocked)
    assert not hits("field-unlocked", unlocked, name="pool_take_locked")
    assert not hits("field-unlocked", unlocked, name="pool_init")
    fresh = "\tp = kzalloc(sizeof(*p), GFP_KERNEL);\n" + unlocked
    assert not hits("field-unlocked", fresh)


def test_an_unchanged_write_counts_only_when_the_patch_changes_the_locking() -> None:
    body = "\tp->avail -= n;\n\tspin_lock(&p->lock);\n\tp->total += n;\n\tspin_unlock(&p->lock);\n\treturn 0;\n"
    assert not hits("field-unlocked", body, added=range(7, 8))  # the return line only
    assert hits("field-unlocked", body, added=range(4, 5))  # the lock line moved down


def test_a_plain_lock_of_an_interrupt_shared_per_object_lock_is_reported() -> None:
    body = "\tspin_lock(&p->lock);\n\tp->avail -= n;\n\tspin_unlock(&p->lock);\n\treturn 0;\n"
    (detail,) = hits("irq-unsafe", body)
    assert "takes p->lock with interrupts enabled" in detail and "8 of the 8" in detail
    irq = body.replace("spin_lock(", "spin_lock_irq(").replace("spin_unlock(", "spin_unlock_irq(")
    assert not hits("irq-unsafe", irq)


def test_a_plain_lock_inside_an_irq_disabled_section_or_a_lock_helper_is_not() -> None:
    nested = ("\tlocal_irq_disable();\n\tspin_lock(&pool_list_lock);\n\tspin_unlock(&pool_list_lock);\n"
              "\tlocal_irq_enable();\n\treturn 0;\n")
    assert not hits("irq-unsafe", nested)
    plain = "\tspin_lock(&pool_list_lock);\n\tspin_unlock(&pool_list_lock);\n\treturn 0;\n"
    assert hits("irq-unsafe", plain)
    assert not hits("irq-unsafe", "\tspin_lock(&pool_list_lock);\n\treturn 0;\n", name="pool_list_lock_it")
    assert not hits("irq-unsafe", "\tspin_lock(&p->lock);\n\treturn 0;\n")  # returns holding it


def test_a_function_that_drops_its_callers_lock_first_runs_with_it_held() -> None:
    body = ("\twhile (n--) {\n\t\tspin_unlock(&p->lock);\n\t\tcond_resched();\n\t\tspin_lock(&p->lock);\n"
            "\t}\n\tp->avail = 0;\n\treturn 0;\n")
    assert not hits("field-unlocked", body)


def test_a_function_that_takes_no_lock_is_judged_unless_it_asserts_the_lock() -> None:
    (detail,) = hits("field-unlocked", "\tp->avail = n;\n\treturn 0;\n")
    assert "writes p->avail without pool->lock" in detail
    assert not hits("field-unlocked", "\tlockdep_assert_held(&p->lock);\n\tp->avail = n;\n\treturn 0;\n")
    assert not hits("field-unlocked", "\tp->total = n;\n\treturn 0;\n")  # not a known field
