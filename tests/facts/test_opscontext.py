"""What every call of an ops member holds (reviewbot/facts/opscontext.py)."""

from __future__ import annotations

from reviewbot.facts.extract import definitions
from reviewbot.facts.knowledge import load_knowledge
from reviewbot.facts.opscontext import ops_context

K = load_knowledge()
FIELDS = {"widget.ops": "widget_ops"}

SRC = """struct widget_ops {
\tint (*online)(struct widget *w);
\tvoid (*flush)(struct widget *w, int cpu);
};

static DEFINE_MUTEX(widget_mutex);

static int online_widget(struct widget *w)
{
\tlockdep_assert_held(&widget_mutex);
\treturn w->ops->online(w);
}

int create_widget(struct widget *w)
{
\tint ret;

\tmutex_lock(&widget_mutex);
\tret = w->ops->online(w);
\tmutex_unlock(&widget_mutex);
\treturn ret;
}

void flush_widget(struct widget *w, int cpu)
{
\traw_spinlock_t *cpu_lock = per_cpu_ptr(&widget_cpu_lock, cpu);

\traw_spin_lock_irq(cpu_lock);
\tw->ops->flush(w, cpu);
\traw_spin_unlock_irq(cpu_lock);
}
"""


def run(src: str) -> dict[str, list[str]]:
    defs = list(definitions(src, "lib/widget.c"))
    return ops_context(defs, K, lambda owner, name: FIELDS.get(f"{owner}.{name}"),
                       primitive={"widget_mutex": "mutex_lock"}.get)


def test_every_call_holds_the_lock() -> None:
    got = run(SRC)
    # One call asserts widget_mutex, the other takes it: the same lock.
    assert got["widget_ops.online"][2:] == ["mutex_lock widget_mutex"]
    # A local's lock is held (and atomic) but is no lock the implementation can name.
    assert got["widget_ops.flush"][2:] == ["raw_spin_lock_irq ~"]


def test_one_unlocked_call_removes_the_context() -> None:
    src = SRC + "\nvoid probe_widget(struct widget *w)\n{\n\tw->ops->online(w);\n}\n"
    assert "widget_ops.online" not in run(src)


def test_a_call_of_unknown_type_removes_the_context() -> None:
    # A call of another struct's member of that name is another member...
    src = SRC + "\nvoid poke(void *p)\n{\n\tstruct thing *t = p;\n\n\tt->online(t);\n}\n"
    assert "widget_ops.online" in run(src)
    # ... but one through a pointer whose type the scan cannot tell may be this one.
    src = SRC + "\nvoid poke(void *p)\n{\n\tget_widget(p)->ops->online(p);\n}\n"
    assert "widget_ops.online" not in run(src)
    assert "widget_ops.flush" in run(src)


def test_released_before_the_call() -> None:
    src = SRC.replace("\treturn w->ops->online(w);", "\tmutex_unlock(&widget_mutex);\n\treturn w->ops->online(w);")
    assert "widget_ops.online" not in run(src)
