"""Which functions need their caller's RCU read section (facts/rcuneeds.py), on a small
made-up subsystem written the way the tree writes such accessors."""

from __future__ import annotations

from reviewbot.facts.extract import definitions
from reviewbot.facts.knowledge import load_knowledge
from reviewbot.facts.rcuneeds import (
    SCHED,
    call_need,
    condition_alternatives,
    describe_need,
    rcu_needs,
    rcu_openers,
)

HEADER = """
#ifdef CONFIG_PROVE_RCU
#define widget_owner_check(w, __c)					\\
	rcu_dereference_check((w)->owner,				\\
		rcu_read_lock_sched_held() ||				\\
		lockdep_is_held(&widget_mutex) ||			\\
		lockdep_is_held(&(w)->lock) ||				\\
		((w)->flags & PF_EXITING) || (__c))
#else
#define widget_owner_check(w, __c)	rcu_dereference((w)->owner)
#endif

static inline struct owner *widget_owner(struct widget *w)
{
	return widget_owner_check(w, false);
}

static inline bool widget_owner_is_root(struct widget *w)
{
	return widget_owner_check(w, true) == &root_owner;
}

static inline struct gadget *widget_gadget(struct widget *w)
{
	return rcu_dereference_check(w->gadget, percpu_ref_is_dying(&w->ref));
}
"""

SOURCE = """
int widget_owner_id(struct widget *w)
{
	if (!w)
		return -1;
	return widget_owner(w)->id;
}

int widget_owner_id_locked(struct widget *w)
{
	int id;

	rcu_read_lock();
	id = widget_owner(w)->id;
	rcu_read_unlock();
	return id;
}

void widget_detach(struct widget *w)
{
	spin_lock(&w->lock);
	widget_owner(w)->count--;
	spin_unlock(&w->lock);
}

int widget_owner_id_if(struct widget *w)
{
	if (w->attached)
		return widget_owner(w)->id;
	return 0;
}

struct owner *widget_next(struct widget *w)
{
	return rcu_dereference(w->next);
}

struct widget *widget_next_child(struct widget *pos, struct widget *parent)
{
	RCU_LOCKDEP_WARN(!rcu_read_lock_held() && !lockdep_is_held(&widget_mutex),
			"widget_mutex or RCU read lock required");
	return list_entry_rcu(pos->sibling.next, struct widget, sibling);
}

void widget_count(struct widget *w)
{
	WARN_ON_ONCE(!w->count);
	w->count--;
}
"""

STUB = """
static inline struct owner *widget_owner(struct widget *w)
{
	return NULL;
}
"""


def _needs(*sources: tuple[str, str]) -> dict[str, list[object]]:
    defs = [d for path, text in sources for d in definitions(text, path)]
    by_name: dict[str, list[int]] = {}
    for i, d in enumerate(defs):
        by_name.setdefault(d.name, []).append(i)
    return rcu_needs(defs, lambda name, path: by_name.get(name, []), load_knowledge().lock_for)


def test_condition_names_the_contexts_that_serve_instead_of_rcu() -> None:
    cond = ("rcu_read_lock_sched_held() || lockdep_is_held(&widget_mutex) || "
            "lockdep_is_held(&(w)->lock) || ((w)->flags & PF_EXITING) || (__c)")
    assert condition_alternatives(cond, ("w", "__c")) == {SCHED, "widget_mutex", "$0->lock", "?1"}
    # a term the analysis cannot name may be true anywhere: no requirement
    assert condition_alternatives("percpu_ref_is_dying(&w->ref)", ("w",)) is None
    assert condition_alternatives("false", ("w",)) == set()


def test_needs_follow_calls_and_take_the_lockdep_definition() -> None:
    needs = _needs(("include/linux/widget.h", HEADER), ("lib/widget.c", SOURCE))
    alts, via = needs["widget_owner"]
    # the PROVE_RCU definition (the documented contract) wins over the plain one, and a
    # `false` condition argument adds nothing
    assert sorted(alts) == sorted([SCHED, "widget_mutex", "$0->lock"])  # type: ignore[arg-type]
    assert via == ["widget_owner_check", "rcu_dereference_check"]
    # a caller's early return does not hide the read on its main path
    assert needs["widget_owner_id"][1][:1] == ["widget_owner"]
    assert needs["widget_next"] == [[], ["rcu_dereference"]]
    # an assertion states the contract too, with the lock it also accepts
    assert needs["widget_next_child"] == [["widget_mutex"], ["RCU_LOCKDEP_WARN"]]
    # a body with its own section, a read under its own lock, a read under a condition,
    # a `true` condition and an unnameable one: no need for the caller
    for name in ("widget_owner_id_locked", "widget_detach", "widget_owner_id_if", "widget_count",
                 "widget_owner_is_root", "widget_gadget"):
        assert name not in needs, name


def test_a_stub_definition_does_not_cancel_the_need() -> None:
    needs = _needs(("include/linux/widget.h", HEADER), ("include/linux/widget_stub.h", STUB))
    assert "widget_owner" in needs


def test_call_site_terms_and_description() -> None:
    needs = _needs(("include/linux/widget.h", HEADER))

    def known(name: str) -> tuple[tuple[str, ...], list[str]] | None:
        found = needs.get(name)
        return (tuple(found[0]), list(found[1])) if found else None  # type: ignore[arg-type]
    need = call_need("widget_owner", ["dev->widget"], (), known)
    assert need is not None
    assert "dev->widget->lock" in need[0] and "widget_mutex" in need[0]
    # the caller's condition argument becomes the lock it names
    need = call_need("widget_owner_check", ["w", "lockdep_is_held(&other_lock)"], (), known)
    assert need is not None and "other_lock" in need[0]
    assert call_need("widget_owner_check", ["w", "true"], (), known) is None
    text = describe_need("widget_owner", (("widget_mutex", SCHED), ["widget_owner_check", "rcu_dereference_check"]))
    assert text == ("widget_owner() -> widget_owner_check() -> rcu_dereference_check(), which also "
                    "accepts widget_mutex or preemption disabled")


OPENERS = """
bool widget_trylock_owner(struct widget *w)
{
	rcu_read_lock();
	if (!atomic_read(&w->moving))
		return true;
	rcu_read_unlock();
	return false;
}

void widget_lock_owner(struct widget *w)
{
	rcu_read_lock();
	spin_lock(&w->lock);
}

void widget_lock_owner_of(struct gadget *g)
{
	widget_lock_owner(g->widget);
}

int widget_read_owner(struct widget *w)
{
	int id;

	if (!w)
		return -1;
	rcu_read_lock();
	id = rcu_dereference(w->owner)->id;
	rcu_read_unlock();
	return id;
}

int widget_balanced(struct widget *w)
{
	int id = -1;

	rcu_read_lock();
	if (w->owner) {
		id = 1;
		rcu_read_unlock();
		return id;
	}
	rcu_read_unlock();
	return id;
}
"""


def test_openers_return_inside_the_section_they_opened() -> None:
    defs = list(definitions(OPENERS, "lib/widget.c"))
    by_name: dict[str, list[int]] = {}
    for i, d in enumerate(defs):
        by_name.setdefault(d.name, []).append(i)
    found = rcu_openers(defs, lambda name, path: by_name.get(name, []))
    # a conditional opener, one that never closes, and a thin wrapper of one; not a body
    # that returns early before its section, nor one that closes on every path
    assert found == ["widget_lock_owner", "widget_lock_owner_of", "widget_trylock_owner"]
