"""What every caller of a static function holds (reviewbot/engine/callerctx.py)."""

from __future__ import annotations

from reviewbot.engine.callerctx import (
    _asserted,
    _bodies,
    _read_source,
    _read_whole,
    _stretches,
    caller_context,
    caller_context_of,
)
from reviewbot.facts.extract import blank_comments, function_bodies
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


CHAIN = """static DEFINE_SPINLOCK(lock_a);
static DEFINE_MUTEX(mutex_b);

static void leaf(int x)
{
\tx++;
}

static void middle(int x)
{
\tleaf(x);
}

static void escaped(int x)
{
\tleaf(x);
}

static void cb_user(int x)
{
\tmutex_lock(&mutex_b);
\tescaped(x);
\tmutex_unlock(&mutex_b);
}

static struct ops the_ops = {
\t.fn = escaped,
};

void top(int x)
{
\tspin_lock(&lock_a);
\tmiddle(x);
\tspin_unlock(&lock_a);
}

void other(int x)
{
\tspin_lock(&lock_a);
\tmiddle(x);
\tleaf(x);
\tspin_unlock(&lock_a);
}
"""


def test_one_function_asked_alone_gets_what_the_whole_file_scan_gives() -> None:
    # A rules run asks for the few functions a patch touches: each answer, worked out over
    # that function's callers (and theirs) only, is the whole file's. `leaf` is reached
    # through `middle` (under lock_a) and through `escaped`, whose address is taken (its
    # callers are unknown, so it gives nothing and neither does leaf).
    whole = caller_context(CHAIN.split("\n"), K)
    for name in ("leaf", "middle", "escaped", "cb_user", "top", "nothing"):
        alone = caller_context_of(CHAIN.split("\n"), K, name)  # (a fresh line list: no cache)
        assert alone == whole.get(name), name
    assert whole["middle"].items == ("spin_lock lock_a",)
    assert "leaf" not in whole and "escaped" not in whole


STRETCHY = """\
struct ops {
	int (*fn)(void);
};
static const struct ops my_ops = {
	.fn = first,
};
static int first(void)
{
	lockdep_assert_held(&cgroup_mutex);
	if (x) {
		return 1;
	}
	return 0;
}
}
{
	stray();
}
void second(struct cgroup *cgrp)
{
	first();
}
#define M(x) \\
{ x; }
static inline void
third(int a,
      int b)
{
	second(NULL);
}"""


def test_bodies_read_by_stretch_are_the_whole_texts() -> None:
    # Struct and initializer ends, a stray "}" line followed by a "{" line, a multi-line
    # signature, a last body without a line after it: each stretch ends with a "}" line.
    text = blank_comments(STRETCHY)
    whole = [(n, s, at, at + len(b), _asserted(b)) for n, s, at, b in function_bodies(text, params=False)]
    assert [w[0] for w in whole] == ["first", "second", "third"]
    assert _bodies(text) == whole
    assert _bodies(text) == whole  # the second time from the stretches kept
    edited = text.replace("\tsecond(NULL);", "\tsecond(NULL);\n\tfirst();")
    assert _bodies(edited) == [(n, s, at, at + len(b), _asserted(b))
                               for n, s, at, b in function_bodies(edited, params=False)]
    assert _bodies(text)[0][4] == frozenset({"@assert cgroup_mutex"})


def test_source_read_by_stretch_is_the_whole_files() -> None:
    # The blanked text and the bodies (with lines) read stretch by stretch, kept, equal
    # the whole file's; an edit changes one stretch; a comment that runs past a "}" line
    # ends a stretch inside it and the file is read whole (the same answer either way).
    raw = "/* head */\n" + STRETCHY + "\n// tail\nstatic void last(void)\n{\n\tfirst(); /* x */\n}\n"
    assert _read_source(raw) == _read_whole(raw)
    assert [f.name for f in _read_source(raw)[1]] == ["first", "second", "third", "last"]
    assert _read_source(raw) == _read_whole(raw)  # the second time from the stretches kept
    edited = raw.replace("\tfirst(); /* x */", "\tsecond(NULL);\n\tfirst();")
    assert _read_source(edited) == _read_whole(edited)
    assert _read_source(edited)[1][-1].first_line == _read_whole(edited)[1][-1].first_line
    across = raw.replace("/* head */", "/* head\n}\nstill the comment */")
    assert "/*" in blank_comments(_stretches(across)[0][1])  # (the case it guards)
    assert _read_source(across) == _read_whole(across)
