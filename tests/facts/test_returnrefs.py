"""Functions that return a reference to their caller (facts/returnrefs.py), and what the
refcount engine makes of a call of one."""

from __future__ import annotations

from typing import Any

from reviewbot.engine.cfunc import views_from_text
from reviewbot.engine.refpaths import run_paths
from reviewbot.facts.derive import derive
from reviewbot.facts.extract import calls_of, definitions
from reviewbot.facts.knowledge import load_knowledge
from reviewbot.facts.returnrefs import return_info
from reviewbot.facts.tables import Facts

SOURCE = """\
struct mem_cgroup *group_of(struct mem_cgroup *memcg)
{
\tstruct mem_cgroup *group = NULL;

\tfor (; memcg; memcg = parent_mem_cgroup(memcg))
\t\tif (READ_ONCE(memcg->oom_group))
\t\t\tgroup = memcg;
\tif (group)
\t\tcss_get(&group->css);
\treturn group;
}

static struct task_struct *task_of_inode(struct inode *inode)
{
\treturn get_pid_task(proc_pid(inode), PIDTYPE_PID);
}

struct task_struct *task_of_file(struct file *f)
{
\tstruct task_struct *t;

\tt = task_of_inode(file_inode(f));
\tif (!t)
\t\treturn ERR_PTR(-ESRCH);
\treturn t;
}

struct mem_cgroup *root_or_mm(struct mm_struct *mm)
{
\tif (!mm)
\t\treturn root_mem_cgroup;
\treturn get_mem_cgroup_from_mm(mm);
}

struct mem_cgroup *kept_in_mm(struct mm_struct *mm)
{
\tstruct mem_cgroup *memcg = get_mem_cgroup_from_mm(mm);

\tmm->memcg = memcg;
\treturn memcg;
}

struct mem_cgroup *sometimes(struct mem_cgroup *memcg, bool get)
{
\tif (get)
\t\treturn get_mem_cgroup_from_mm(current->mm);
\treturn memcg->parent;
}

struct mem_cgroup *step(struct mem_cgroup *root, struct mem_cgroup *prev)
{
\tstruct mem_cgroup *next = next_of(root);

\tif (prev)
\t\tcss_put(&prev->css);
\tif (next && !css_tryget(&next->css))
\t\tnext = NULL;
\treturn next;
}

struct mem_cgroup *same(struct mem_cgroup *memcg)
{
\tcss_get(&memcg->css);
\treturn memcg;
}

struct node *node_of(struct tree *t)
{
\tstruct node *n = first_node(t);

\tif (n && !css_tryget(&n->memcg->css))
\t\tn = NULL;
\treturn n;
}

struct item *item_new(gfp_t gfp)
{
\tstruct item *it = kzalloc(sizeof(*it), gfp);

\tif (!it)
\t\treturn NULL;
\tit->x = 1;
\treturn it;
}

struct item *item_new_linked(struct list_head *head)
{
\tstruct item *it = kzalloc(sizeof(*it), GFP_KERNEL);

\tif (!it)
\t\treturn NULL;
\tlist_add(&it->node, head);
\treturn it;
}

struct cgroup *lock_live(struct kernfs_node *kn)
{
\tstruct cgroup *cgrp = kn->priv;

\tif (!cgroup_tryget(cgrp))
\t\treturn NULL;
\tmutex_lock(&cgroup_mutex);
\treturn cgrp;
}

void unlock_live(struct kernfs_node *kn)
{
\tstruct cgroup *cgrp = kn->priv;

\tmutex_unlock(&cgroup_mutex);
\tcgroup_put(cgrp);
}

int write_a(struct kernfs_open_file *of)
{
\tstruct cgroup *cgrp;

\tcgrp = lock_live(of->kn);
\tif (!cgrp)
\t\treturn -ENODEV;
\tunlock_live(of->kn);
\treturn 0;
}

int write_b(struct kernfs_open_file *of)
{
\tstruct cgroup *cgrp;

\tcgrp = lock_live(of->kn);
\tif (!cgrp)
\t\treturn -ENODEV;
\tcgrp->flags = 0;
\tunlock_live(of->kn);
\treturn 0;
}

int show(struct seq_file *m, struct mem_cgroup *memcg)
{
\tstruct mem_cgroup *group;

\tgroup = group_of(memcg);
\tif (group)
\t\tmem_cgroup_put(group);
\treturn 0;
}
"""


def facts_of(src: str = SOURCE) -> Facts:
    return derive(list(definitions(src, "mm/x.c")), load_knowledge())


def test_functions_whose_every_return_is_a_reference() -> None:
    f = facts_of()
    assert f.returned_ref("group_of") == ["css", "css_get"]  # a get on the returned local
    assert f.returned_ref("task_of_inode") == ["task", "get_pid_task"]  # a kernel.yaml lookup
    # A wrapper of a wrapper, with an error pointer on the other path.
    assert f.returned_ref("task_of_file") == ["task", "task_of_inode", "get_pid_task"]
    # A global (the never-freed root) on one path is nothing a caller could put.
    assert f.returned_ref("root_or_mm") == ["css", "get_mem_cgroup_from_mm"]
    assert f.returned_ref("item_new") == ["memory", "kzalloc"]


def test_borrowed_stored_linked_or_stepped_returns_are_not_references() -> None:
    f = facts_of()
    assert f.returned_ref("kept_in_mm") == []  # the reference is the mm's
    assert f.returned_ref("sometimes") == []  # a field returned on another path
    assert f.returned_ref("step") == []  # puts its parameter: an iterator step
    assert f.returned_ref("same") == []  # the parameter handed back: a get helper's job
    assert f.returned_ref("node_of") == []  # the reference is n->memcg's, not n's
    assert f.returned_ref("item_new_linked") == []  # the list owns it


def test_callers_that_dispose_through_a_partner_keep_the_fact_off() -> None:
    # Neither caller puts what lock_live() returns: unlock_live(kn) does, reached from kn.
    f = facts_of()
    assert f.returned_ref("lock_live") == ["", "css", "cgroup_tryget"]
    # group_of()'s caller puts the result: the plain contract stands.
    assert f.returned_ref("group_of")[0] == "css"


def test_a_result_released_as_another_object_is_not_that_reference() -> None:
    # new_file() returns kzalloc()ed memory, but its caller fput()s it: a file, not memory.
    src = ("struct file *new_file(gfp_t gfp)\n{\n\tstruct file *f = kzalloc(sizeof(*f), gfp);\n\n"
           "\tif (!f)\n\t\treturn ERR_PTR(-ENOMEM);\n\treturn f;\n}\n\n"
           "int opener(void)\n{\n\tstruct file *f;\n\n\tf = new_file(GFP_KERNEL);\n"
           "\tif (IS_ERR(f))\n\t\treturn PTR_ERR(f);\n\tfput(f);\n\treturn 0;\n}\n")
    assert facts_of(src).returned_ref("new_file") == ["", "memory", "kzalloc"]


def test_a_patch_changing_a_partnered_function_keeps_it_partnered() -> None:
    base = facts_of()
    changed = ("struct cgroup *lock_live(struct kernfs_node *kn)\n{\n\tstruct cgroup *cgrp = kn->priv;\n\n"
               "\tif (!cgroup_tryget(cgrp))\n\t\treturn ERR_PTR(-ENODEV);\n\treturn cgrp;\n}\n")
    top = derive(list(definitions(changed, "mm/x.c")), load_knowledge(), base=base)
    assert top.returned_ref("lock_live")[0] == ""


def test_return_info_and_call_targets() -> None:
    body = "\tstruct x *p = (struct x *)find(a);\n\tq = lookup(b);\n\tif (q == other(c))\n\t\treturn p;\n\treturn NULL;\n"
    returned, assigned = return_info(body, "struct x *")
    assert returned == ("p", "NULL")
    assert ("p", "find") in assigned and ("q", "lookup") in assigned
    assert return_info(body, "int") == ((), ())  # only pointer-returning functions
    assert [(c.name, c.target) for c in calls_of(body)] == [("find", "p"), ("lookup", "q"), ("other", "")]


def test_a_result_released_by_an_unknown_free_helper_is_not_claimed() -> None:
    # pid_new()'s caller frees with pid_free(), which the facts cannot read (an RCU
    # callback does the kfree): the caller's release would not be seen, so no fact.
    src = ("struct pid *pid_new(gfp_t gfp)\n{\n\tstruct pid *p = kzalloc(sizeof(*p), gfp);\n\n"
           "\tif (!p)\n\t\treturn NULL;\n\treturn p;\n}\n\n"
           "int forker(void)\n{\n\tstruct pid *p;\n\n\tp = pid_new(GFP_KERNEL);\n"
           "\tif (!p)\n\t\treturn -ENOMEM;\n\tif (fail())\n\t\tpid_free(p);\n\treturn 0;\n}\n")
    assert facts_of(src).returned_ref("pid_new")[0] == ""


REFS: dict[str, Any] = {"objects": ["css", "task", "memory", "percpu_ref", "kref"],
                        "report": ["leak", "double-release", "use-after-release"]}


def engine_hits(body: str, facts: Facts, params: dict[str, Any] = REFS) -> list[str]:
    src = f"int f(struct inode *inode, struct mem_cgroup *memcg)\n{{\n{body}\n}}\n"
    (view,) = views_from_text("fs/x.c", src)
    return [h.captures["detail"] for h in run_paths(params, view, facts=facts)]


def test_the_engine_counts_a_learnt_lookup_as_an_acquire() -> None:
    f = facts_of()
    leak = "\tstruct task_struct *t = task_of_inode(inode);\n\n\tif (!t)\n\t\treturn -ESRCH;\n" \
           "\tif (t->flags)\n\t\treturn -EINVAL;\n\tput_task_struct(t);\n\treturn 0;"
    found = engine_hits(leak, f)
    assert len(found) == 1 and "task_of_inode() (which returns a reference: get_pid_task())" in found[0]
    assert engine_hits(leak, Facts(revision="", digest="")) == []  # unknown without the facts
    fixed = leak.replace("\t\treturn -EINVAL;\n", "\t\tgoto out;\n").replace(
        "\tput_task_struct(t);", "out:\n\tput_task_struct(t);")
    assert engine_hits(fixed, f) == []
    double = leak.replace("\t\treturn -EINVAL;\n", "\t\tput_task_struct(t);\n")
    assert any("second time" in h for h in engine_hits(double, f))
    after = "\tstruct task_struct *t = task_of_inode(inode);\n\n\tif (!t)\n\t\treturn -ESRCH;\n" \
            "\tput_task_struct(t);\n\treturn t->flags;"
    assert any("after" in h for h in engine_hits(after, f))


def test_a_partnered_lookup_is_not_an_acquire() -> None:
    f = facts_of()
    body = "\tstruct cgroup *c = lock_live(inode->kn);\n\n\tif (!c)\n\t\treturn -ENODEV;\n\treturn 0;"
    assert engine_hits(body, f) == []


def test_a_learnt_constructor_leaks_only_on_an_error_exit() -> None:
    f = facts_of()
    body = "\tstruct item *it = item_new(GFP_KERNEL);\n\n\tif (!it)\n\t\treturn -ENOMEM;\n" \
           "\tif (memcg->x)\n\t\treturn -EBUSY;\n\tif (memcg->y)\n\t\tadopt(it);\n\treturn 0;"
    found = engine_hits(body, f)
    assert len(found) == 1 and "returns at line 8" in found[0]  # the -EBUSY exit, not `return 0`


def test_an_error_code_of_the_lookup_holds_nothing() -> None:
    f = facts_of()
    body = "\tstruct task_struct *t;\n\tint ret;\n\n\tt = task_of_file(inode->file);\n" \
           "\tret = PTR_ERR_OR_ZERO(t);\n\tif (ret)\n\t\treturn ret;\n\tput_task_struct(t);\n\treturn 0;"
    assert engine_hits(body, f) == []


def test_an_embedded_counter_releases_the_object_a_lookup_returned() -> None:
    src = ("struct ctx *ctx_find(struct table *t, int id)\n{\n\tstruct ctx *c = lookup(t, id);\n\n"
           "\tif (c)\n\t\tkref_get(&c->kref);\n\treturn c;\n}\n\n"
           "int user(struct table *t)\n{\n\tstruct ctx *c = ctx_find(t, 1);\n\n\tif (c)\n"
           "\t\tkref_put(&c->kref, ctx_release);\n\treturn 0;\n}\n")
    f = facts_of(src)
    assert f.returned_ref("ctx_find") == ["kref", "kref_get"]
    body = "\tstruct ctx *c = ctx_find(inode->t, 1);\n\n\tif (!c)\n\t\treturn 0;\n" \
           "\tkref_put(&c->kref, ctx_release);\n\treturn 0;"
    assert engine_hits(body, f) == []
    assert len(engine_hits(body.replace("\tkref_put(&c->kref, ctx_release);\n", ""), f)) == 1


ACCESSOR_SOURCE = """\
static inline struct widget_cgroup *css_widget(struct cgroup_subsys_state *css)
{
\treturn css ? container_of(css, struct widget_cgroup, css) : NULL;
}

static struct widget_cgroup *current_widget_cgroup(void)
{
\treturn css_widget(task_get_css(current, widget_cgrp_id));
}

static struct widget_cgroup *parent_widget(struct widget_cgroup *wc)
{
\treturn css_widget(wc->css.parent);
}

int widget_try_charge(struct widget_cgroup **out, int amount)
{
\tstruct widget_cgroup *wc = current_widget_cgroup();
\tint ret = 0;

\tif (!widget_has_room(wc, amount))
\t\tret = -EAGAIN;
\telse
\t\twidget_add(wc, amount);
\t*out = wc;
\treturn ret;
}

int widget_try_charge_fixed(struct widget_cgroup **out, int amount)
{
\tstruct widget_cgroup *wc = current_widget_cgroup();

\tif (!widget_has_room(wc, amount)) {
\t\tcss_put(&wc->css);
\t\treturn -EAGAIN;
\t}
\twidget_add(wc, amount);
\t*out = wc;
\treturn 0;
}
"""


def test_a_container_accessor_passes_the_reference_on() -> None:
    f = facts_of(ACCESSOR_SOURCE)
    assert f.returned_ref("current_widget_cgroup")[:3] == ["css", "css_widget", "task_get_css"]
    assert f.returned_ref("parent_widget") == []  # a field's container: borrowed


def test_a_reference_stored_through_an_out_parameter_is_the_callers_only_on_success() -> None:
    facts = facts_of(ACCESSOR_SOURCE)
    views = {v.name: v for v in views_from_text("kernel/cgroup/widget.c", ACCESSOR_SOURCE)}
    params: dict[str, Any] = {"objects": ["css"], "report": ["leak"]}
    leaks = run_paths(params, views["widget_try_charge"], facts=facts)
    lines = ACCESSOR_SOURCE.splitlines()
    store, exit_line = lines.index("\t*out = wc;") + 1, lines.index("\treturn ret;") + 1
    assert [f.line for f in leaks] == [exit_line]
    assert f"out-parameter at line {store}" in leaks[0].captures["detail"]
    assert run_paths(params, views["widget_try_charge_fixed"], facts=facts) == []
