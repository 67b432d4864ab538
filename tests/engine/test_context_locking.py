"""The locking checks generalised from kernel semantics: unlocks that do not match the
lock held, GFP flags carried by a local, list walks whose body drops their lock, work
flushed under a lock its function takes, and what a patch does to a base function's
locking."""

from __future__ import annotations

from reviewbot.engine.cfunc import views_from_text
from reviewbot.engine.contextrun import run_context
from reviewbot.facts.derive import derive
from reviewbot.facts.extract import definitions
from reviewbot.facts.knowledge import load_knowledge
from reviewbot.facts.tables import EMPTY, Facts
from reviewbot.facts.works import work_functions, work_member

WORKS = """\
static void obj_release_fn(struct work_struct *work)
{
\tmutex_lock(&obj_mutex);
\tobj_free(work);
\tmutex_unlock(&obj_mutex);
}

void obj_kill(struct obj *o)
{
\tINIT_WORK(&o->release_work, obj_release_fn);
\tqueue_work(system_wq, &o->release_work);
}

int obj_count(struct obj *o)
{
\tlockdep_assert_held(&obj_lock);
\treturn o->count;
}
"""


def works_facts() -> Facts:
    return derive(list(definitions(WORKS, "kernel/obj/core.c")), load_knowledge())


def hits(check: str, body: str, facts: Facts | None = None, path: str = "kernel/obj/user.c") -> list[str]:
    src = "int f(struct obj *o, struct obj *b, gfp_t caller_gfp)\n{\n" + body + "}\n"
    view = views_from_text(path, src, added=frozenset(range(1, 200)))[0]
    return [r.captures["detail"] for r in run_context({"check": check}, view, facts or EMPTY)]


def test_an_unlock_of_another_flavour_is_reported_with_both_calls() -> None:
    (detail,) = hits("imbalance", "\tspin_lock(&obj_lock);\n\to->n++;\n\tspin_unlock_irq(&obj_lock);\n"
                     "\treturn 0;\n")
    assert "spin_unlock_irq() at line 5" in detail and "irq variant instead of the plain one" in detail


def test_an_irqsave_lock_released_apart_from_its_interrupt_state_is_left_alone() -> None:
    body = ("\tunsigned long flags;\n\n\tspin_lock_irqsave(&obj_lock, flags);\n\to->n++;\n"
            "\tspin_unlock(&obj_lock);\n\tlocal_irq_restore(flags);\n\treturn 0;\n")
    assert not hits("imbalance", body)


def test_unlocking_a_lock_never_taken_while_the_taken_one_stays_held_is_reported() -> None:
    (detail,) = hits("imbalance", "\tspin_lock(&obj_lock);\n\to->n++;\n\tspin_unlock(&o->lock);\n"
                     "\treturn 0;\n")
    assert "releases o->lock" in detail and "obj_lock" in detail


def test_hand_over_hand_locking_of_the_same_field_is_not_a_wrong_unlock() -> None:
    body = "\tspin_lock(&b->lock);\n\tspin_unlock(&o->lock);\n\treturn 0;\n"
    assert not hits("imbalance", body)


def test_blocking_flags_in_a_local_sleep_and_mixed_or_caller_flags_do_not() -> None:
    lock = "\tspin_lock(&obj_lock);\n\tp = kmalloc(8, {arg});\n\tspin_unlock(&obj_lock);\n\treturn 0;\n"
    assert hits("sleep-in-atomic", "\tgfp_t gfp = GFP_KERNEL | __GFP_ZERO;\n\n" + lock.format(arg="gfp"))
    mixed = "\tgfp_t gfp = GFP_KERNEL;\n\n\tif (o->atomic)\n\t\tgfp = GFP_NOWAIT;\n"
    assert not hits("sleep-in-atomic", mixed + lock.format(arg="gfp"))
    assert not hits("sleep-in-atomic", lock.format(arg="caller_gfp"))
    # The result of an allocation is not a flag, whatever flags it was made with.
    assert not hits("sleep-in-atomic", "\tvoid *q = kmalloc(8, GFP_KERNEL);\n\n" + lock.format(arg="q"))


WALK = ("\tspin_lock(&obj_lock);\n\tlist_for_each_entry(pos, &o->children, sibling) {{\n"
        "{body}\t}}\n\tspin_unlock(&obj_lock);\n\treturn 0;\n")


def test_a_walk_whose_body_drops_and_retakes_its_lock_is_reported() -> None:
    body = "\t\tspin_unlock(&obj_lock);\n\t\tnotify(pos);\n\t\tspin_lock(&obj_lock);\n"
    (detail,) = hits("walk-unlocked", WALK.format(body=body))
    assert "releases it at line 5" in detail and "`pos`" in detail


def test_a_walk_that_pins_its_cursor_or_leaves_after_the_unlock_is_not_reported() -> None:
    pinned = "\t\tobj_get(pos);\n\t\tspin_unlock(&obj_lock);\n\t\tnotify(pos);\n\t\tspin_lock(&obj_lock);\n"
    leaves = "\t\tif (pos->dead) {\n\t\t\tspin_unlock(&obj_lock);\n\t\t\treturn -ENOENT;\n\t\t}\n"
    bumped = "\t\tpos->users++;\n\t\tspin_unlock(&obj_lock);\n\t\tnotify(pos);\n\t\tspin_lock(&obj_lock);\n"
    for body in (pinned, leaves, bumped):
        assert not hits("walk-unlocked", WALK.format(body=body))


def test_work_items_are_known_by_member_name_with_the_binding_file() -> None:
    assert work_member("&css->destroy_work") == "destroy_work"
    assert work_member("&x->dwork.work") == "dwork"
    found = work_functions(definitions(WORKS, "kernel/obj/core.c"))
    assert found == {"release_work": [["obj_release_fn", "kernel/obj/core.c"]]}


def test_flushing_a_work_whose_function_takes_a_held_lock_is_reported() -> None:
    body = "\tmutex_lock(&obj_mutex);\n\tflush_work(&o->release_work);\n\tmutex_unlock(&obj_mutex);\n\treturn 0;\n"
    (detail,) = hits("flush-deadlock", body, works_facts())
    assert "obj_release_fn()" in detail and "obj_mutex" in detail
    after = "\tflush_work(&o->release_work);\n\tmutex_lock(&obj_mutex);\n\tmutex_unlock(&obj_mutex);\n\treturn 0;\n"
    assert not hits("flush-deadlock", after, works_facts())


def test_a_lock_the_patch_removes_around_a_call_that_needs_it_is_reported() -> None:
    before = "int f(struct obj *o)\n{\n\tint n;\n\n\tspin_lock(&obj_lock);\n\tn = obj_count(o);\n" \
             "\tspin_unlock(&obj_lock);\n\treturn n;\n}\n"
    after = "int f(struct obj *o)\n{\n\tint n;\n\n\tn = obj_count(o);\n\treturn n;\n}\n"
    (base,) = views_from_text("kernel/obj/user.c", before)
    (post,) = views_from_text("kernel/obj/user.c", after, added=frozenset())
    raws = run_context({"check": "lock-not-held"}, post, works_facts(), base=lambda: [base])
    assert [r.line for r in raws] == [5]
    assert "removes the obj_lock locking" in raws[0].captures["detail"]


def test_a_write_moved_out_of_its_section_is_reported_and_a_private_object_is_not() -> None:
    before = ("int f(struct obj *o, struct item *it)\n{\n\tspin_lock(&obj_lock);\n"
              "\tit->owner = o;\n\tlist_add(&it->node, &o->items);\n\tspin_unlock(&obj_lock);\n"
              "\treturn 0;\n}\n")
    after = ("int f(struct obj *o, struct item *it)\n{\n\tspin_lock(&obj_lock);\n"
             "\tit->owner = o;\n\tspin_unlock(&obj_lock);\n\tlist_add(&it->node, &o->items);\n"
             "\treturn 0;\n}\n")
    (base,) = views_from_text("kernel/obj/user.c", before)
    (post,) = views_from_text("kernel/obj/user.c", after, added=frozenset({5}))
    raws = run_context({"check": "scope-shrunk"}, post, EMPTY, base=lambda: [base])
    assert [r.line for r in raws] == [6]


def test_a_writer_downgraded_to_a_reader_may_release_as_a_reader() -> None:
    body = "\tdown_write(&obj_sem);\n\to->n++;\n\tdowngrade_write(&obj_sem);\n\tup_read(&obj_sem);\n\treturn 0;\n"
    assert not hits("imbalance", body)
    assert hits("imbalance", body.replace("\tdowngrade_write(&obj_sem);\n", ""))


def test_an_irqrestore_unlock_closes_the_interrupt_section_opened_apart() -> None:
    body = ("\tunsigned long flags;\n\n\tlocal_irq_save(flags);\n\tspin_lock(&obj_lock);\n\to->n++;\n"
            "\tspin_unlock_irqrestore(&obj_lock, flags);\n\treturn 0;\n")
    assert not hits("imbalance", body)


def test_a_read_lock_released_as_a_writer_is_reported() -> None:
    (detail,) = hits("imbalance", "\tread_lock(&obj_rwlock);\n\to->n++;\n\twrite_unlock(&obj_rwlock);\n"
                     "\treturn 0;\n")
    assert "the write variant instead of the read one" in detail


HANDOFF = """\
static void finish_split(struct obj *o)
{
\to->count = 0;
\tlocal_irq_enable();
}
"""


def test_a_callee_that_ends_the_callers_interrupt_section() -> None:
    # finish_split() re-enables the interrupts its caller disabled: no leak, and the
    # summary says so (and it still passes a sleep on: a section is no lock).
    facts = derive(list(definitions(HANDOFF, "kernel/obj/split.c")), load_knowledge())
    assert facts.locks_released("finish_split") == {"<irq>": ["local_irq_enable"]}
    body = "\tlocal_irq_disable();\n\to->count++;\n\tfinish_split(o);\n\treturn 0;\n"
    assert hits("imbalance", body, facts) == []
    assert hits("imbalance", body.replace("\tfinish_split(o);\n", "")) != []


UNNAMED = """\
static void finish_table(struct page *page)
{
\tstruct table *t = page_table(page);

\tt->count = 0;
\tspin_unlock(&t->lock);
}
"""


def test_a_callee_that_releases_a_lock_its_callers_cannot_name() -> None:
    # finish_table() unlocks through its own local: its caller's object lock may end
    # there, so holding one across the call is no leak; a global lock still is.
    facts = derive(list(definitions(UNNAMED, "kernel/obj/table.c")), load_knowledge())
    assert facts.locks_released("finish_table") == {"<other>": ["spin_unlock"]}
    body = ("\tspin_lock(&o->table->lock);\n\tfinish_table(o->page);\n\tif (!o->count)\n\t\treturn -EINVAL;\n"
            "\tspin_unlock(&o->table->lock);\n\treturn 0;\n")
    assert hits("imbalance", body, facts) == []
    assert hits("imbalance", body.replace("&o->table->lock", "&obj_lock"), facts) != []
    # Its own lock, taken and released in one body, is no drop.
    own = UNNAMED.replace("\tt->count = 0;\n", "\tspin_lock(&t->lock);\n\tt->count = 0;\n")
    assert derive(list(definitions(own, "kernel/obj/table.c")), load_knowledge()).locks_released("finish_table") == {}


STATS = """\
static void stats_begin(struct obj *o)
{
\tpreempt_disable();
\to->seq++;
}

static void stats_end(struct obj *o)
{
\to->seq++;
\tpreempt_enable();
}

static void stats_end_rt(struct obj *o)
{
\to->seq++;
\tif (IS_ENABLED(CONFIG_PREEMPT_RT))
\t\tpreempt_enable();
}
"""


def test_section_helpers_begin_and_end_a_section_for_their_callers() -> None:
    facts = derive(list(definitions(STATS, "kernel/obj/stats.c")), load_knowledge())
    assert facts.locks_kept("stats_begin") == {"<preempt>": ["preempt_disable"]}
    assert facts.locks_released("stats_end") == {"<preempt>": ["preempt_enable"]}
    assert facts.locks_released("stats_end_rt") == {}  # only on some configurations
    body = "\tstats_begin(o);\n\to->count++;\n\tstats_end(o);\n\treturn 0;\n"
    assert hits("imbalance", body, facts) == []
    # Inside the caller's own section, an end that only RT compiles in is no release.
    inner = "\tpreempt_disable();\n\tstats_end_rt(o);\n\tpreempt_enable();\n\treturn 0;\n"
    assert hits("imbalance", inner, facts) == []


def test_a_constant_if_has_one_way_through() -> None:
    # `if (1) {` is how a hunk that starts inside a block is wrapped (engine/cfunc.py):
    # every path enters it, so its unlock is no path's leak; `if (0)` is dead code.
    body = "\tspin_lock(&o->lock);\n\tif (1) {\n\t\tspin_unlock(&o->lock);\n\t}\n\treturn 0;\n"
    assert hits("imbalance", body) == []
    (leak,) = hits("imbalance", body.replace("if (1)", "if (0)"))
    assert "still held" in leak
    (maybe,) = hits("imbalance", body.replace("if (1)", "if (o->n)"))
    assert "still held" in maybe


def test_an_rw_semaphore_taken_again_by_its_holder_deadlocks_but_an_rwlock_reader_nests() -> None:
    def body(outer: str, inner: str, unlock: str) -> str:
        return f"\t{outer}(&o->sem);\n\t{inner}(&o->sem);\n\to->n++;\n\t{unlock}(&o->sem);\n\treturn 0;\n"

    (again,) = hits("double-lock", body("percpu_down_read", "percpu_down_read", "percpu_up_read"))
    assert "takes for reading again an rw semaphore it holds for reading" in again
    (write,) = hits("double-lock", body("down_read", "down_write", "up_write"))
    assert "takes for writing an rw semaphore it holds for reading" in write
    (read,) = hits("double-lock", body("down_write", "down_read", "up_read"))
    assert "takes for reading an rw semaphore it holds for writing" in read
    assert hits("double-lock", body("read_lock", "read_lock", "read_unlock")) == []
    (rw,) = hits("double-lock", body("read_lock", "write_lock", "write_unlock"))
    assert "takes for writing an rwlock it holds for reading" in rw


def test_a_local_copied_from_a_path_of_current_names_the_same_lock_as_the_path() -> None:
    # do_freezer_trap()-like: the helper drops `current->sighand->siglock`, which this
    # function holds as `sighand->siglock` (sighand = current->sighand, never reassigned):
    # taking it again after the helper is no double lock.
    facts = derive(list(definitions(
        "void drop_it(void)\n{\n\tspin_unlock_irq(&current->sighand->siglock);\n\tschedule();\n}\n",
        "kernel/obj/core.c")), load_knowledge())
    body = ("\tstruct sighand_struct *sighand = current->sighand;\n\n"
            "\tspin_lock_irq(&sighand->siglock);\n\tdrop_it();\n"
            "\tspin_lock_irq(&sighand->siglock);\n\tspin_unlock_irq(&sighand->siglock);\n\treturn 0;\n")
    assert hits("double-lock", body, facts) == []
    # Assigned again: the local may be another task's, and the helper's lock another one.
    again = body.replace("\tspin_lock_irq(&sighand->siglock);\n\tdrop_it();",
                         "\tsighand = o->sighand;\n\tspin_lock_irq(&sighand->siglock);\n\tdrop_it();", 1)
    (double,) = hits("double-lock", again, facts)
    assert "takes a lock already held" in double


def test_a_conditional_lock_kept_in_the_second_of_two_declared_pointers_holds_on_success() -> None:
    # `struct cgroup *src, *dst;` declares both: the result variable of a helper that keeps
    # cgroup_mutex when it succeeds is a local, so the lock is held past `if (!dst)`.
    helpers = """\
struct cgroup *kn_lock_live(struct kernfs_node *kn)
{
\tmutex_lock(&cgroup_mutex);
\tif (kn_dead(kn)) {
\t\tmutex_unlock(&cgroup_mutex);
\t\treturn NULL;
\t}
\treturn kn_cgroup(kn);
}

void needs_cgroup_mutex(struct cgroup *cgrp)
{
\tlockdep_assert_held(&cgroup_mutex);
}
"""
    from reviewbot.facts.condlocks import conditional_keeps
    from reviewbot.facts.fieldlocks import new_stats, scan_file
    k = load_knowledge()
    facts = derive(list(definitions(helpers, "kernel/cgroup/x.c")), k)
    stats = new_stats(k)
    scan_file(helpers, stats, "kernel/cgroup/x.c")
    facts.cond_keeps = conditional_keeps(stats.candidates, facts, k)
    assert facts.locks_kept_if("kn_lock_live")
    src = ("static ssize_t write_it(struct kernfs_node *kn)\n{\n\tstruct cgroup *src_cgrp, *dst_cgrp;\n\n"
           "\tdst_cgrp = kn_lock_live(kn);\n\tif (!dst_cgrp)\n\t\treturn -ENODEV;\n"
           "\tneeds_cgroup_mutex(dst_cgrp);\n\tmutex_unlock(&cgroup_mutex);\n\treturn 0;\n}\n")
    (view,) = views_from_text("kernel/cgroup/x.c", src)
    assert run_context({"check": "lock-not-held"}, view, facts) == []
    unlocked = src.replace("\tneeds_cgroup_mutex(dst_cgrp);\n\tmutex_unlock(&cgroup_mutex);\n",
                           "\tmutex_unlock(&cgroup_mutex);\n\tneeds_cgroup_mutex(dst_cgrp);\n")
    (view,) = views_from_text("kernel/cgroup/x.c", unlocked)
    assert [f.captures["call"] for f in run_context({"check": "lock-not-held"}, view, facts)] == \
        ["needs_cgroup_mutex"]
