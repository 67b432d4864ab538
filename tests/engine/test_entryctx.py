"""The context a function is entered in (engine/entryctx.py): its own lockdep assertions,
``__must_hold()`` annotation and kerneldoc ``Context:`` line start the walk holding the
caller's lock or section."""

from __future__ import annotations

from reviewbot.engine.cfunc import views_from_text
from reviewbot.engine.context import ContextAnalysis
from reviewbot.engine.contextrun import run_context
from reviewbot.facts.knowledge import load_knowledge
from reviewbot.facts.tables import EMPTY

LOCKS = """\
static DEFINE_SPINLOCK(obj_lock);
static DEFINE_MUTEX(obj_mutex);

static void obj_take(struct obj *o)
{
\tspin_lock_irq(&obj_lock);
\tspin_unlock_irq(&obj_lock);
\tspin_lock(&o->lock);
\tspin_unlock(&o->lock);
\tmutex_lock(&obj_mutex);
\tmutex_unlock(&obj_mutex);
}

"""


def findings(fn: str, check: str, added: frozenset[int] | None = None) -> list[str]:
    src = LOCKS + fn
    views = views_from_text("kernel/obj/core.c", src, added=added or frozenset(range(1, 200)))
    view = next(v for v in views if v.name == "f")
    return [r.captures["detail"] for r in run_context({"check": check}, view, EMPTY)]


def entry(fn: str) -> list[tuple[str, str]]:
    view = next(v for v in views_from_text("kernel/obj/core.c", LOCKS + fn) if v.name == "f")
    a = ContextAnalysis({"checks": ["sleep-in-atomic"]}, view, EMPTY, load_knowledge())
    return [(h.key, a.kinds[h.pair].kind + ("/irq" if a.kinds[h.pair].irq else "")) for h in a.entry]


def test_an_asserted_spinlock_makes_a_blocking_allocation_sleep_in_atomic() -> None:
    (detail,) = findings("void f(struct obj *o)\n{\n\tlockdep_assert_held(&obj_lock);\n"
                         "\to->buf = kmalloc(64, GFP_KERNEL);\n}\n", "sleep-in-atomic")
    assert "the caller's obj_lock (lockdep_assert_held() at line" in detail


def test_an_asserted_lock_takes_its_kind_and_irq_state_from_the_file() -> None:
    assert entry("void f(void)\n{\n\tlockdep_assert_held(&obj_lock);\n}\n") == [("obj_lock", "spinlock/irq")]
    # by field name: o->lock is taken with plain spin_lock() in the file
    assert entry("void f(struct obj *p)\n{\n\tlockdep_assert_held(&p->lock);\n}\n") == [("p->lock", "spinlock")]
    assert entry("void f(void)\n{\n\tlockdep_assert_held(&obj_mutex);\n}\n") == [("obj_mutex", "mutex")]


def test_a_lock_the_file_never_takes_or_a_conditional_assertion_gives_no_entry_context() -> None:
    assert entry("void f(void)\n{\n\tlockdep_assert_held(&other_lock);\n}\n") == []
    assert entry("void f(int x)\n{\n\tif (x)\n\t\tlockdep_assert_held(&obj_lock);\n}\n") == []


def test_irq_nesting_inside_a_function_asserting_irqs_disabled() -> None:
    (detail,) = findings("void f(struct obj *o)\n{\n\tlockdep_assert_irqs_disabled();\n"
                         "\tspin_lock_irq(&o->lock);\n\to->n++;\n\tspin_unlock_irq(&o->lock);\n}\n",
                         "irq-nesting")
    assert "the caller's irq-disabled section (lockdep_assert_irqs_disabled() at line" in detail


def test_the_kerneldoc_context_line_and_must_hold_state_the_entry_context() -> None:
    doc = ("/**\n * f - do it\n * @o: the object\n *\n * Context: Must be called with obj_mutex held.\n */\n"
           "void f(struct obj *o)\n{\n\tmutex_lock(&obj_mutex);\n\tmutex_unlock(&obj_mutex);\n}\n")
    (detail,) = findings(doc, "double-lock")
    assert "kerneldoc of f()" in detail and "obj_mutex" in detail
    irq = ("/*\n * Called with interrupts disabled.\n */\nvoid f(struct obj *o)\n{\n"
           "\tspin_lock_irq(&o->lock);\n\tspin_unlock_irq(&o->lock);\n}\n")
    assert len(findings(irq, "irq-nesting")) == 1
    hedged = irq.replace("Called with interrupts disabled.", "Can be called with interrupts disabled.")
    assert findings(hedged, "irq-nesting") == []
    held = "void f(struct obj *o)\n\t__must_hold(&obj_lock)\n{\n\tmsleep(1);\n}\n"
    (detail,) = findings(held, "sleep-in-atomic")
    assert "__must_hold() on f()" in detail


def test_the_callers_lock_dropped_and_retaken_is_no_imbalance() -> None:
    fn = ("void f(struct obj *o)\n{\n\tlockdep_assert_held(&obj_lock);\n\tspin_unlock_irq(&obj_lock);\n"
          "\tcond_resched();\n\tspin_lock_irq(&obj_lock);\n}\n")
    assert findings(fn, "imbalance") == []
    assert findings(fn, "sleep-in-atomic") == []


def test_on_a_patch_only_an_added_call_or_assertion_counts() -> None:
    fn = ("void f(struct obj *o)\n{\n\tlockdep_assert_held(&obj_lock);\n\to->n++;\n"
          "\to->buf = kmalloc(64, GFP_KERNEL);\n}\n")
    start = LOCKS.count("\n")
    # only `o->n++` is new: the allocation and the assertion are old
    assert findings(fn, "sleep-in-atomic", frozenset({start + 4})) == []
    assert len(findings(fn, "sleep-in-atomic", frozenset({start + 5}))) == 1


def test_a_kerneldoc_irq_section_is_not_taken_for_preempt_rt() -> None:
    fn = ("/*\n * Called with wqh->lock held and interrupts disabled.\n */\nvoid f(struct obj *o)\n{\n"
          "\tspin_lock(&o->lock);\n\tspin_unlock(&o->lock);\n}\n")
    assert findings(fn, "rt-nesting") == []


def test_a_section_the_function_ends_by_an_unlisted_call_is_not_entered() -> None:
    fn = ("/**\n * f - called with preemption disabled\n */\nvoid f(void)\n{\n"
          "\tsched_preempt_enable_no_resched();\n\tschedule();\n\tpreempt_disable();\n}\n")
    assert entry(fn) == []
    assert findings(fn, "sleep-in-atomic") == []


def test_a_softirq_callback_by_its_signature_may_not_sleep() -> None:
    rcu = ("static void f(struct rcu_head *head)\n{\n\tstruct obj *o = container_of(head, struct obj, rcu);\n\n"
           "\tmutex_lock(&obj_mutex);\n\tmutex_unlock(&obj_mutex);\n\tkfree(o);\n}\n")
    (detail,) = findings(rcu, "sleep-in-atomic")
    assert "the atomic context of an RCU callback (f() takes a struct rcu_head *" in detail
    timer = "static void f(struct timer_list *t)\n{\n\tstruct obj *o = from_timer(o, t, timer);\n\n" \
            "\to->buf = kmalloc(64, GFP_KERNEL);\n}\n"
    assert "a timer callback" in findings(timer, "sleep-in-atomic")[0]
    hrtimer = "static enum hrtimer_restart f(struct hrtimer *t)\n{\n\tmsleep(1);\n\treturn HRTIMER_NORESTART;\n}\n"
    assert "an hrtimer callback" in findings(hrtimer, "sleep-in-atomic")[0]
    # Not a callback: exported (a helper others call in process context), or more parameters.
    assert findings(rcu.replace("static void", "void"), "sleep-in-atomic") == []
    assert findings(rcu.replace("struct rcu_head *head)", "struct rcu_head *head, int n)"),
                    "sleep-in-atomic") == []
    # No interrupt section: the callback's spin_lock_irq() is no nesting.
    assert findings(rcu.replace("mutex_lock(&obj_mutex);\n\tmutex_unlock(&obj_mutex);",
                                "spin_lock_irq(&obj_lock);\n\tspin_unlock_irq(&obj_lock);"), "irq-nesting") == []


def test_a_callee_that_sleeps_only_outside_interrupt_context_is_fine_in_a_callback() -> None:
    from reviewbot.facts.derive import derive
    from reviewbot.facts.extract import definitions

    # (might_sleep_if() is a macro of include/linux/kernel.h; the facts read it as one.)
    facts = derive(list(definitions(
        "void might_sleep_if(int cond)\n{\n\tif (cond)\n\t\tmight_sleep();\n}\n"
        "void obj_vfree(const void *addr)\n{\n\tmight_sleep_if(!in_interrupt());\n\tobj_unmap(addr);\n}\n",
        "mm/objvmalloc.c")), load_knowledge())
    src = LOCKS + ("static void f(struct rcu_head *head)\n{\n\tobj_vfree(head);\n}\n"
                   "void g(void *p)\n{\n\tspin_lock(&obj_lock);\n\tobj_vfree(p);\n\tspin_unlock(&obj_lock);\n}\n")
    views = {v.name: v for v in views_from_text("kernel/obj/core.c", src, added=frozenset(range(1, 200)))}
    assert run_context({"check": "sleep-in-atomic"}, views["f"], facts) == []
    (under_lock,) = run_context({"check": "sleep-in-atomic"}, views["g"], facts)  # process context
    assert "might_sleep_if()" in under_lock.captures["detail"]


def test_a_percpu_ref_release_callback_may_not_sleep() -> None:
    release = ("static void f(struct percpu_ref *ref)\n{\n\tstruct obj *o = container_of(ref, struct obj, ref);\n\n"
               "\tmutex_lock(&obj_mutex);\n\tmutex_unlock(&obj_mutex);\n\tkfree(o);\n}\n\n")
    init = "int obj_init(struct obj *o)\n{\n\treturn percpu_ref_init(&o->ref, f, 0, GFP_KERNEL);\n}\n"
    (detail,) = findings(release + init, "sleep-in-atomic")
    assert "f() is the release of a percpu_ref_init() in its file" in detail
    assert findings(release, "sleep-in-atomic") == []  # not passed to percpu_ref_init() here
