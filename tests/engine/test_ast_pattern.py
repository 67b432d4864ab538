"""ast predicates and pattern combinators on small hand-made patches."""

from __future__ import annotations

from pathlib import Path

from reviewbot.config import Settings
from reviewbot.engine.astq import run_ast
from reviewbot.engine.cfunc import views_from_text
from reviewbot.engine.fingerprint import fingerprint, normalize_message
from reviewbot.engine.loader import Rule, load_rule
from reviewbot.engine.matchers import run_pattern
from reviewbot.engine.stage import patch_context
from reviewbot.engine.types import PatchContext
from reviewbot.model import Message, Patch, Subject

REPO = Path(__file__).resolve().parent.parent.parent


def rule(rule_id: str) -> Rule:
    return load_rule(REPO / "rules" / f"{rule_id}.yaml")


def ast_hits(rule_id: str, src: str) -> list[dict[str, str]]:
    r = rule(rule_id)
    return [h.captures for v in views_from_text("mm/memcontrol.c", src)
            for h in run_ast(r.params, v, PatchContext(1, []), r.id)]


def make_patch(diff: str) -> Patch:
    subject = Subject("[PATCH] x", "x", (), 1, True, 1, 1, True, False, False, False, True)
    msg = Message("m@x", subject, "A", "a@x", None, None, (), "", "", diff, ())
    return Patch(msg, 1, (), None)


def test_inside_loop_with_and_without_guard() -> None:
    loop = ("void a(struct cgroup_taskset *tset)\n{\n\tcgroup_taskset_for_each(t, css, tset) {\n"
            "{GUARD}\t\tmm_update_owner(t);\n\t}\n}\n")
    (hit,) = ast_hits("per-mm-update-in-thread-loop", loop.replace("{GUARD}", ""))
    assert hit["var"] == "t" and hit["loop"] == "cgroup_taskset_for_each"
    guarded = loop.replace("{GUARD}", "\t\tif (!thread_group_leader(t))\n\t\t\tcontinue;\n")
    assert ast_hits("per-mm-update-in-thread-loop", guarded) == []
    # Not about the loop's task: nothing to say.
    assert ast_hits("per-mm-update-in-thread-loop", loop.replace("{GUARD}", "").replace(
        "mm_update_owner(t)", "mm_update_owner(other)")) == []


def test_rcu_fields_accessors_and_null_store() -> None:
    src = ("void f(struct mm_struct *mm, struct task_struct *p)\n{\n"
           "\tstruct task_struct *a = mm->owner;\n"
           "\tstruct task_struct *b = rcu_dereference(mm->owner);\n"
           "\tWRITE_ONCE(mm->owner, p);\n\tmm->owner = NULL;\n\tmm->owner = p;\n}\n")
    hits = ast_hits("rcu-pointer-plain-access", src)
    assert [h["access"] for h in hits] == ["mm->owner", "mm->owner"]


def test_css_get_under_rcu_needs_a_load_in_the_same_section() -> None:
    base = ("void f(struct obj_cgroup *objcg, struct mem_cgroup *pinned)\n{\n"
            "\tstruct mem_cgroup *memcg;\n\n\trcu_read_lock();\n\tmemcg = {LOAD};\n"
            "\tcss_get(&memcg->css);\n\trcu_read_unlock();\n}\n")
    (hit,) = ast_hits("css-get-under-rcu", base.replace("{LOAD}", "obj_cgroup_memcg(objcg)"))
    assert hit["source"] == "obj_cgroup_memcg(objcg)"
    assert ast_hits("css-get-under-rcu", base.replace("{LOAD}", "root_mem_cgroup")) == []
    outside = base.replace("\trcu_read_lock();\n", "").replace("\trcu_read_unlock();\n", "")
    assert ast_hits("css-get-under-rcu", outside.replace("{LOAD}", "obj_cgroup_memcg(objcg)")) == []


def test_pattern_moved_code_is_preexisting_and_captures_fill_the_message() -> None:
    diff = ("--- a/kernel/exit.c\n+++ b/kernel/exit.c\n@@ -10,3 +10,4 @@ void mm_update_next_owner(struct mm_struct *mm)\n"
            "-\tfor_each_process(g) {\n+\tfor_each_process(g) {\n \t\tcount++;\n \t}\n"
            "+\tdo_each_thread(g, t) {\n")
    ctx = patch_context(make_patch(diff), Settings())
    hits = run_pattern(rule("tasklist-scan-in-hot-path"), ctx)
    assert [(h.captures["scan"], h.preexisting) for _, h in hits] == [
        ("for_each_process", True), ("do_each_thread", False)]


def test_pattern_none_condition_silences() -> None:
    r = rule("v1-attach-assumes-process")
    diff = ("--- a/mm/memcontrol.c\n+++ b/mm/memcontrol.c\n@@ -1,2 +1,3 @@ static void mem_cgroup_attach(struct cgroup_taskset *tset)\n"
            " {\n+\tmm_set_memcg(t->mm, memcg);\n{NONE} }\n")
    ctx = patch_context(make_patch(diff.replace("{NONE}", "")), Settings())
    assert len(run_pattern(r, ctx)) == 1
    silenced = diff.replace("{NONE}", " \tif (cgroup_subsys_on_dfl(memory_cgrp_subsys))\n")
    silenced = silenced.replace("@@ -1,2 +1,3 @@", "@@ -1,3 +1,4 @@")
    assert run_pattern(r, patch_context(make_patch(silenced), Settings())) == []


def test_fingerprint_ignores_line_numbers_and_whitespace() -> None:
    a = fingerprint("r", "mm/x.c", "f", "taken at line 412, returns at line 430", ["\tcss_get(x);"])
    b = fingerprint("r", "mm/x.c", "f", "taken at line 9, returns at line 27", ["  css_get(x);"])
    c = fingerprint("r", "mm/x.c", "g", "taken at line 9, returns at line 27", ["css_get(x);"])
    assert a == b != c
    assert normalize_message("held at line 12") == normalize_message("held at line 1200")


def test_pattern_condition_names_what_an_earlier_one_captured() -> None:
    # charge-current-for-other-owner: a fallback to current under `if (!owner)` is one only
    # when `owner` is one of the function's owner parameters (<<owner>>), not a local.
    r = rule("charge-current-for-other-owner")
    diff = ("--- a/mm/x.c\n+++ b/mm/x.c\n@@ -1,4 +1,6 @@ int f(struct folio *folio, struct mm_struct *mm)\n"
            " int f(struct folio *folio, struct mm_struct *mm)\n {\n"
            "+\tif (!{TESTED})\n+\t\tmemcg = get_mem_cgroup_from_mm(current->mm);\n"
            " \treturn charge_memcg(folio, memcg, GFP_KERNEL);\n }\n")
    local = patch_context(make_patch(diff.replace("{TESTED}", "memcg")), Settings())
    assert [h.captures["how"] for _, h in run_pattern(r, local)] == ["get_mem_cgroup_from_mm(current->mm)"]
    param = patch_context(make_patch(diff.replace("{TESTED}", "mm")), Settings())
    assert run_pattern(r, param) == []
