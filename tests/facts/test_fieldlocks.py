"""Locking conventions read from the tree by majority (reviewbot/facts/fieldlocks.py): the
lock a field's writers hold, and the locks only ever taken with interrupts disabled."""

from __future__ import annotations

from reviewbot.facts.fieldlocks import field_lock_tables, object_key, private_objects, var_types
from reviewbot.facts.knowledge import load_knowledge


def _writer(name: str, body: str) -> str:
    return f"static void {name}(struct pool *p, long n)\n{{\n{body}}}\n\n"


LOCKED = "\tspin_lock(&p->lock);\n\tp->avail -= n;\n\tspin_unlock(&p->lock);\n"


def tables(*functions: str) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    return field_lock_tables(["".join(functions)], load_knowledge())


def test_declarations_give_pointer_types_and_keys() -> None:
    types = var_types("struct pool *p, long n)\n\tstruct item *a, *b = NULL;\n")
    assert types == {"p": "pool", "a": "item", "b": "item"}
    assert object_key("&p->lock", types) == "pool->lock"
    assert object_key("a->owner.lock", types) == "item->owner->lock"
    assert object_key("&pool_lock", types) == "pool_lock"
    assert object_key("q->lock", types) is None  # the root's type is unknown
    assert private_objects("\tp = kzalloc(sizeof(*p), GFP_KERNEL);\n") == {"p"}


def test_a_field_written_under_one_lock_everywhere_becomes_a_fact() -> None:
    fields, _ = tables(*(_writer(f"pool_take{i}", LOCKED) for i in range(4)))
    lock, held, total, *examples = fields["pool->avail"]
    assert (lock, held, total) == ("pool->lock", "4", "4") and examples[0] == "pool_take0"


def test_one_unlocked_writer_in_five_breaks_the_convention() -> None:
    functions = [_writer(f"pool_take{i}", LOCKED) for i in range(4)]
    functions.append(_writer("pool_peek", "\tp->avail = n;\n"))
    assert "pool->avail" not in tables(*functions)[0]


def test_constructors_and_fresh_objects_do_not_count_as_unlocked_writers() -> None:
    functions = [_writer(f"pool_take{i}", LOCKED) for i in range(4)]
    functions.append(_writer("pool_init", "\tp->avail = n;\n"))
    functions.append(_writer("pool_fill", "\tp = kzalloc(sizeof(*p), GFP_KERNEL);\n\tp->avail = n;\n"))
    assert tables(*functions)[0]["pool->avail"][:3] == ["pool->lock", "4", "4"]


def test_an_assertion_counts_as_held_and_an_early_unlock_leaves_the_rest_locked() -> None:
    asserted = "\tlockdep_assert_held(&p->lock);\n\tp->avail += n;\n"
    early = ("\tspin_lock(&p->lock);\n\tif (!n) {\n\t\tspin_unlock(&p->lock);\n\t\treturn;\n\t}\n"
             "\tp->avail -= n;\n\tspin_unlock(&p->lock);\n")
    fields, _ = tables(_writer("pool_a", asserted), _writer("pool_b", asserted),
                       _writer("pool_c", early), _writer("pool_d", early))
    assert fields["pool->avail"][:3] == ["pool->lock", "4", "4"]


def test_marked_writes_are_not_counted() -> None:
    functions = [_writer(f"pool_take{i}", LOCKED) for i in range(4)]
    functions.append(_writer("pool_peek", "\tWRITE_ONCE(p->avail, n);\n\tatomic_inc(&p->users);\n"))
    assert tables(*functions)[0]["pool->avail"][1:3] == ["4", "4"]


def test_a_lock_taken_with_interrupts_disabled_everywhere_is_interrupt_shared() -> None:
    irq = "\tspin_lock_irq(&p->lock);\n\tp->avail -= n;\n\tspin_unlock_irq(&p->lock);\n"
    handler = ("irqreturn_t pool_irq(int irq, void *data)\n{\n\tstruct pool *p = data;\n\n"
               "\tspin_lock(&p->lock);\n\tp->avail++;\n\tspin_unlock(&p->lock);\n\treturn IRQ_HANDLED;\n}\n\n")
    _, irq_table = tables(*(_writer(f"pool_take{i}", irq) for i in range(5)), handler)
    assert irq_table["pool->lock"][:2] == ["5", "5"]  # the handler's plain lock is irq context
    _, irq_table = tables(*(_writer(f"pool_take{i}", irq) for i in range(5)),
                          _writer("pool_peek", LOCKED))
    assert "pool->lock" not in irq_table  # a plain process-context taker: not shared


def test_acquires_annotation_makes_a_lock_helper_unless_it_cycles_the_callers_lock() -> None:
    from reviewbot.facts.derive import derive
    from reviewbot.facts.extract import definitions

    src = ("void pool_lock_drained(struct pool *p)\n\t__acquires(&pool_mutex)\n{\nrestart:\n"
           "\tmutex_lock(&pool_mutex);\n\tif (p->busy) {\n\t\tmutex_unlock(&pool_mutex);\n"
           "\t\tgoto restart;\n\t}\n}\n\n"
           "void pool_flush_locked(struct pool *p)\n\t__releases(&pool_mutex) __acquires(&pool_mutex)\n{\n"
           "\tmutex_unlock(&pool_mutex);\n\tcond_resched();\n\tmutex_lock(&pool_mutex);\n}\n")
    facts = derive(list(definitions(src, "kernel/pool.c")), load_knowledge())
    assert facts.locks_kept("pool_lock_drained") == {"pool_mutex": ["mutex_lock"]}
    assert not facts.locks_kept("pool_flush_locked")
