"""Coverage of the changed code: the guest's gcov dumps, the host's gcov, the tables.

The counters come from a real program compiled with ``gcc --coverage`` and run here, then
framed the way the guest's init frames a kernel object's counters; the kernel side (a
patched kernel whose touched objects carry gcov) runs in test_boot_slow.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

from reviewbot.boot import coverage
from reviewbot.boot.console import parse_console
from reviewbot.boot.gcovdump import MAX_ENCODED, DumpReader
from reviewbot.report.boot import render_coverage
from reviewbot.report.mail import _coverage_lines
from reviewbot.results import CoverageSummary

SOURCE = """\
#include "helper.h"

static int clamp(int a)
{
\tif (a > 3)
\t\treturn 3;
\treturn a;
}

int never_called(int a)
{
\treturn a * 7;
}

int main(int argc, char **argv)
{
\t(void)argv;
\treturn clamp(argc) + twice(argc) == 100;
}
"""
HEADER = "static inline int twice(int a)\n{\n\treturn a + a;\n}\n"

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None or shutil.which("gcov") is None,
                               reason="gcc and gcov are needed (apt install gcc)")


def _frame(program: str, guest_path: str, data: bytes, *, corrupt: bool = False, printk: bool = False) -> str:
    encoded = base64.encodebytes(gzip.compress(data)).decode().splitlines()
    if corrupt:
        encoded[0] = encoded[0][:10] + "QUJD" + encoded[0][14:]
    if printk:  # a kernel message between two base64 lines: skipped, the dump still reads
        encoded.insert(1, "[   12.345678] random: crng init done")
    md5 = hashlib.md5(data).hexdigest()
    return "\n".join([f"# reviewbot-gcov: begin {program} {guest_path} {md5}", *encoded,
                      "# reviewbot-gcov: end"]) + "\n"


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """(src, build, gcda): x.c compiled with gcov into build/, run once with no argument."""
    src, build = tmp_path / "src", tmp_path / "build"
    (src / "lib").mkdir(parents=True)
    (build / "lib").mkdir(parents=True)
    (src / "lib" / "x.c").write_text(SOURCE)
    (src / "lib" / "helper.h").write_text(HEADER)
    subprocess.run(["gcc", "-O2", "--coverage", "-c", str(src / "lib" / "x.c"), "-o", "x.o"],
                   cwd=build / "lib", check=True)
    subprocess.run(["gcc", "--coverage", "x.o", "-o", "x"], cwd=build / "lib", check=True)
    subprocess.run([str(build / "lib" / "x")], cwd=build / "lib", check=False)
    gcda = (build / "lib" / "x.gcda").read_bytes()
    (build / "lib" / "x.gcda").unlink()  # the host reads the guest's copy, not this one
    return src, build, gcda


@needs_gcc
def test_counts_from_a_console_dump_name_the_program_and_the_changed_lines(built: tuple[Path, Path, bytes]) -> None:
    src, build, gcda = built
    console = ("# reviewbot-run: memcg_charge\nok 1 anon_charge\n# reviewbot-exit: memcg_charge 0\n"
               + _frame("memcg_charge", "/build/lib/x.gcda", gcda, printk=True))
    report = parse_console(console)
    assert [(d.program, d.path, d.problem) for d in report.gcov] == [("memcg_charge", "/build/lib/x.gcda", "")]
    assert "memcg_charge.anon_charge" in report.results  # the dump does not disturb the rest
    counts = coverage.read_counts(report.gcov, build, ("/build",), (str(src),))
    assert counts.programs == ["memcg_charge"] and not counts.problems
    # The series changed clamp()'s test (line 5), never_called()'s body (line 12), and the
    # header's inline function (line 3), which x.c inlines into main().
    changed = {"lib/x.c": {5, 12}, "lib/helper.h": {3}}
    plan = coverage.Plan(objects=["lib/x.c"])
    summary = coverage.summarise(changed, plan, counts, coverage.SourceReader(src), lambda path: True)
    assert summary.status == "measured"
    by_path = {f.path: f for f in summary.files}
    x = by_path["lib/x.c"]
    assert [(f.name, bool(f.executed_by)) for f in x.functions] == [("clamp", True), ("never_called", False)]
    assert x.functions[0].executed_by == ("memcg_charge",)
    assert x.not_executed == [12] and x.executed_lines == 1 and x.changed_lines == 2
    assert by_path["lib/helper.h"].status == "measured"
    assert by_path["lib/helper.h"].functions[0].name == "twice"
    assert by_path["lib/helper.h"].functions[0].executed_by == ("memcg_charge",)
    quiet = coverage.not_exercised(summary)
    assert [f.name for f in quiet] == ["never_called"]
    table = "\n".join(render_coverage(summary))
    assert "lib/x.c: 1 of 2 changed function(s) ran, 1 of 2 changed line(s) with code ran" in table
    assert "never_called()" in table and "NOT EXERCISED" in table
    assert "changed lines no test ran: 12" in table
    mail = "\n".join(_coverage_lines(summary))
    assert "clamp(): memcg_charge" in mail and "never_called(): not exercised" in mail
    files = summary.to_json()["files"]
    assert isinstance(files, list)
    assert [f["path"] for f in files] == ["lib/helper.h", "lib/x.c"]
    assert files[1]["functions"][1] == {
        "name": "never_called", "line": 10, "executed": False, "executed_by": [],
        "changed_lines": 1, "changed_executed": 0}


@needs_gcc
def test_a_corrupted_dump_is_unreadable_not_guessed(built: tuple[Path, Path, bytes]) -> None:
    src, build, gcda = built
    report = parse_console(_frame("test_kmem", "/build/lib/x.gcda", gcda, corrupt=True))
    assert report.gcov[0].data is None
    assert report.gcov[0].problem
    counts = coverage.read_counts(report.gcov, build, ("/build",), (str(src),))
    summary = coverage.summarise({"lib/x.c": {5}}, coverage.Plan(objects=["lib/x.c"]), counts,
                                 coverage.SourceReader(src), lambda path: True)
    assert summary.status == "unavailable"
    assert summary.files[0].status == "unreadable"


def test_a_dump_cut_short_by_a_crash_is_recorded_as_such() -> None:
    report = parse_console("# reviewbot-gcov: begin memcg_charge /build/mm/memcontrol.gcda "
                           + "0" * 32 + "\nH4sIAAAAAAAAA+3\n[   40.000000] Kernel panic - not syncing: x\n")
    assert report.gcov[0].data is None
    assert "ended in the middle" in report.gcov[0].problem


def test_an_endless_dump_stops_at_its_bound() -> None:
    reader = DumpReader()
    reader.feed("# reviewbot-gcov: begin p /build/a.gcda " + "0" * 32)
    line = "A" * 76
    for _ in range(MAX_ENCODED // 76 + 2):
        reader.feed(line)
    reader.feed("# reviewbot-gcov: end")
    assert reader.dumps[0].data is None
    assert "more than" in reader.dumps[0].problem


def test_a_mangled_header_or_a_stray_end_opens_nothing() -> None:
    reader = DumpReader()
    assert reader.feed("# reviewbot-gcov: begin p ../../etc/passwd x")
    assert not reader.open
    assert not reader.feed("QUJD")  # stray base64 outside a dump is not ours
    assert not reader.dumps


def test_plan_profiles_touched_c_files_the_kernel_allows(tmp_path: Path) -> None:
    (tmp_path / "mm").mkdir()
    (tmp_path / "mm" / "memcontrol.c").write_text("int x;\n")
    (tmp_path / "mm" / "Makefile").write_text("obj-y += memcontrol.o\n")
    (tmp_path / "kernel").mkdir()
    (tmp_path / "kernel" / "entry.c").write_text("int y;\n")
    (tmp_path / "kernel" / "Makefile").write_text("GCOV_PROFILE_entry.o := n\nobj-y += entry.o\n")
    (tmp_path / "arch" / "x86" / "boot").mkdir(parents=True)
    (tmp_path / "arch" / "x86" / "boot" / "main.c").write_text("int z;\n")
    plan = coverage.plan(tmp_path, ["mm/memcontrol.c", "kernel/entry.c", "arch/x86/boot/main.c",
                                    "include/linux/memcontrol.h", "mm/gone.c", "Documentation/x.rst"])
    assert plan.objects == ["mm/memcontrol.c"]
    assert plan.variables == ["GCOV_PROFILE_memcontrol.o=y"]
    assert plan.skipped["kernel/entry.c"].startswith("its Makefile turns gcov off")
    assert plan.skipped["arch/x86/boot/main.c"].startswith("the kernel never")
    assert plan.skipped["mm/gone.c"] == "deleted by the series"


def test_function_spans_follow_kernel_style() -> None:
    text = ("static bool __init\nfoo(int a,\n    int b)\n{\n\treturn a;\n}\n\n"
            "__printf(2, 3) void bar(int x, const char *fmt, ...)\n{\n}\n"
            "struct s v = {\n};\n")
    assert coverage.function_spans(text) == [("foo", 1, 6), ("bar", 8, 10)]


def test_changed_lines_from_git(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                       check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / "a.c").write_text("1\n2\n3\n4\n5\n")
    git("add", ".")
    git("commit", "-qm", "base")
    base = subprocess.run(["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True).stdout.strip()
    (tmp_path / "a.c").write_text("1\nTWO\n3\n5\n")  # line 2 changed, line 4 deleted
    git("commit", "-qam", "change")
    assert coverage.changed_lines(tmp_path, base) == {"a.c": {2, 3}}


def test_not_measured_summary_renders_its_reason() -> None:
    summary = CoverageSummary("unavailable", "the series changes no C source")
    assert render_coverage(summary) == [
        "coverage of the changed code (gcov on the patched kernel, counted per test program): "
        "unavailable (the series changes no C source)"]


def test_a_header_that_changes_no_function_says_so() -> None:
    from reviewbot.results import CoveredFile

    summary = CoverageSummary("measured", "", ["memcg_charge"],
                              [CoveredFile("include/linux/mm_types.h", "measured")])
    assert render_coverage(summary)[1] == (
        "  include/linux/mm_types.h: changes no function body (declarations, struct fields, macros)")
    assert "mm_types.h: changes no function body" in "\n".join(_coverage_lines(summary))
