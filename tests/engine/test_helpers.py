"""Reference helpers: functions that hand out a reference count as acquires in callers."""

from __future__ import annotations

from reviewbot.engine.cfunc import FunctionView, views_from_text
from reviewbot.engine.helpers import MAX_DEPTH, reference_helpers
from reviewbot.engine.refpaths import run_paths

PARAMS = {
    "pairs": [{
        "name": "css",
        "acquire": [{"call": "css_get", "arg": 0}, {"call": "css_tryget", "arg": 0, "conditional": True},
                    {"call": "get_mem_cgroup_from_mm", "returns": True}],
        "release": [{"call": "css_put", "arg": 0}, {"call": "mem_cgroup_put", "arg": 0}],
    }],
    "transfer": {"store": True, "return": True},
}

CALLER = """int caller(struct mm_struct *mm)
{
\tstruct mem_cgroup *memcg = %s(mm);

\tif (fatal_signal_pending(current))
\t\treturn -EINTR;
\tcss_put(&memcg->css);
\treturn 0;
}
"""


def helper(name: str, callee: str) -> str:
    return f"static struct mem_cgroup *{name}(struct mm_struct *mm)\n{{\n\treturn {callee}(mm);\n}}\n"


def views(src: str) -> dict[str, FunctionView]:
    return {v.name: v for v in views_from_text("mm/x.c", src)}


def test_helper_of_a_helper_reports_the_root_acquire() -> None:
    fns = views(helper("lookup", "get_mem_cgroup_from_mm") + helper("target", "lookup") + CALLER % "target")
    found = reference_helpers(PARAMS, list(fns.values()))
    assert found == {"lookup": ("css", "get_mem_cgroup_from_mm"), "target": ("css", "get_mem_cgroup_from_mm")}
    (hit,) = run_paths(PARAMS, fns["caller"], found)
    assert "taken by target() (which returns the reference get_mem_cgroup_from_mm() gave it)" in (
        hit.captures["detail"]
    )


def test_untouched_helpers_count_only_when_a_touched_function_reaches_them() -> None:
    fns = views(helper("lookup", "get_mem_cgroup_from_mm") + helper("unused", "get_mem_cgroup_from_mm")
                + CALLER % "lookup")
    found = reference_helpers(PARAMS, [fns["caller"]], [fns["lookup"], fns["unused"]])
    assert found == {"lookup": ("css", "get_mem_cgroup_from_mm")}
    # Without the file's other functions (no tree) the caller's lookup is opaque.
    assert reference_helpers(PARAMS, [fns["caller"]]) == {}


def test_reachability_stops_after_max_depth() -> None:
    chain = [f"h{i}" for i in range(MAX_DEPTH + 1)]
    src = helper(chain[-1], "get_mem_cgroup_from_mm")
    for name, callee in zip(chain, chain[1:], strict=False):
        src += helper(name, callee)
    fns = views(src + CALLER % chain[0])
    untouched = [fns[n] for n in chain]
    found = reference_helpers(PARAMS, [fns["caller"]], untouched)
    # The deepest helper is MAX_DEPTH + 1 calls away from the caller: not followed, so
    # nothing above it is known to return a reference either.
    assert found == {}
    shallow = views(helper("h1", "get_mem_cgroup_from_mm") + helper("h0", "h1") + CALLER % "h0")
    assert set(reference_helpers(PARAMS, [shallow["caller"]], [shallow["h0"], shallow["h1"]])) == {"h0", "h1"}


def test_functions_the_rule_names_and_plain_lookups_are_not_helpers() -> None:
    src = (
        "struct mem_cgroup *get_mem_cgroup_from_mm(struct mm_struct *mm)\n{\n"
        "\tstruct mem_cgroup *memcg = mem_cgroup_from_task(mm->owner);\n\n"
        "\tif (!css_tryget(&memcg->css))\n\t\treturn NULL;\n\treturn memcg;\n}\n"
        "static struct mem_cgroup *peek(struct mm_struct *mm)\n{\n"
        "\treturn mem_cgroup_from_task(mm->owner);\n}\n"
        + CALLER % "get_mem_cgroup_from_mm"
        + CALLER.replace("caller", "caller2") % "peek"
    )
    fns = views(src)
    found = reference_helpers(
        PARAMS, [fns["caller"], fns["caller2"]], [fns["get_mem_cgroup_from_mm"], fns["peek"]]
    )
    assert found == {}
    assert run_paths(PARAMS, fns["caller2"], found) == []


def test_recursion_is_not_a_helper_of_itself() -> None:
    src = (
        "static struct mem_cgroup *walk(struct mem_cgroup *memcg)\n{\n"
        "\tif (!memcg)\n\t\treturn walk(root_mem_cgroup);\n\treturn memcg;\n}\n"
    )
    fns = views(src + CALLER % "walk")
    assert reference_helpers(PARAMS, [fns["caller"]], [fns["walk"]]) == {}
