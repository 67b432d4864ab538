"""Calls through ops tables: ``ns->ops->put(ns)`` may run any function the tree stores in
``proc_ns_operations.put``, so it may sleep when one of them may; resolved by the struct
types of the call's path, never by the member name alone."""

from __future__ import annotations

from pathlib import Path

from reviewbot.engine.cfunc import views_from_text
from reviewbot.facts.build import save, scan
from reviewbot.facts.derive import derive
from reviewbot.facts.extract import calls_of, definitions
from reviewbot.facts.knowledge import load_knowledge
from reviewbot.facts.opsfacts import OpsScan, member_key, shown_chain
from reviewbot.facts.patch import patch_facts
from reviewbot.facts.stored import StoredFacts
from reviewbot.facts.tables import Facts

HEADER = """\
struct ns_ops {
\tconst char *name;
\tvoid (*put)(struct ns_common *ns);
\tint (*install)(struct ns_common *ns);
};

struct ns_common {
\tunsigned int inum;
\tconst struct ns_ops *ops;
};

struct other_ops {
\tvoid (*put)(struct thing *t);
};

struct holder {
\tstruct ns_common ns;
\tstruct other_ops *ops;
};

struct callback {
\tstruct callback *next;
\tvoid (*func)(struct callback *cb);
};
"""

SOURCE = """\
static void mnt_put(struct ns_common *ns)
{
\tdown_write(&namespace_sem);
}

static void net_put(struct ns_common *ns)
{
\tatomic_dec(&ns->count);
}

static void thing_put(struct thing *t)
{
\tatomic_dec(&t->count);
}

const struct ns_ops mnt_ops = {
\t.name\t\t= "mnt",
\t.put\t\t= mnt_put,
};

static const struct ns_ops net_ops = {
\t.name = "net",
\t.put = net_put,
};

static struct other_ops other[] = {
\t{ .put = thing_put, },
\t[1] = {
\t\t.put = thing_put,
\t},
};

void drop_ns(struct ns_common *ns)
{
\tif (ns->ops)
\t\tns->ops->put(ns);
}

void drop_holder(struct holder *h)
{
\th->ns.ops->put(&h->ns);
\th->ops->put(NULL);
}

void drop_unknown(void *p)
{
\tstruct unknown *u = p;

\tu->ops->put(u);
}

static void slow_cb(struct callback *cb)
{
\tmsleep(1);
}

static struct callback slow = {
\t.func = slow_cb,
};

void run_callback(struct callback *cb)
{
\tcb->func(cb);
}

void put(struct ns_common *ns)
{
\tmsleep(1);
}

void calls_member_named_put(struct widget *w)
{
\tw->put(w);
}
"""


def _facts() -> Facts:
    ops = OpsScan()
    defs, _ = scan(iter([("include/linux/ns.h", HEADER), ("fs/ns.c", SOURCE)]), ops=ops)
    return derive(defs, load_knowledge(), ops=ops)


def test_a_call_through_a_pointer_is_named_by_its_expression() -> None:
    calls = calls_of("\tif (ns->ops)\n\t\tns->ops->put(ns);\n\tof_cft(of)->release(of);\n")
    assert [c.name for c in calls] == ["ns->ops->put", "of_cft", "->release"]
    # Guarded only by the member's own presence: runs whenever the function does.
    assert calls[0].top_level


def test_an_ops_member_may_sleep_when_one_implementation_may() -> None:
    f = _facts()
    assert f.ops_sleep("ns_ops.put") == ["mnt_put", "down_write"]
    assert f.ops_sleep("other_ops.put") is None
    assert f.field_type("ns_common", "ops") == "ns_ops"
    # The wrapper that calls the member (guarded by its presence) may sleep too, the
    # dispatch naming the implementation it may run; an embedded struct is followed.
    assert f.sleep_chain("drop_ns") == ["ns->ops->put", "mnt_put", "down_write"]
    assert f.sleep_chain("drop_holder") == ["h->ns.ops->put", "mnt_put", "down_write"]
    assert shown_chain(["ns->ops->put", "mnt_put", "down_write"]) == \
        "ns->ops->put() may run mnt_put() -> down_write()"


def test_an_unknown_type_or_a_bare_member_name_resolves_to_nothing() -> None:
    f = _facts()
    assert f.sleep_chain("drop_unknown") is None
    # A single callback slot is no ops table: whoever registers binds it, for any chain.
    assert f.ops_sleep("callback.func") is None
    assert f.sleep_chain("run_callback") is None
    # A global function named like the member is not what `w->put(w)` runs.
    assert f.sleep_chain("calls_member_named_put") is None
    assert member_key("u->ops->put", {}, f.field_type) is None


def test_a_patch_wrapper_and_its_cleanup_class_sleep_through_the_base_table(tmp_path: Path) -> None:
    base = StoredFacts(_saved(tmp_path))
    text = ("static void __drop(struct ns_common *ns)\n{\n\tif (ns->ops)\n\t\tns->ops->put(ns);\n}\n\n"
            "DEFINE_FREE(drop, struct ns_common *, if (_T) __drop(_T))\n")
    views = views_from_text("kernel/x.c", text, added=frozenset(range(1, 10)))
    facts = patch_facts(views, base)
    assert facts.sleep_chain("__drop", "kernel/x.c") == ["ns->ops->put", "mnt_put", "down_write"]
    assert facts.sleep_chain("__free_drop", "kernel/x.c") == ["__drop", "ns->ops->put", "mnt_put", "down_write"]


def test_an_assignment_to_a_member_counts_as_an_implementation() -> None:
    src = SOURCE + ("\nstatic void slow_put(struct ns_common *ns)\n{\n\tmutex_lock(&m);\n}\n\n"
                    "void setup(struct other_ops *o, struct ns_ops *n)\n{\n\tn->install = slow_put;\n}\n\n"
                    "int do_install(struct ns_common *ns)\n{\n\treturn ns->ops->install(ns);\n}\n")
    ops = OpsScan()
    defs, _ = scan(iter([("include/linux/ns.h", HEADER), ("fs/ns.c", src)]), ops=ops)
    f = derive(defs, load_knowledge(), ops=ops)
    assert f.ops_sleep("ns_ops.install") == ["slow_put", "mutex_lock"]
    assert f.sleep_chain("do_install") == ["ns->ops->install", "slow_put", "mutex_lock"]
    assert [d.fp_stores for d in definitions(src, "fs/ns.c") if d.name == "setup"] == \
        [(("ns_ops.install", "slow_put"),)]


def _saved(tmp_path: Path) -> Path:
    path = tmp_path / "facts.sqlite"
    save(path, _facts())
    return path


def test_the_ops_tables_round_trip_through_the_cache(tmp_path: Path) -> None:
    stored = StoredFacts(_saved(tmp_path))
    assert stored.ops_sleep("ns_ops.put") == ["mnt_put", "down_write"]
    assert stored.field_type("ns_common", "ops") == "ns_ops"
    assert stored.field_type("ns_common", "inum") is None


def test_a_cleanup_class_body_calls_through_its_typed_variable() -> None:
    ops = OpsScan()
    src = SOURCE + "\nDEFINE_FREE(nsput, struct ns_common *, if (_T) _T->ops->put(_T))\n"
    defs, _ = scan(iter([("include/linux/ns.h", HEADER), ("fs/ns.c", src)]), ops=ops)
    f = derive(defs, load_knowledge(), ops=ops)
    assert f.sleep_chain("__free_nsput", "fs/ns.c") == ["_T->ops->put", "mnt_put", "down_write"]


def test_the_global_locks_an_implementation_takes_are_the_members() -> None:
    f = _facts()
    assert f.ops_lock("ns_ops.put") == {"namespace_sem": ["mnt_put", "down_write"]}
    assert f.ops_lock("other_ops.put") == {}
