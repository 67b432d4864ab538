"""What every caller of a static function holds (reviewbot/engine/callerctx.py)."""

from __future__ import annotations

from reviewbot.engine.callerctx import caller_context
from reviewbot.facts.knowledge import load_knowledge

K = load_knowledge()


def contexts(src: str) -> dict[str, tuple[str, ...]]:
    return {name: c.items for name, c in caller_context(src.split("\n"), K).items()}


HELPER = """static DEFINE_MUTEX(big_mutex);

static void helper(struct obj *o)
{
\to->count++;
}

@@CALLERS@@
"""


def test_every_caller_holding_a_global_lock_gives_the_context() -> None:
    src = HELPER.replace("@@CALLERS@@", """void a(struct obj *o)
{
\tmutex_lock(&big_mutex);
\thelper(o);
\tmutex_unlock(&big_mutex);
}

void b(struct obj *o)
{
\tlockdep_assert_held(&big_mutex);
\thelper(o);
}
""")
    # One caller takes the lock, the other asserts it: the same lock, by its taker's kind.
    assert contexts(src) == {"helper": ("mutex_lock big_mutex",)}


def test_one_unlocked_caller_removes_the_context() -> None:
    src = HELPER.replace("@@CALLERS@@", """void a(struct obj *o)
{
\tmutex_lock(&big_mutex);
\thelper(o);
\tmutex_unlock(&big_mutex);
}

void b(struct obj *o)
{
\thelper(o);
}
""")
    assert "helper" not in contexts(src)


def test_all_callers_taking_the_lock() -> None:
    src = HELPER.replace("@@CALLERS@@", """void a(struct obj *o)
{
\tmutex_lock(&big_mutex);
\thelper(o);
\tmutex_unlock(&big_mutex);
}

void b(struct obj *o)
{
\tif (!o)
\t\treturn;
\tmutex_lock(&big_mutex);
\tif (o->count)
\t\thelper(o);
\tmutex_unlock(&big_mutex);
}
""")
    assert contexts(src) == {"helper": ("mutex_lock big_mutex",)}


def test_address_taken_or_macro_use_means_unknown_callers() -> None:
    callers = """void a(struct obj *o)
{
\tmutex_lock(&big_mutex);
\thelper(o);
\tmutex_unlock(&big_mutex);
}
"""
    assert contexts(HELPER.replace("@@CALLERS@@", callers)) == {"helper": ("mutex_lock big_mutex",)}
    taken = callers + "\nstatic const struct obj_ops ops = {\n\t.update = helper,\n};\n"
    assert contexts(HELPER.replace("@@CALLERS@@", taken)) == {}
    macro = callers + "\n#define UPDATE(o) helper(o)\n"
    assert contexts(HELPER.replace("@@CALLERS@@", macro)) == {}
    passed = callers + "\nvoid c(struct obj *o)\n{\n\tfor_each_obj(o, helper);\n}\n"
    assert contexts(HELPER.replace("@@CALLERS@@", passed)) == {}
    exported = HELPER.replace("static void helper", "void helper").replace("@@CALLERS@@", callers)
    assert contexts(exported) == {}


def test_released_before_the_call_and_block_ends() -> None:
    src = HELPER.replace("@@CALLERS@@", """void a(struct obj *o)
{
\tif (o->flag) {
\t\tmutex_lock(&big_mutex);
\t\to->count = 0;
\t}
\thelper(o);
}
""")
    assert contexts(src) == {}
    dropped = HELPER.replace("@@CALLERS@@", """static void middle(struct obj *o)
{
\tmutex_unlock(&big_mutex);
\thelper(o);
\tmutex_lock(&big_mutex);
}

void a(struct obj *o)
{
\tmutex_lock(&big_mutex);
\tmiddle(o);
\tmutex_unlock(&big_mutex);
}
""")
    # middle() runs under big_mutex, but drops it before calling helper().
    assert contexts(dropped) == {"middle": ("mutex_lock big_mutex",)}


def test_context_flows_through_static_callers() -> None:
    src = HELPER.replace("@@CALLERS@@", """static void middle(struct obj *o)
{
\thelper(o);
}

void a(struct obj *o)
{
\tspin_lock_irq(&o->lock);
\tmiddle(o);
\tspin_unlock_irq(&o->lock);
}
""")
    # The caller's object lock, passed as the first argument: the callee's `o->lock`.
    assert contexts(src) == {"helper": ("spin_lock_irq @0->lock",), "middle": ("spin_lock_irq @0->lock",)}


def test_recursion_alone_gives_nothing() -> None:
    src = """static void walk(struct obj *o)
{
\tif (o->child)
\t\twalk(o->child);
}
"""
    assert contexts(src) == {}
