"""The context engine: what is held at each call, along every path of a function."""

from __future__ import annotations

import dataclasses

from reviewbot.engine.cfunc import views_from_text
from reviewbot.engine.contextrun import run_context
from reviewbot.facts.derive import derive
from reviewbot.facts.extract import definitions
from reviewbot.facts.knowledge import load_knowledge
from reviewbot.facts.tables import Facts

BASE = """\
struct kernfs_node *walk_and_get(struct kernfs_node *kn, const char *path)
{
\tdown_read(&kn->root->rwsem);
\treturn walk(kn, path);
}

static inline void task_lock(struct task_struct *p)
{
\tspin_lock(&p->alloc_lock);
}

static inline void task_unlock(struct task_struct *p)
{
\tspin_unlock(&p->alloc_lock);
}

void take_and_refresh(void)
{
\tmutex_lock(&cfg_mutex);
\trefresh();
\tmutex_unlock(&cfg_mutex);
}

void deep1(void)
{
\tdeep2();
}

void deep2(void)
{
\tdeep3();
}

void deep3(void)
{
\tdeep4();
}

void deep4(void)
{
\tmsleep(1);
}
"""


def base_facts() -> Facts:
    return derive(list(definitions(BASE, "include/linux/base.h")), load_knowledge())


def hits(check: str, body: str, facts: Facts | None = None, **params: object) -> list[str]:
    src = "int f(struct task_struct *p, struct obj *o)\n{\n" + body + "}\n"
    view = views_from_text("kernel/x.c", src, added=frozenset(range(1, 200)))[0]
    raws = run_context({"check": check, **params}, view, facts or base_facts())
    return [r.captures["detail"] for r in raws]


def test_a_sleeping_primitive_under_a_spinlock_is_reported_with_the_lock() -> None:
    (detail,) = hits("sleep-in-atomic", "\tspin_lock_irq(&css_set_lock);\n\tmsleep(10);\n"
                     "\tspin_unlock_irq(&css_set_lock);\n\treturn 0;\n")
    assert "msleep() at line 4 may sleep" in detail and "spin_lock_irq() on css_set_lock" in detail


def test_primitives_that_leave_their_section_to_sleep_and_flag_readers() -> None:
    # cond_resched_lock(&l) drops l to sleep, cond_resched_rcu() leaves the read section:
    # only another section held around them is a problem.
    assert not hits("sleep-in-atomic", "\tspin_lock(&css_set_lock);\n\tcond_resched_lock(&css_set_lock);\n"
                    "\tspin_unlock(&css_set_lock);\n\treturn 0;\n")
    assert hits("sleep-in-atomic", "\tspin_lock(&obj_lock);\n\tspin_lock(&css_set_lock);\n"
                "\tcond_resched_lock(&css_set_lock);\n\tspin_unlock(&css_set_lock);\n"
                "\tspin_unlock(&obj_lock);\n\treturn 0;\n")
    assert not hits("sleep-in-atomic", "\trcu_read_lock();\n\tcond_resched_rcu();\n\trcu_read_unlock();\n\treturn 0;\n")
    # call_rcu() and the two-argument kfree_rcu() queue a callback: never a sleep.
    assert not hits("sleep-in-atomic", "\tspin_lock(&obj_lock);\n\tcall_rcu(&o->rcu, obj_free_rcu);\n"
                    "\tkvfree_rcu_arg_2(o, rcu);\n\tspin_unlock(&obj_lock);\n\treturn 0;\n")
    # gfp_zone() reads the flags; it allocates nothing.
    assert not hits("sleep-in-atomic", "\tspin_lock(&obj_lock);\n\tz = gfp_zone(GFP_KERNEL);\n"
                    "\tspin_unlock(&obj_lock);\n\treturn 0;\n")


def test_a_function_that_leaves_its_callers_rcu_section_does_not_sleep_inside_it() -> None:
    src = BASE + """
void pin_drop(struct pin *p)
{
\trcu_read_unlock();
\tmutex_lock(&p->lock);
\tmutex_unlock(&p->lock);
}

void pin_wait(struct pin *p)
{
\tmutex_lock(&p->lock);
\tmutex_unlock(&p->lock);
}
"""
    facts = derive(list(definitions(src, "fs/pin.c")), load_knowledge())
    assert facts.sleep_chain("pin_wait", "fs/pin.c")
    assert not facts.sleep_chain("pin_drop", "fs/pin.c")
    assert not facts.locks_released("pin_drop")  # (an RCU section is no lock to release)


def test_blocking_allocations_sleep_and_atomic_ones_do_not() -> None:
    body = "\trcu_read_lock();\n\tx = kmalloc(8, {gfp});\n\trcu_read_unlock();\n\treturn 0;\n"
    assert hits("sleep-in-atomic", body.format(gfp="GFP_KERNEL"))
    assert not hits("sleep-in-atomic", body.format(gfp="GFP_NOWAIT"))


def test_callees_sleep_through_the_facts_within_the_chain_limit() -> None:
    (detail,) = hits("sleep-in-atomic", "\tspin_lock(&l);\n\tkn = walk_and_get(kn, p);\n"
                     "\tspin_unlock(&l);\n\treturn 0;\n")
    assert "walk_and_get() -> down_read()" in detail
    body = "\tspin_lock(&l);\n\tdeep1();\n\tspin_unlock(&l);\n\treturn 0;\n"
    assert not hits("sleep-in-atomic", body)  # deep1 -> deep2 -> deep3 -> deep4 -> msleep
    assert hits("sleep-in-atomic", body, **{"max-chain": 5})


def test_nothing_is_held_after_the_unlock_or_outside_a_guard_scope() -> None:
    assert not hits("sleep-in-atomic", "\tspin_lock(&l);\n\tx++;\n\tspin_unlock(&l);\n\tmsleep(1);\n\treturn 0;\n")
    assert not hits("sleep-in-atomic", "\tscoped_guard(spinlock, &l) {\n\t\tx++;\n\t}\n\tmsleep(1);\n\treturn 0;\n")
    assert hits("sleep-in-atomic", "\tguard(rcu)();\n\tx++;\n\tmsleep(1);\n\treturn 0;\n")


def test_a_trylock_holds_the_lock_only_where_it_succeeded() -> None:
    assert not hits("sleep-in-atomic", "\tif (!spin_trylock(&l)) {\n\t\tmsleep(1);\n\t\treturn 0;\n\t}\n"
                    "\tspin_unlock(&l);\n\treturn 1;\n")
    assert hits("sleep-in-atomic", "\tif (spin_trylock(&l)) {\n\t\tmsleep(1);\n\t\tspin_unlock(&l);\n\t}\n"
                "\treturn 1;\n")


def test_a_lock_helper_from_the_facts_holds_its_lock() -> None:
    (detail,) = hits("sleep-in-atomic", "\ttask_lock(p);\n\tx = kzalloc(8, GFP_KERNEL);\n\ttask_unlock(p);\n"
                     "\treturn 0;\n")
    assert "task_lock() on p->alloc_lock" in detail
    assert not hits("sleep-in-atomic", "\ttask_lock(p);\n\ttask_unlock(p);\n\tmsleep(1);\n\treturn 0;\n")


def test_an_early_return_with_the_lock_held_is_an_imbalance() -> None:
    (detail,) = hits("imbalance", "\tmutex_lock(&m);\n\tif (!o)\n\t\treturn -EINVAL;\n"
                     "\tmutex_unlock(&m);\n\treturn 0;\n", kinds=["mutex"])
    assert "mutex_lock(m) taken at line 3 is still held when f() returns at line 5" in detail
    assert not hits("imbalance", "\tmutex_lock(&m);\n\tif (!o) {\n\t\tret = -EINVAL;\n\t\tgoto out;\n\t}\n"
                    "\tret = 0;\nout:\n\tmutex_unlock(&m);\n\treturn ret;\n")


def test_a_conditional_lock_through_a_result_variable() -> None:
    body = "\tret = mutex_lock_interruptible(&m);\n\tif (ret)\n\t\treturn ret;\n\tx++;\n" \
           "\tmutex_unlock(&m);\n\treturn 0;\n"
    assert not hits("imbalance", body)
    assert not hits("imbalance", "\tif (mutex_lock_killable(&m))\n\t\treturn -EINTR;\n"
                    "\tmutex_unlock(&m);\n\treturn 0;\n")


def test_the_callers_lock_dropped_and_retaken_is_not_an_imbalance() -> None:
    assert not hits("imbalance", "\tspin_unlock_irq(&o->lock);\n\tcond_resched();\n"
                    "\tspin_lock_irq(&o->lock);\n\treturn 0;\n")


def test_a_lock_handed_to_the_caller_on_success_is_not_an_imbalance() -> None:
    body = "\tmutex_lock(&o->m);\n\tif (!o->ok) {\n\t\tmutex_unlock(&o->m);\n\t\treturn -ENODEV;\n\t}\n" \
           "\treturn 0;\n"
    assert not hits("imbalance", body)
    # ...but an error return that keeps it is.
    body = "\tmutex_lock(&o->m);\n\tif (!o->ok)\n\t\treturn -ENODEV;\n\tmutex_unlock(&o->m);\n\treturn 0;\n"
    assert hits("imbalance", body)


def test_paths_end_at_noreturn_calls_and_never_leave_while_1_by_its_condition() -> None:
    assert not hits("imbalance", "\tpreempt_disable();\n\tif (o)\n\t\tpreempt_enable();\n\telse\n"
                    "\t\tdo_exit(0);\n\treturn 0;\n")
    assert not hits("imbalance", "\twhile (1) {\n\t\tspin_lock(&l);\n\t\tif (done(o))\n\t\t\tbreak;\n"
                    "\t\tspin_unlock(&l);\n\t}\n\tspin_unlock(&l);\n\treturn 0;\n")


def test_irq_nesting_and_rt_nesting() -> None:
    (detail,) = hits("irq-nesting", "\tspin_lock_irqsave(&a, flags);\n\tspin_lock_irq(&b);\n"
                     "\tspin_unlock_irq(&b);\n\tspin_unlock_irqrestore(&a, flags);\n\treturn 0;\n")
    assert "interrupts already disabled by spin_lock_irqsave() on a" in detail
    assert not hits("irq-nesting", "\tspin_lock_irqsave(&a, flags);\n\tspin_lock(&b);\n"
                    "\tspin_unlock(&b);\n\tspin_unlock_irqrestore(&a, flags);\n\treturn 0;\n")
    assert hits("rt-nesting", "\traw_spin_lock(&a);\n\tspin_lock(&b);\n\tspin_unlock(&b);\n"
                "\traw_spin_unlock(&a);\n\treturn 0;\n")
    assert not hits("rt-nesting", "\tspin_lock(&b);\n\traw_spin_lock(&a);\n\traw_spin_unlock(&a);\n"
                    "\tspin_unlock(&b);\n\treturn 0;\n")


def test_double_lock_directly_and_through_a_function_that_takes_the_lock() -> None:
    assert hits("double-lock", "\tspin_lock(&o->l);\n\tspin_lock(&o->l);\n\treturn 0;\n")
    (detail,) = hits("double-lock", "\tmutex_lock(&cfg_mutex);\n\ttake_and_refresh();\n"
                     "\tmutex_unlock(&cfg_mutex);\n\treturn 0;\n")
    assert "take_and_refresh() at line 4 takes cfg_mutex" in detail
    assert not hits("double-lock", "\tread_lock(&t);\n\tread_lock(&t);\n\treturn 0;\n")


def test_only_what_the_patch_touches_counts() -> None:
    src = "int f(void)\n{\n\tspin_lock(&l);\n\tmsleep(1);\n\tspin_unlock(&l);\n\treturn 0;\n}\n"
    (view,) = views_from_text("kernel/x.c", src, added=frozenset({6}))
    assert not run_context({"check": "sleep-in-atomic"}, view, base_facts())
    (view,) = views_from_text("kernel/x.c", src, added=frozenset({3}))
    assert run_context({"check": "sleep-in-atomic"}, view, base_facts())


ASSERTS = BASE + """
void needs_cfg(void)
{
\tlockdep_assert_held(&cfg_mutex);
\tconfig_apply();
}
"""


def test_a_contract_called_outside_the_lock_the_caller_takes_elsewhere() -> None:
    facts = derive(list(definitions(ASSERTS, "include/linux/base.h")), load_knowledge())
    (detail,) = hits("lock-not-held", "\tmutex_lock(&cfg_mutex);\n\tx++;\n\tmutex_unlock(&cfg_mutex);\n"
                     "\tneeds_cfg();\n\treturn 0;\n", facts)
    assert "needs_cfg() at line 6 expects cfg_mutex held" in detail
    assert not hits("lock-not-held", "\tmutex_lock(&cfg_mutex);\n\tneeds_cfg();\n"
                    "\tmutex_unlock(&cfg_mutex);\n\treturn 0;\n", facts)
    # A function that never takes the lock relies on its callers: not its business.
    assert not hits("lock-not-held", "\tneeds_cfg();\n\treturn 0;\n", facts)
    # A hunk that starts inside a function and first drops the lock was entered holding
    # it (the fragment cannot show where): a path around the drop still holds it.
    fragment = ("\tif (busy) {\n\t\tmutex_unlock(&cfg_mutex);\n\t\tmsleep(1);\n"
                "\t\tmutex_lock(&cfg_mutex);\n\t}\n\tneeds_cfg();\n\treturn 0;\n")
    assert hits("lock-not-held", fragment, facts)  # a whole function: entered unlocked
    src = "int f(struct task_struct *p, struct obj *o)\n{\n" + fragment + "}\n"
    view = dataclasses.replace(views_from_text("kernel/x.c", src, added=frozenset(range(1, 200)))[0],
                               partial=True)
    assert not run_context({"check": "lock-not-held"}, view, facts)


CONTRACTS = BASE + """
void needs_hotplug(void)
{
\tlockdep_assert_cpus_held();
\tconfig_apply();
}

struct item *first_item(struct box *b)
{
\treturn rcu_dereference_protected(b->first, lockdep_is_held(&box_mutex));
}

void box_check(struct box *b)
{
\tWARN_ON_ONCE(!mutex_is_locked(&b->lock));
}

struct item *either_item(struct box *b)
{
\treturn rcu_dereference_protected(b->first, lockdep_is_held(&box_mutex) || rcu_read_lock_held());
}
"""


def test_contracts_stated_by_other_assertions_than_lockdep_assert_held() -> None:
    facts = derive(list(definitions(CONTRACTS, "include/linux/base.h")), load_knowledge())
    assert set(facts.locks_required("needs_hotplug")) == {"cpu_hotplug_lock"}
    assert set(facts.locks_required("first_item")) == {"box_mutex"}
    assert set(facts.locks_required("box_check")) == {"$0->lock"}
    assert not facts.locks_required("either_item")  # either of two contexts: neither required
    (detail,) = hits("lock-not-held", "\tcpus_read_lock();\n\tx++;\n\tcpus_read_unlock();\n"
                     "\tneeds_hotplug();\n\treturn 0;\n", facts)
    assert "needs_hotplug() at line 6 expects cpu_hotplug_lock held" in detail
    assert not hits("lock-not-held", "\tcpus_read_lock();\n\tneeds_hotplug();\n"
                    "\tcpus_read_unlock();\n\treturn 0;\n", facts)
    (detail,) = hits("lock-not-held", "\tmutex_lock(&box_mutex);\n\tx++;\n\tmutex_unlock(&box_mutex);\n"
                     "\tfirst_item(o->box);\n\treturn 0;\n", facts)
    assert "first_item() at line 6 expects box_mutex held (rcu_dereference_protected())" in detail


def test_rcu_reads_and_walks_outside_the_read_side_section() -> None:
    (detail,) = hits("rcu-unprotected", "\trcu_read_lock();\n\tx = rcu_dereference(o->a);\n"
                     "\trcu_read_unlock();\n\ty = rcu_dereference(o->b);\n\treturn 0;\n")
    assert "rcu_dereference() at line 6 runs outside" in detail
    walk = ("\trcu_read_lock();\n\tcss_for_each_child(pos, o->css) {\n{pin}\t\trcu_read_unlock();\n"
            "\t\tmsleep(1);\n\t\trcu_read_lock();\n\t}\n\trcu_read_unlock();\n\treturn 0;\n")
    (detail,) = hits("rcu-unprotected", walk.replace("{pin}", ""))
    assert "without a reference on `pos`" in detail
    assert not hits("rcu-unprotected", walk.replace("{pin}", "\t\tif (!css_tryget(pos))\n\t\t\tcontinue;\n"))


def test_two_global_locks_against_the_order_the_base_follows() -> None:
    base = BASE + "\nvoid order_ab(void)\n{\n\tmutex_lock(&a_mutex);\n\tspin_lock(&b_lock);\n" \
                  "\tspin_unlock(&b_lock);\n\tmutex_unlock(&a_mutex);\n}\n"
    facts = derive(list(definitions(base, "kernel/base.c")), load_knowledge())
    (detail,) = hits("lock-order", "\tspin_lock(&b_lock);\n\tmutex_lock(&a_mutex);\n"
                     "\tmutex_unlock(&a_mutex);\n\tspin_unlock(&b_lock);\n\treturn 0;\n", facts)
    assert "takes a_mutex while b_lock is held" in detail and "order_ab()" in detail
    assert not hits("lock-order", "\tmutex_lock(&a_mutex);\n\tspin_lock(&b_lock);\n"
                    "\tspin_unlock(&b_lock);\n\tmutex_unlock(&a_mutex);\n\treturn 0;\n", facts)
