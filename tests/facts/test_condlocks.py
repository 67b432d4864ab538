"""Helpers that return holding a lock only when they succeed (facts/condlocks.py), and
their callers' walk (engine/condlock.py)."""

from __future__ import annotations

from reviewbot.engine.cfunc import views_from_text
from reviewbot.engine.contextrun import run_context
from reviewbot.facts.condlocks import conditional_keeps
from reviewbot.facts.derive import derive
from reviewbot.facts.extract import definitions
from reviewbot.facts.fieldlocks import is_candidate
from reviewbot.facts.knowledge import load_knowledge
from reviewbot.facts.tables import Facts

HELPERS = """\
void pool_lock(void)
{
\tmutex_lock(&pool_mutex);
}

void pool_unlock(void)
{
\tmutex_unlock(&pool_mutex);
}

struct pool *pool_lock_live(struct pool *p)
{
\tif (!pool_tryget(p))
\t\treturn NULL;
\tpool_lock();
\tif (!p->dead)
\t\treturn p;
\tpool_unlock();
\treturn NULL;
}

bool pool_put_and_lock(struct pool *p, spinlock_t *lock)
{
\tif (atomic_add_unless(&p->ref, -1, 1))
\t\treturn false;
\tspin_lock(lock);
\tif (atomic_dec_and_test(&p->ref))
\t\treturn true;
\tspin_unlock(lock);
\treturn false;
}

int pool_maybe_lock(struct pool *p, bool take)
{
\tif (take)
\t\tmutex_lock(&pool_mutex);
\tif (!p)
\t\treturn -EINVAL;
\treturn 0;
}
"""


def helper_facts() -> Facts:
    k = load_knowledge()
    path = "kernel/pool.c"
    facts = derive(list(definitions(HELPERS, path)), k)
    candidates = []
    for d in definitions(HELPERS, path):
        start = HELPERS.index(f"{d.name}(")
        head = HELPERS.rfind("\n\n", 0, start) + 2 if start else 0
        end = HELPERS.index("\n}\n", start) + 3
        text = HELPERS[head:end]
        body = text[text.index("{\n") + 2:]
        if is_candidate(text[: text.index(d.name)], body):
            candidates.append((d.name, path, text))
    facts.cond_keeps = conditional_keeps(candidates, facts, k)
    return facts


def test_a_lock_held_at_every_success_and_no_failure_is_a_conditional_keep() -> None:
    keeps = helper_facts().cond_keeps
    assert keeps["pool_lock_live"] == {"pool_mutex": ["nonzero", "mutex_lock"]}
    assert keeps["pool_put_and_lock"] == {"$1": ["nonzero", "spin_lock"]}
    assert "pool_maybe_lock" not in keeps  # held on some successes only: not a contract


def _hits(body: str) -> list[str]:
    src = "static int pool_write(struct pool *p, int v)\n{\n\tstruct pool *live;\n\n" + body + "}\n"
    view = views_from_text("kernel/pool_user.c", src, added=frozenset(range(1, 100)))[0]
    return [r.captures["detail"] for r in run_context({"check": "imbalance"}, view, helper_facts())]


def test_a_caller_returning_after_success_without_the_unlock_leaks_the_lock() -> None:
    body = ("\tlive = pool_lock_live(p);\n\tif (!live)\n\t\treturn -ENOENT;\n"
            "\tif (v < 0)\n\t\treturn -EINVAL;\n\tlive->v = v;\n\tpool_unlock();\n\treturn 0;\n")
    (detail,) = _hits(body)
    assert "pool_lock_live(pool_mutex)" in detail and "returns at line 9" in detail


def test_a_caller_that_unlocks_on_every_successful_path_is_balanced() -> None:
    body = ("\tlive = pool_lock_live(p);\n\tif (!live)\n\t\treturn -ENOENT;\n"
            "\tif (v < 0) {\n\t\tpool_unlock();\n\t\treturn -EINVAL;\n\t}\n"
            "\tlive->v = v;\n\tpool_unlock();\n\treturn 0;\n")
    assert not _hits(body)
    tested = ("\tspinlock_t *l = &p->lock;\n\n\tif (!pool_put_and_lock(p, &pool_list_lock))\n\t\treturn 0;\n"
              "\tlist_del(&p->node);\n\tspin_unlock(&pool_list_lock);\n\treturn 1;\n")
    assert not _hits(tested)
    leaky = tested.replace("\tlist_del(", "\tif (v)\n\t\treturn -EBUSY;\n\tlist_del(")
    (detail,) = _hits(leaky)
    assert "pool_put_and_lock(pool_list_lock)" in detail
