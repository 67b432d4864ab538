"""kmemleak reports become findings only for objects allocated in files the series touches."""

from __future__ import annotations

from test_stage import _Run  # the shared stand-in for runner.SuiteRun

from reviewbot.boot import stage
from reviewbot.boot.compare import unique_splats
from reviewbot.boot.console import parse_console
from reviewbot.boot.leaks import LeakSites, definition_line
from reviewbot.config import Settings
from reviewbot.results import BaseBoot, BaseBuild, BootResult, BootSummary, BuildSummary

MEMCONTROL = """\
static struct mem_cgroup *mem_cgroup_alloc(void);

static struct cgroup_subsys_state * __ref
mem_cgroup_css_alloc(struct cgroup_subsys_state *parent_css)
{
	struct mem_cgroup *memcg = mem_cgroup_alloc();
	return &memcg->css;
}

static struct mem_cgroup *mem_cgroup_alloc(void)
{
	return kzalloc(sizeof(struct mem_cgroup), GFP_KERNEL);
}

static int memcg_online_kmem(struct mem_cgroup *memcg,
				struct obj_cgroup *objcg)
{
	mem_cgroup_alloc();
	return 0;
}
"""


def _leak(function: str, size: int = 1024) -> str:
    return (f"unreferenced object 0xffff888004fc7800 (size {size}):\n"
            '  comm "memcg_charge", pid 72, jiffies 4294892871\n'
            "  backtrace:\n"
            "    [<000000004c6b8d0b>] kmalloc_trace+0x26/0x60\n"
            f"    [<0000000075c9c4b5>] {function}+0x6b/0x7c0\n"
            "    [<00000000c3f9b2a4>] cgroup_mkdir+0x27c/0x610\n")


def _console(*leaks: str) -> str:
    return ("# reviewbot-run: memcg_charge\nok 1 anon_charge\n# reviewbot-exit: memcg_charge 0\n"
            "# reviewbot-kmemleak: begin\n" + "".join(leaks) + "# reviewbot-kmemleak: end\n"
            "# reviewbot-guest: done uptime=9.0\n")


def _sites(files: dict[str, str]) -> LeakSites:
    return LeakSites(sorted(files), files.get)


def test_definitions_are_found_in_kernel_style_not_as_prototypes_or_calls() -> None:
    assert definition_line(MEMCONTROL, "mem_cgroup_css_alloc") == 4  # return type on the line before
    assert definition_line(MEMCONTROL, "mem_cgroup_alloc") == 10  # not the prototype on line 1
    assert definition_line(MEMCONTROL, "memcg_online_kmem") == 15  # parameters over two lines
    assert definition_line(MEMCONTROL, "kzalloc") is None  # only called here


def test_leak_allocated_in_a_touched_file_is_a_finding_at_the_definition() -> None:
    report = parse_console(_console(_leak("mem_cgroup_css_alloc")))
    findings = _sites({"mm/memcontrol.c": MEMCONTROL, "Documentation/x.rst": "mem_cgroup_css_alloc(x)\n{"}) \
        .findings(unique_splats(report))
    (finding,) = findings
    assert finding.rule == "boot-kmemleak"
    assert (finding.file, finding.line, finding.function) == ("mm/memcontrol.c", 4, "mem_cgroup_css_alloc")
    assert "size 1024" in finding.message and "this series touches" in finding.message
    assert any("mem_cgroup_css_alloc+0x6b/0x7c0" in line for line in finding.evidence)


def test_leak_allocated_elsewhere_is_not_a_finding() -> None:
    report = parse_console(_console(_leak("acpi_os_allocate_zeroed")))
    assert _sites({"mm/memcontrol.c": MEMCONTROL}).findings(unique_splats(report)) == []


def test_allocator_frames_do_not_count_even_when_the_series_touches_the_allocator() -> None:
    slab = "void *kmalloc_trace(struct kmem_cache *s, gfp_t flags, size_t size)\n{\n\treturn 0;\n}\n"
    report = parse_console(_console(_leak("acpi_os_allocate_zeroed")))
    assert _sites({"mm/slab_common.c": slab}).findings(unique_splats(report)) == []


def test_judge_baselines_base_leaks_and_reports_only_new_ones_in_touched_code() -> None:
    base = parse_console(_console(_leak("cgroup_mkdir_baseline")))
    patched = parse_console(_console(
        _leak("cgroup_mkdir_baseline"),  # the base kernel leaks it too: not the series'
        _leak("mem_cgroup_css_alloc"),  # new, allocated in mm/memcontrol.c: a finding
        _leak("acpi_os_allocate_zeroed", 64),  # new, but nothing the series touched
    ))
    result = BootResult("0" * 40, "cfg", BuildSummary(BaseBuild("success", 1.0, True)),
                        BootSummary("tcg", "given", BaseBoot("completed", 1.0, 1, True, "")))
    sites = _sites({"mm/memcontrol.c": MEMCONTROL})
    report = stage._judge(Settings(), [base], patched, _Run(), result, [], leak_sites=sites)  # type: ignore[arg-type]
    assert report.status == "fail"
    assert [f.rule for f in report.findings] == ["boot-kmemleak"]
    assert "kmemleak report(s) in code the series touches" in report.reason
    assert result.boot is not None and result.boot.kmemleak_scanned
    assert {s.kind for s in result.boot.splats_new} == {"kmemleak"} and len(result.boot.splats_new) == 2
    assert result.to_json()["boot"]["kmemleak_scanned"] is True  # type: ignore[index]


def test_judge_passes_when_the_only_new_leak_is_outside_the_series() -> None:
    base = parse_console(_console())
    patched = parse_console(_console(_leak("acpi_os_allocate_zeroed", 64)))
    result = BootResult("0" * 40, "cfg", BuildSummary(BaseBuild("success", 1.0, True)),
                        BootSummary("tcg", "given", BaseBoot("completed", 1.0, 1, True, "")))
    report = stage._judge(Settings(), [base], patched, _Run(), result, [],  # type: ignore[arg-type]
                          leak_sites=_sites({"mm/memcontrol.c": MEMCONTROL}))
    # (the stand-in consoles lack the charge tests, so the stage warns about the base)
    assert report.status != "fail" and report.findings == []
