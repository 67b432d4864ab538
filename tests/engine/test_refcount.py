"""The refcount engine along paths: returns, gotos, loops, trygets, NULL checks, transfers."""

from __future__ import annotations

from typing import Any

import pytest

from reviewbot.engine.cfunc import views_from_text
from reviewbot.engine.refcount import normalize
from reviewbot.engine.refpaths import run_paths

PARAMS: dict[str, Any] = {
    "pairs": [
        {
            "name": "css",
            "acquire": [
                {"call": "css_get", "arg": 0},
                {"call": "css_tryget", "arg": 0, "conditional": True},
                {"call": "get_mem_cgroup_from_mm", "returns": True},
            ],
            "release": [{"call": "css_put", "arg": 0}, {"call": "mem_cgroup_put", "arg": 0}],
        },
        {"name": "rcu", "keyless": True, "acquire": [{"call": "rcu_read_lock"}],
         "release": [{"call": "rcu_read_unlock"}]},
        {"name": "iter", "acquire": [{"call": "mem_cgroup_iter", "returns": True}],
         "release": [{"call": "mem_cgroup_iter", "arg": 1}, {"call": "mem_cgroup_iter_break", "arg": 1}]},
    ],
    "iterators": [{"macro": "for_each_mem_cgroup", "var": 0, "pair": "iter",
                   "break": {"call": "mem_cgroup_iter_break", "arg": 1}}],
    "transfer": {"store": True, "return": True, "consumers": [{"call": "hand_on", "arg": 0}]},
}


def hits(body: str, params: dict[str, Any] = PARAMS) -> list[str]:
    src = f"int f(struct mm_struct *mm, struct obj *o)\n{{\n{body}\n}}\n"
    (view,) = views_from_text("mm/x.c", src)
    return [h.captures["detail"] for h in run_paths(params, view)]


def test_normalize_names_the_object() -> None:
    assert normalize("&memcg->css") == normalize("memcg") == "memcg"
    assert normalize("(&(pos)->css)") == "pos"


def test_leak_on_early_return_and_not_on_released_path() -> None:
    found = hits("\tstruct mem_cgroup *memcg = get_mem_cgroup_from_mm(mm);\n"
                 "\tif (!o)\n\t\treturn -EINVAL;\n\tcss_put(&memcg->css);\n\treturn 0;")
    assert len(found) == 1
    assert "taken by get_mem_cgroup_from_mm() at line 3" in found[0]
    assert "returns at line 5" in found[0]


def test_goto_to_error_label_that_releases_is_fine() -> None:
    assert hits("\tstruct mem_cgroup *memcg = get_mem_cgroup_from_mm(mm);\n"
                "\tif (!o)\n\t\tgoto out;\n\tuse(memcg);\nout:\n\tcss_put(&memcg->css);\n\treturn 0;") == []


def test_goto_past_the_release_leaks_and_names_the_jump() -> None:
    (found,) = hits("\tstruct mem_cgroup *memcg = get_mem_cgroup_from_mm(mm);\n"
                    "\tif (!o)\n\t\tgoto out;\n\tcss_put(&memcg->css);\nout:\n\treturn 0;")
    assert "reached by goto out at line 5" in found


def test_tryget_holds_only_when_it_succeeded() -> None:
    assert hits("\tif (!css_tryget(&o->memcg->css))\n\t\treturn -EBUSY;\n"
                "\tcss_put(&o->memcg->css);\n\treturn 0;") == []
    # Held where the function fails is a leak; held only where it succeeds, and put
    # nowhere, is a reference taken for the caller (cgroup_tryget()-like helpers).
    assert len(hits("\tif (!css_tryget(&o->memcg->css))\n\t\treturn -EBUSY;\n"
                    "\tif (!o->ready)\n\t\treturn -EAGAIN;\n\tcss_put(&o->memcg->css);\n\treturn 0;")) == 1
    assert hits("\tif (!css_tryget(&o->memcg->css))\n\t\treturn -EBUSY;\n\treturn 0;") == []


def test_null_check_drops_the_pointer() -> None:
    assert hits("\tstruct mem_cgroup *m = get_mem_cgroup_from_mm(mm);\n"
                "\tif (!m)\n\t\treturn 0;\n\tmem_cgroup_put(m);\n\treturn 1;") == []


@pytest.mark.parametrize(
    "handoff",
    ["\to->memcg = memcg;\n\treturn 0;", "\treturn memcg ? 1 : 0;", "\thand_on(memcg);\n\treturn 0;",
     "\trcu_assign_pointer(o->memcg, memcg);\n\treturn 0;"],
)
def test_transfers_end_ownership(handoff: str) -> None:
    assert hits(f"\tstruct mem_cgroup *memcg = get_mem_cgroup_from_mm(mm);\n{handoff}") == []


def test_get_for_someone_else_is_not_a_leak_but_get_and_put_elsewhere_is() -> None:
    # css_get(param) with no put anywhere: the function's job is to take a reference.
    assert hits("\tcss_get(&o->memcg->css);\n\treturn 0;") == []
    found = hits("\tcss_get(&o->memcg->css);\n\tif (o->dead)\n\t\treturn -1;\n"
                 "\tcss_put(&o->memcg->css);\n\treturn 0;")
    assert len(found) == 1


def test_double_release() -> None:
    (found,) = hits("\tstruct mem_cgroup *m = get_mem_cgroup_from_mm(mm);\n"
                    "\tcss_put(&m->css);\n\tif (o)\n\t\tcss_put(&m->css);\n\treturn 0;")
    assert "released a second time at line 6" in found


def test_iterator_goto_out_of_walk_leaks_and_break_call_fixes_it() -> None:
    body = ("\tstruct mem_cgroup *memcg;\n\tint ret = 0;\n\tfor_each_mem_cgroup(memcg) {\n"
            "\t\tret = grow(memcg);\n\t\tif (ret) {\n\t\t\t{BREAK}goto unlock;\n\t\t}\n\t}\nunlock:\n\treturn ret;")
    (found,) = hits(body.replace("{BREAK}", ""))
    assert "iter reference on `memcg`" in found and "goto unlock" in found
    assert hits(body.replace("{BREAK}", "mem_cgroup_iter_break(NULL, memcg);\n\t\t\t")) == []


def test_manual_iter_loop_with_assignment_in_condition() -> None:
    assert hits("\tstruct mem_cgroup *memcg = mem_cgroup_iter(NULL, NULL, NULL);\n\tdo {\n"
                "\t\twork(memcg);\n\t} while ((memcg = mem_cgroup_iter(NULL, memcg, NULL)) != NULL);\n"
                "\treturn 0;") == []


def test_rcu_keyless_pair() -> None:
    (found,) = hits("\trcu_read_lock();\n\tif (!o)\n\t\treturn 0;\n\trcu_read_unlock();\n\treturn 1;")
    assert "rcu reference on rcu" in found or "rcu reference" in found


def test_partial_view_end_is_not_a_return() -> None:
    from reviewbot.diff import parse_diff
    from reviewbot.engine.cfunc import views_from_hunks

    diff = ("--- a/mm/x.c\n+++ b/mm/x.c\n@@ -10,3 +10,4 @@ int f(void)\n"
            " \trcu_read_lock();\n+\tx = 1;\n \ty = 2;\n \tz = 3;\n")
    (fd,) = parse_diff(diff)
    (view,) = views_from_hunks(fd)
    assert view.partial
    assert run_paths(PARAMS, view) == []


def test_sparse_lock_annotation_is_the_function_contract() -> None:
    src = ("int f(struct obj *o) __acquires(rcu)\n{\n\trcu_read_lock();\n\treturn 0;\n}\n"
           "int g(struct obj *o)\n{\n\trcu_read_lock();\n\treturn 0;\n}\n")
    found = [h.captures["detail"] for v in views_from_text("mm/x.c", src) for h in run_paths(PARAMS, v)]
    assert len(found) == 1 and "g() returns" in found[0]


def test_call_arguments_in_a_store_are_not_stored() -> None:
    # blkg->parent = lookup(blkcg): the reference on blkcg is not handed on by this store.
    assert len(hits("\tif (!css_tryget(&o->css))\n\t\treturn -1;\n"
                    "\to->parent = lookup(o);\n\tif (o->parent) {\n\t\tcss_put(&o->css);\n"
                    "\t\treturn 0;\n\t}\n\treturn -ENOENT;")) == 1


USES: dict[str, Any] = {"objects": ["css", "task", "memory"], "report": ["use-after-release"]}


def test_an_object_used_after_the_reference_this_function_took_is_released() -> None:
    (detail,) = hits("\tstruct mem_cgroup *m = get_mem_cgroup_from_mm(mm);\n"
                     "\tmem_cgroup_put(m);\n\treturn m->id.id;", USES)
    assert "`m` is dereferenced (m->id) at line 5 after its reference was released at line 4" in detail
    assert hits("\tstruct mem_cgroup *m = get_mem_cgroup_from_mm(mm);\n"
                "\tint id = m->id.id;\n\tmem_cgroup_put(m);\n\treturn id;", USES) == []


def test_a_second_reference_or_a_new_value_keeps_the_name_usable() -> None:
    assert hits("\tget_task_struct(o->t);\n\tget_task_struct(o->t);\n\tput_task_struct(o->t);\n"
                "\twake_up_process(o->t);\n\tput_task_struct(o->t);\n\treturn 0;", USES) == []
    assert hits("\tstruct obj *p = kmalloc(8, GFP_KERNEL);\n\tkfree(p);\n\tp = o;\n"
                "\treturn p->x;", USES) == []


def test_freed_memory_is_gone_whoever_allocated_it() -> None:
    (detail,) = hits("\tkfree(o);\n\treturn o->x;", USES)
    assert "`o` is dereferenced (o->x)" in detail
    # A put of a reference the function did not take may leave others alive.
    assert hits("\tput_task_struct(o->t);\n\treturn o->t->pid;", USES) == []


def test_a_put_helper_from_the_facts_releases_like_the_put() -> None:
    from reviewbot.facts.derive import derive
    from reviewbot.facts.extract import definitions
    from reviewbot.facts.knowledge import load_knowledge

    facts = derive(list(definitions("void obj_put(struct obj *o)\n{\n\tkfree(o);\n}\n", "x.c")),
                   load_knowledge())
    src = "int f(struct obj *o)\n{\n\tobj_put(o);\n\treturn o->x;\n}\n"
    (view,) = views_from_text("mm/x.c", src)
    assert run_paths(USES, view, facts=facts)
    assert run_paths(USES, view) == []


def test_a_reference_handed_to_a_callee_that_keeps_it_on_some_paths_only() -> None:
    from reviewbot.engine.consumers import partial_consumers
    from reviewbot.engine.refspec import config_for

    src = ("static void attach(struct obj *o, struct mem_cgroup *m)\n{\n\tif (!o->ready)\n\t\treturn;\n"
           "\to->memcg = m;\n}\n\n"
           "int f(struct obj *o, struct mem_cgroup *m)\n{\n\tcss_get(&m->css);\n\tattach(o, m);\n\treturn 0;\n}\n")
    views = views_from_text("mm/x.c", src)
    config, _ = config_for(PARAMS)
    found = partial_consumers(config, views, None)
    assert [(c.index, c.keeps_at) for c in found["attach"]] == [(1, (4,))]
    (detail,) = [r.captures["detail"] for r in run_paths(PARAMS, views[1], partial=found)]
    assert "handed to attach() at line 11" in detail and "returns at line(s) 4" in detail
    always = src.replace("\tif (!o->ready)\n\t\treturn;\n", "")
    views = views_from_text("mm/x.c", always)
    assert partial_consumers(config, views, None) == {}


def test_a_put_where_the_tryget_failed_is_an_extra_put() -> None:
    (found,) = hits("\tif (!css_tryget(&o->css)) {\n\t\tcss_put(&o->css);\n\t\treturn -ENODEV;\n\t}\n"
                    "\tuse(o);\n\tcss_put(&o->css);\n\treturn 0;")
    assert "on the path where css_tryget() failed at line 3" in found
    # Failing leaves the caller's pointer as good as it was: reading it is not a use after put.
    assert hits("\tif (!css_tryget(&o->css)) {\n\t\tpr_debug(\"%d\", o->id);\n\t\treturn -ENODEV;\n\t}\n"
                "\tuse(o);\n\tcss_put(&o->css);\n\treturn 0;",
                {**PARAMS, "report": ["leak", "double-release", "use-after-release"]}) == []


def test_a_new_value_forgets_a_failed_tryget_of_its_fields() -> None:
    # The next object of a walk is not the one whose tryget failed (slab_attr_store(), 2020).
    assert hits("\tstruct obj *c;\n\tfor (c = first(o); c; c = next(c)) {\n"
                "\t\tif (!css_tryget(&c->css))\n\t\t\tcontinue;\n\t\tuse(c);\n\t\tcss_put(&c->css);\n\t}\n"
                "\treturn 0;") == []


def test_a_bool_answer_from_inside_a_walk_hands_no_reference_on() -> None:
    # `return true` holds the iterator's reference on a local cursor the caller never sees.
    (found,) = hits("\tstruct mem_cgroup *memcg;\n\tfor_each_mem_cgroup(memcg) {\n"
                    "\t\tif (over(memcg))\n\t\t\treturn true;\n\t}\n\treturn false;")
    assert "for_each_mem_cgroup() at line 4" in found


def test_storing_a_member_hands_on_its_container() -> None:
    # container_of() gets ctx back from &ctx->kfc (cgroup_init_fs_context()).
    assert hits("\tstruct ctx *ctx = get_mem_cgroup_from_mm(mm);\n\tif (!ctx)\n\t\treturn -ENOMEM;\n"
                "\to->priv = &ctx->member;\n\treturn 0;") == []


LOOP_TRYGET = (
    "\tstruct mem_cgroup *memcg = o->memcg;\n\tstruct mem_cgroup *found = NULL;\n\n"
    "\tfor (; memcg != root_mem_cgroup; memcg = parent_mem_cgroup(memcg)) {\n"
    "\t\tif (css_tryget(&memcg->css)) {\n\t\t\tfound = memcg;\n\t\t\tbreak;\n\t\t}\n\t}\n"
    "@@AFTER@@\thand_on(found);\n\treturn 0;"
)


def test_loop_condition_still_holds_after_break() -> None:
    # Left by `break`, the loop's last test (memcg != root) still holds: the return for
    # the root is a path the tryget never reaches.
    assert hits(LOOP_TRYGET.replace("@@AFTER@@", "\tif (memcg == root_mem_cgroup)\n\t\treturn -ENOENT;\n")) == []
    # A test of something else after the loop leaks on the break path.
    (found,) = hits(LOOP_TRYGET.replace("@@AFTER@@", "\tif (!o->online)\n\t\treturn -ENOENT;\n"))
    assert "css_tryget()" in found


def test_loop_operand_changed_in_the_body_forgets_the_test() -> None:
    # The body moves memcg after its test: the test no longer says where it points.
    body = LOOP_TRYGET.replace("\t\t\tfound = memcg;\n", "\t\t\tfound = memcg;\n\t\t\tmemcg = root_mem_cgroup;\n")
    (found,) = hits(body.replace("@@AFTER@@", "\tif (memcg == root_mem_cgroup)\n\t\treturn -ENOENT;\n"))
    assert "css_tryget()" in found
