"""The callbacks table (facts/callbacks.py): a function that calls a function-pointer
parameter under a spinlock, RCU or with interrupts off runs every function passed as that
argument in that context; the context walk starts such a callback holding it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from reviewbot.engine.cfunc import views_from_text
from reviewbot.engine.contextrun import run_context
from reviewbot.facts.build import cache_path
from reviewbot.facts.derive import derive
from reviewbot.facts.extract import definitions
from reviewbot.facts.knowledge import load_knowledge
from reviewbot.facts.patch import patch_facts
from reviewbot.facts.stored import SCHEMA, StoredFacts
from reviewbot.facts.tables import Facts

ITER = """\
void obj_print_all(struct seq_file *sf, struct obj_set *set,
\t\t   u64 (*prfill)(struct seq_file *, struct obj *, int),
\t\t   int data)
{
\tstruct obj *o;

\trcu_read_lock();
\tlist_for_each_entry_rcu(o, &set->list, node) {
\t\tspin_lock_irq(&o->q->queue_lock);
\t\tif (o->enabled)
\t\t\tprfill(sf, o, data);
\t\tspin_unlock_irq(&o->q->queue_lock);
\t}
\trcu_read_unlock();
}

void obj_visit_unlocked(struct obj_set *set, void (*fn)(struct obj *))
{
\tstruct obj *o;

\tspin_lock(&set->lock);
\to = set->first;
\tspin_unlock(&set->lock);
\tfn(o);
\tif (set->locked)
\t\tspin_lock(&set->lock);
\tfn(o);
}
"""
USERS = """\
static u64 obj_prfill_weight(struct seq_file *sf, struct obj *o, int off)
{
\tseq_printf(sf, "%d\\n", o->weight);
\treturn 0;
}

static void obj_touch(struct obj *o)
{
\to->n++;
}

static int obj_weight_show(struct seq_file *sf, void *v)
{
\tobj_print_all(sf, seq_set(sf), obj_prfill_weight, 0);
\tobj_visit_unlocked(seq_set(sf), obj_touch);
\treturn 0;
}
"""


def base_facts() -> Facts:
    k = load_knowledge()
    defs = [*definitions(ITER, "block/obj-core.c"), *definitions(USERS, "block/obj-weight.c")]
    return derive(defs, k)


def test_what_a_function_holds_around_a_call_of_its_function_pointer_parameter() -> None:
    facts = base_facts()
    assert facts.callback_params("obj_print_all") == {
        "2": ["prfill", "rcu_read_lock ", "spin_lock_irq o->q->queue_lock"]}
    # released before the first call, conditionally taken before the second: nothing
    assert facts.callback_params("obj_visit_unlocked") == {}


def test_a_function_passed_by_name_runs_in_its_callers_context() -> None:
    facts = base_facts()
    assert facts.callback_context("obj_prfill_weight") == [
        "obj_print_all", "prfill", "block/obj-weight.c", "rcu_read_lock ", "spin_lock_irq o->q->queue_lock"]
    assert facts.callback_context("obj_touch") == []
    assert facts.callback_context("obj_weight_show") == []


def test_the_tables_round_trip_through_the_cache(tmp_path: Path) -> None:
    facts = base_facts()
    path = cache_path(tmp_path, "0" * 40, load_knowledge())
    con = sqlite3.connect(path)
    with con:
        con.executescript(SCHEMA)
        con.executemany("INSERT INTO indirect VALUES (?, ?)",
                        [(n, json.dumps(v)) for n, v in facts.indirect.items()])
        con.executemany("INSERT INTO callbacks VALUES (?, ?)",
                        [(n, json.dumps(v)) for n, v in facts.callbacks.items()])
        con.execute("INSERT INTO meta VALUES ('r', 'd', '{}', '[]', '{}')")
    con.close()
    stored = StoredFacts(path)
    assert stored.callback_params("obj_print_all") == facts.callback_params("obj_print_all")
    assert stored.callback_context("obj_prfill_weight") == facts.callback_context("obj_prfill_weight")


def _findings(body: str, check: str) -> list[str]:
    src = USERS.replace('\tseq_printf(sf, "%d\\n", o->weight);\n', body)
    views = views_from_text("block/obj-weight.c", src, added=frozenset(range(1, 100)))
    facts = patch_facts(views, base_facts())
    view = next(v for v in views if v.name == "obj_prfill_weight")
    return [r.captures["detail"] for r in run_context({"check": check}, view, facts)]


def test_the_callback_is_walked_holding_its_callers_lock_with_irqs_off() -> None:
    (detail,) = _findings("\tspin_lock_irq(&o->lock);\n\to->n++;\n\tspin_unlock_irq(&o->lock);\n",
                          "irq-nesting")
    assert "runs as the prfill callback of obj_print_all(), which holds rcu_read_lock() and " \
           "queue_lock with IRQs disabled" in detail
    (detail,) = _findings("\to->buf = kmalloc(64, GFP_KERNEL);\n", "sleep-in-atomic")
    assert "prfill callback of obj_print_all()" in detail
    assert _findings("\tspin_lock(&o->lock);\n\to->n++;\n\tspin_unlock(&o->lock);\n", "irq-nesting") == []
    assert _findings("\tspin_lock(&o->lock);\n\to->n++;\n\tspin_unlock(&o->lock);\n", "imbalance") == []


def test_a_static_callback_of_another_file_with_the_same_name_is_not_affected() -> None:
    src = USERS.replace('\tseq_printf(sf, "%d\\n", o->weight);\n', "\tmsleep(1);\n")
    views = views_from_text("block/other.c", src, added=frozenset(range(1, 100)))
    view = next(v for v in views if v.name == "obj_prfill_weight")
    assert run_context({"check": "sleep-in-atomic"}, view, base_facts()) == []
