"""Facts derived from kernel C: what may sleep, which locks a function takes, keeps or
drops, which parameters it releases; each with the chain that explains it."""

from __future__ import annotations

from reviewbot.facts.derive import derive
from reviewbot.facts.extract import definitions
from reviewbot.facts.knowledge import load_knowledge
from reviewbot.facts.tables import EMPTY

HEADER = """\
static inline void grab_big_lock(void)
{
\tmutex_lock(&big_mutex);
}

static inline void drop_big_lock(void)
{
\tmutex_unlock(&big_mutex);
}

static inline void obj_lock(struct obj *o)
{
\tspin_lock(&o->lock);
}
"""

SOURCE = """\
struct node *walk_and_get(struct node *root, const char *path)
{
\tstruct node *n;

\tdown_read(&root->sem);
\tn = walk(root, path);
\tup_read(&root->sem);
\treturn n;
}

struct node *lookup_path(const char *path)
{
\treturn walk_and_get(the_root, path);
}

static void *slow_alloc(size_t n)
{
	cond_resched();
	return grab_pages(n);
}

void *kmalloc(size_t n, gfp_t flags)
{
	return slow_alloc(n);
}

void *alloc_entry(gfp_t gfp)
{
\treturn kmalloc(64, gfp);
}

static void maybe_wait(struct obj *o)
{
\tif (o->busy)
\t\twait_for_completion(&o->done);
}

void calls_maybe_wait(struct obj *o)
{
\tif (o->slow)
\t\tmaybe_wait(o);
}

void add_entry(struct obj *o)
{
\to->e = alloc_entry(GFP_KERNEL);
}

void add_entry_atomic(struct obj *o)
{
\to->e = alloc_entry(GFP_ATOMIC);
}

void update_all(void)
{
\tgrab_big_lock();
\trefresh();
\tdrop_big_lock();
}

void refresh_locked(void)
{
\tmutex_unlock(&big_mutex);
\tcond_resched();
\tmutex_lock(&big_mutex);
}

void finish_and_unlock(void)
{
\tmutex_unlock(&big_mutex);
}

void obj_put(struct obj *o)
{
\tif (refcount_dec_and_test(&o->ref))
\t\tkfree(o);
}

void obj_put_pair(struct obj *a, struct obj *b)
{
\tobj_put(a);
\tobj_put(b);
}

__weak void arch_hook(void)
{
}

void after_weak(void)
{
\tmsleep(1);
}
"""


def facts_of(*files: tuple[str, str]):  # type: ignore[no-untyped-def]
    defs = [d for path, text in files for d in definitions(text, path)]
    return derive(defs, load_knowledge())


def test_sleep_chains_follow_unconditional_calls_and_name_the_primitive() -> None:
    f = facts_of(("include/linux/x.h", HEADER), ("fs/x.c", SOURCE))
    assert f.sleep_chain("walk_and_get") == ["down_read"]
    assert f.sleep_chain("lookup_path") == ["walk_and_get", "down_read"]
    assert f.sleep_chain("add_entry") == ["alloc_entry(GFP_KERNEL)"]
    # A sleep under the callee's own condition counts for the callee, not through an
    # `if` in its caller; a gfp_t parameter makes the caller decide.
    assert f.sleep_chain("maybe_wait", "fs/x.c") == ["wait_for_completion"]
    assert f.sleep_chain("calls_maybe_wait") is None
    # The allocator itself reaches cond_resched(), but only its caller's flags decide.
    assert f.sleep_chain("slow_alloc", "fs/x.c") == ["cond_resched"]
    assert f.sleep_chain("kmalloc") is None
    assert f.sleep_chain("alloc_entry") is None
    assert f.sleep_chain("add_entry_atomic") is None


def test_an_empty_stub_does_not_swallow_the_next_function() -> None:
    names = [d.name for d in definitions(SOURCE, "fs/x.c")]
    assert "arch_hook" in names and "after_weak" in names
    f = facts_of(("fs/x.c", SOURCE))
    assert f.sleep_chain("arch_hook") is None
    assert f.sleep_chain("after_weak") == ["msleep"]


def test_lock_helpers_keep_and_drop_locks_for_their_callers() -> None:
    f = facts_of(("include/linux/x.h", HEADER), ("fs/x.c", SOURCE))
    assert f.locks_kept("grab_big_lock") == {"big_mutex": ["mutex_lock"]}
    assert f.locks_released("drop_big_lock") == {"big_mutex": ["mutex_unlock"]}
    assert f.locks_kept("obj_lock") == {"$0->lock": ["spin_lock"]}
    # Taken through a helper and dropped through one: the function's own business.
    assert f.locks_taken("update_all") == {"big_mutex": ["grab_big_lock", "mutex_lock"]}
    assert f.locks_released("update_all") == {}
    assert f.locks_released("finish_and_unlock") == {"big_mutex": ["mutex_unlock"]}


def test_dropping_and_retaking_the_callers_lock_is_neither_a_drop_nor_a_sleep() -> None:
    f = facts_of(("fs/x.c", SOURCE))
    assert f.locks_released("refresh_locked") == {}
    assert f.locks_kept("refresh_locked") == {}
    assert f.sleep_chain("refresh_locked") is None  # it sleeps only with the lock dropped


def test_put_helpers_release_their_parameters_through_helpers() -> None:
    f = facts_of(("fs/x.c", SOURCE))
    assert f.released_params("obj_put") == {0: "memory"}
    assert f.released_params("obj_put_pair") == {0: "memory", 1: "memory"}


def test_debug_only_code_does_not_make_callers_sleep() -> None:
    debug = "void kmsan_poison(void *p)\n{\n\tvoid *x = kmalloc(8, GFP_KERNEL);\n}\n"
    user = "void my_free(void *p)\n{\n\tkmsan_poison(p);\n}\n"
    f = facts_of(("mm/kmsan/hooks.c", debug), ("mm/slab.c", user))
    assert f.sleep_chain("my_free") is None


def test_a_patch_overlay_judges_its_own_functions_by_their_new_body() -> None:
    base = facts_of(("fs/x.c", SOURCE))
    new_body = "struct node *lookup_path(const char *path)\n{\n\treturn cached_lookup(path);\n}\n"
    own = derive(list(definitions(new_body, "fs/x.c")), load_knowledge(), base=base)
    own.defined = ["lookup_path"]
    merged = base.overlay(own)
    assert merged.sleep_chain("lookup_path") is None
    assert merged.sleep_chain("walk_and_get") == ["down_read"]
    caller = "void show(void)\n{\n\tlookup_path(\"/\");\n\twalk_and_get(r, p);\n}\n"
    mine = derive(list(definitions(caller, "fs/y.c")), load_knowledge(), base=merged)
    assert mine.sleep_chain("show") == ["walk_and_get", "down_read"]
    assert EMPTY.sleep_chain("show") is None


def test_cleanup_classes_and_uncharged_kept_allocations_become_facts() -> None:
    src = ("DEFINE_FREE(mmput, struct mm_struct *, if (_T) mmput(_T))\n\n"
           "void mmput(struct mm_struct *mm)\n{\n\tmight_sleep();\n}\n\n"
           "int keep(struct list_head *head, const char *s)\n{\n\tstruct item *it;\n\tchar *tmp;\n\n"
           "\ttmp = kstrdup(s, GFP_KERNEL);\n\tit = kzalloc(sizeof(*it), GFP_KERNEL);\n"
           "\tlist_add(&it->node, head);\n\tkfree(tmp);\n\treturn 0;\n}\n\n"
           "int keep_charged(struct holder *h)\n{\n"
           "\th->it = kzalloc(sizeof(*h->it), GFP_KERNEL_ACCOUNT);\n\treturn 0;\n}\n")
    facts = derive(definitions(src, "mm/x.c"), load_knowledge())
    assert facts.sleep_chain("mmput") == ["might_sleep"]  # not hidden by DEFINE_FREE above it
    assert facts.sleep_chain("__free_mmput", "mm/x.c") == ["mmput", "might_sleep"]
    # The kept item is uncharged; the temporary copy is freed, the charged one is fine.
    assert facts.unaccounted_alloc("keep") == ["mm/x.c", "", "it = kzalloc(sizeof(*it), GFP_KERNEL)"]
    assert facts.unaccounted_alloc("keep_charged") is None


def test_get_helpers_take_a_reference_on_their_parameter() -> None:
    src = ("void ctx_get(struct ctx *c)\n{\n\tkref_get(&c->kref);\n}\n\n"
           "void ctx_put(struct ctx *c)\n{\n\tkref_put(&c->kref, ctx_release);\n}\n\n"
           "void ioc_get(struct ioc *ioc)\n{\n\tatomic_long_inc(&ioc->refcount);\n}\n\n"
           "void ioc_attach(struct ioc *ioc, struct task *t)\n{\n\tatomic_inc(&ioc->nr_tasks);\n}\n\n"
           "void ioc_get_for(struct ioc *ioc, struct task *t)\n{\n\tatomic_inc(&ioc->ref);\n"
           "\tt->ioc = ioc;\n}\n")
    f = facts_of(("block/x.c", src))
    assert f.acquired_params("ctx_get") == {0: "kref"}
    assert f.released_params("ctx_put") == {0: "kref"}  # the pair the get pairs with
    assert f.acquired_params("ioc_get") == {0: "memory"}  # a plain count keeps the memory
    assert f.acquired_params("ioc_attach") == {}  # not named as a get
    assert f.acquired_params("ioc_get_for") == {}  # the reference is the stored copy's


def test_a_kept_vzalloc_is_an_uncharged_kernel_allocation() -> None:
    # vzalloc() takes no flags: it allocates with GFP_KERNEL, never charged.
    src = ("int keep_table(struct holder *h, size_t n)\n{\n\th->slots = vzalloc(n);\n\treturn 0;\n}\n\n"
           "int keep_charged_table(struct holder *h, size_t n)\n{\n"
           "\th->slots = __vmalloc(n, GFP_KERNEL_ACCOUNT | __GFP_ZERO);\n\treturn 0;\n}\n")
    facts = derive(definitions(src, "mm/x.c"), load_knowledge())
    assert facts.unaccounted_alloc("keep_table") == ["mm/x.c", "", "h->slots = vzalloc(n)"]
    assert facts.unaccounted_alloc("keep_charged_table") is None


def test_allocators_with_optional_flags_default_to_gfp_kernel() -> None:
    # 7.x: kzalloc_obj(*p) leaves out its flags and allocates with GFP_KERNEL: it may sleep
    # and is not charged; given flags are read as for kzalloc().
    src = ("int keep_ctx(struct holder *h)\n{\n\th->ctx = kzalloc_obj(*h->ctx);\n\treturn 0;\n}\n\n"
           "int keep_ctx_charged(struct holder *h)\n{\n"
           "\th->ctx = kzalloc_obj(*h->ctx, GFP_KERNEL_ACCOUNT);\n\treturn 0;\n}\n\n"
           "int keep_ids(struct holder *h, int n)\n{\n\th->ids = kvmalloc_objs(int, n);\n\treturn 0;\n}\n\n"
           "int keep_ids_atomic(struct holder *h, int n)\n{\n"
           "\th->ids = kmalloc_objs(int, min(n, 8), GFP_ATOMIC);\n\treturn 0;\n}\n")
    k = load_knowledge()
    facts = derive(definitions(src, "mm/x.c"), k)
    assert facts.unaccounted_alloc("keep_ctx") == ["mm/x.c", "", "h->ctx = kzalloc_obj(*h->ctx)"]
    assert facts.unaccounted_alloc("keep_ctx_charged") is None
    assert facts.unaccounted_alloc("keep_ids") is not None
    assert facts.unaccounted_alloc("keep_ids_atomic") is None
    assert facts.sleep_chain("keep_ctx") == ["kzalloc_obj(GFP_KERNEL, by default)"]
    assert facts.sleep_chain("keep_ctx_charged") == ["kzalloc_obj(GFP_KERNEL_ACCOUNT)"]
    assert facts.sleep_chain("keep_ids_atomic") is None
    assert k.implied_gfp("kzalloc_flex", "*p, entries, n") and \
        not k.implied_gfp("kzalloc_flex", "*p, entries, n, GFP_NOWAIT")
    assert not k.implied_gfp("kzalloc", "size, gfp") and k.implied_gfp("vzalloc", "size")


def test_helpers_that_need_preemption_disabled_by_their_caller() -> None:
    src = ("void __stat_add(struct st *s, int v)\n{\n\t__this_cpu_add(s->pcpu->n, v);\n}\n\n"
           "void stat_add(struct st *s, int v)\n{\n\tunsigned long flags;\n\n"
           "\tlocal_irq_save(flags);\n\t__stat_add(s, v);\n\tlocal_irq_restore(flags);\n}\n\n"
           "static void __stat_bump(struct st *s)\n{\n\t__stat_add(s, 1);\n}\n\n"
           "void stat_maybe(struct st *s)\n{\n\tif (in_task())\n\t\t__this_cpu_inc(s->pcpu->n);\n}\n\n"
           "int stat_peek(struct st *s)\n{\n\treturn __this_cpu_read(s->pcpu->n);\n}\n\n"
           "void stat_checked(struct st *s)\n{\n\tlockdep_assert_irqs_disabled();\n\ts->n++;\n}\n")
    facts = derive(definitions(src, "mm/x.c"), load_knowledge())
    assert facts.preempt_need("__stat_add") == ["__this_cpu_add"]
    assert facts.preempt_need("__stat_bump", "mm/x.c") == ["__stat_add", "__this_cpu_add"]
    assert facts.preempt_need("__stat_bump", "mm/y.c") is None  # another file's static
    assert facts.preempt_need("stat_add") is None  # disables interrupts itself
    assert facts.preempt_need("stat_maybe") is None  # decides by its context
    assert facts.preempt_need("stat_peek") is None  # a read is no update
    assert facts.preempt_need("stat_checked") == ["lockdep_assert_irqs_disabled"]


IRQ_SOURCE = """\
static void stats_timer_fn(struct timer_list *t)
{
\tspin_lock(&stats_lock);
\tspin_unlock(&stats_lock);
}

static void objx_release(struct percpu_ref *ref)
{
\tunsigned long flags;

\tspin_lock_irqsave(&objx_list_lock, flags);
\tspin_unlock_irqrestore(&objx_list_lock, flags);
}

static void objx_kill_confirm(struct percpu_ref *ref)
{
\tspin_lock(&confirm_lock);
\tspin_unlock(&confirm_lock);
}

int objx_init(struct objx *o)
{
\treturn percpu_ref_init(&o->refcnt, objx_release, 0, GFP_KERNEL);
}

static irqreturn_t dev_irq(int irq, void *data)
{
\tspin_lock(&dev_lock);
\tspin_unlock(&dev_lock);
\treturn IRQ_HANDLED;
}
"""


def test_locks_taken_in_interrupt_context_name_that_context() -> None:
    facts = derive(list(definitions(IRQ_SOURCE, "mm/objx.c")), load_knowledge())
    assert facts.irq_context_of("stats_lock") == ["softirq", "stats_timer_fn", "spin_lock"]
    assert facts.irq_context_of("dev_lock") == ["hardirq", "dev_irq", "spin_lock"]
    # A percpu_ref release may run from an RCU callback (percpu_ref_kill()): softirq.
    assert facts.irq_context_of("objx_list_lock") == ["softirq", "objx_release", "spin_lock_irqsave"]
    # The same signature, not passed to percpu_ref_init(): process context.
    assert facts.irq_context_of("confirm_lock") is None


ORDERED = """\
void attach_lock(bool threadgroup)
{
\tcpus_read_lock();
\tif (threadgroup)
\t\tpercpu_down_write(&tg_rwsem);
}

void write_start(void)
{
\tmutex_lock(&outer_mutex);
\tattach_lock(true);
}

void maybe_nested(void)
{
\tif (cond)
\t\tmutex_lock(&first_mutex);
\tmutex_lock(&second_mutex);
}
"""


def test_lock_order_counts_inner_locks_taken_under_a_condition_or_kept_by_a_helper() -> None:
    f = facts_of(("kernel/x.c", ORDERED))
    # Taken only `if (threadgroup)`, but always inside cpus_read_lock() when it is.
    assert f.nested_in("cpu_hotplug_lock", "tg_rwsem") == "attach_lock"
    assert f.nested_in("tg_rwsem", "cpu_hotplug_lock") is None
    # A helper that returns holding cpu_hotplug_lock, called with outer_mutex held.
    assert f.nested_in("outer_mutex", "cpu_hotplug_lock") == "write_start"
    # The outer lock must be held on every run: a conditional one orders nothing.
    assert f.nested_in("first_mutex", "second_mutex") is None
