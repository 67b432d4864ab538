"""Did the tests run the changed code? gcov on the touched objects of the patched kernel.

A regression-free boot says little about code no test executed. With ``build.coverage``
the kernel has ``CONFIG_GCOV_KERNEL`` (reviewbot/data/gcov.config) but instruments nothing
by itself; the patched build adds ``GCOV_PROFILE_<stem>.o=y`` to make's command line for
each touched ``.c`` file (the per-object switch of scripts/Makefile.lib on 6.1 and 6.12), so
only those objects carry counters and only they recompile with different flags. The guest
resets the counters before each program and prints them after it (reviewbot.boot.gcovdump),
so a count names the program that ran the line (with whatever the rest of the system did
meanwhile: init's shell allocates memory too). The host's ``gcov`` (the compiler's own
tool, so the formats match) turns each dump and the build's ``.gcno`` into line counts.

Per changed function: which programs ran any line of it. Per changed line: whether any
program ran it; lines without a counter (declarations, braces, comments) are not counted.
A header's changed lines are counted where a profiled object inlines them; a header no
profiled object uses is "not measured". Inlining blurs the picture a little: a static
function inlined into its caller reports its lines through the caller's copy, which gcov
attributes back to the right source lines.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviewbot import proc
from reviewbot.boot.gcovdump import GcovDump
from reviewbot.gitcmd import git
from reviewbot.results import CoverageSummary, CoveredFile, CoveredFunction

MAX_OBJECTS = 40  # a tree-wide series profiles its first 40 .c files
# Where the kernel never takes gcov (boot code, the vDSO, host tools), whatever a Makefile says.
_NEVER = re.compile(r"^(tools|scripts|samples|usr|Documentation)/|^arch/[^/]+/(boot|realmode|purgatory)/|/vdso")
_STEM = re.compile(r"^[A-Za-z0-9_-]+$")
# Attribute macros that take arguments and may stand before a function's name.
_ATTRIBUTE = re.compile(r"^(__printf|__scanf|__attribute__|__must_hold|__acquires|__releases|__cond_acquires"
                        r"|__cond_releases|__alloc_size|__section|__aligned|__diagnose_as|__malloc)$")
_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(?P<start>\d+)(?:,(?P<count>\d+))? @@")


@dataclass
class Plan:
    """Which touched .c files the patched build profiles, and the make variables for it."""

    objects: list[str] = field(default_factory=list)  # "mm/memcontrol.c"
    skipped: dict[str, str] = field(default_factory=dict)  # path -> why it is not profiled

    @property
    def variables(self) -> list[str]:
        return [f"GCOV_PROFILE_{Path(p).stem}.o=y" for p in self.objects]


def plan(tree: Path, touched: Iterable[str]) -> Plan:
    """Profile every touched .c file the kernel would let gcov instrument."""
    out = Plan()
    for path in touched:
        if not path.endswith(".c"):
            continue
        stem = Path(path).stem
        if _NEVER.search(path):
            out.skipped[path] = "the kernel never builds this code with gcov"
        elif not _STEM.match(stem):
            out.skipped[path] = "an object name make cannot take on its command line"
        elif not (tree / path).is_file():
            out.skipped[path] = "deleted by the series"
        elif _makefile_says_no(tree / Path(path).parent, stem):
            out.skipped[path] = "its Makefile turns gcov off (GCOV_PROFILE := n)"
        elif len(out.objects) >= MAX_OBJECTS:
            out.skipped[path] = f"more than {MAX_OBJECTS} touched .c files: not profiled"
        else:
            out.objects.append(path)
    return out


def _makefile_says_no(directory: Path, stem: str) -> bool:
    # A Makefile turns gcov off for code that must not be instrumented (early boot, noinstr
    # entry code); our command-line variable would override it, so respect it here.
    pattern = re.compile(rf"^\s*GCOV_PROFILE(?:_{re.escape(stem)}\.o)?\s*[:+]?=\s*n", re.M)
    for name in ("Makefile", "Kbuild"):
        try:
            if pattern.search((directory / name).read_text(encoding="utf-8", errors="replace")):
                return True
        except OSError:
            continue
    return False


def changed_lines(tree: Path, base_commit: str) -> dict[str, set[int]]:
    """Lines of each touched file the series added or changed (patched-side numbers); a
    hunk that only deletes marks the line before the deletion, so the function that lost
    lines still counts as changed."""
    result = git(["diff", "-U0", "--no-color", "--no-ext-diff", "--no-renames", base_commit, "HEAD"],
                 cwd=tree, timeout=300)
    out: dict[str, set[int]] = {}
    path: str | None = None
    for line in result.stdout.splitlines() if result.ok else []:
        if line.startswith("+++ "):
            name = line[4:].strip()
            path = name[2:] if name.startswith("b/") else None
            continue
        hunk = _HUNK.match(line)
        if hunk and path is not None:
            start, count = int(hunk.group("start")), int(hunk.group("count") or 1)
            lines = out.setdefault(path, set())
            lines.update(range(start, start + count) if count else (max(start, 1),))
    return out


def function_spans(text: str) -> list[tuple[str, int, int]]:
    """(name, first line, last line) of each function definition in kernel style: the body's
    braces in column 0, the name the last identifier before "(" in the lines above the "{"."""
    lines = text.splitlines()
    spans = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith("{"):
            i += 1
            continue
        first = i
        while first > 0 and i - first < 8 and lines[first - 1][:1] not in ("", "}", "#") \
                and not lines[first - 1].rstrip().endswith((";", "*/")):
            first -= 1
        head = " ".join(lines[first:i])
        names = [n for n in re.findall(r"([A-Za-z_]\w*)\s*\(", head) if not _ATTRIBUTE.match(n)]
        end = next((j for j in range(i + 1, len(lines)) if lines[j].startswith("}")), len(lines) - 1)
        if names:
            spans.append((names[0], first + 1, end + 1))
        i = end + 1
    return spans


@dataclass
class _Counts:
    """Line counts per source file and program, summed over every dump read."""

    lines: dict[str, dict[int, dict[str, int]]] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # object -> why unreadable
    programs: list[str] = field(default_factory=list)

    def add(self, source: str, line: int, program: str, count: int) -> None:
        per_line = self.lines.setdefault(source, {}).setdefault(line, {})
        per_line[program] = per_line.get(program, 0) + count


def _relative(name: str, prefixes: Sequence[str]) -> str:
    path = os.path.normpath(name)
    for prefix in prefixes:
        if prefix and path.startswith(prefix.rstrip("/") + "/"):
            return path[len(prefix.rstrip("/")) + 1:]
    return path.lstrip("/")


def read_counts(dumps: Iterable[GcovDump], out_dir: Path, build_prefixes: Sequence[str],
                src_prefixes: Sequence[str], gcov_tool: str = "gcov") -> _Counts:
    """Run the host's gcov on each dump against the build's .gcno files."""
    counts = _Counts()
    with tempfile.TemporaryDirectory(prefix="reviewbot-gcov-") as tmp:
        for dump in dumps:
            obj = _relative(dump.path, build_prefixes).removesuffix(".gcda")
            if dump.data is None:
                counts.problems[obj] = dump.problem
                continue
            gcno = out_dir / f"{obj}.gcno"
            if not gcno.is_file() or ".." in Path(obj).parts:
                counts.problems[obj] = f"no {obj}.gcno in the build directory"
                continue
            work = Path(tmp)
            shutil.copyfile(gcno, work / "o.gcno")
            (work / "o.gcda").write_bytes(dump.data)
            result = proc.run([gcov_tool, "-j", "-t", "o.gcda"], cwd=work, timeout=120)
            if not result.ok:
                counts.problems[obj] = f"gcov failed: {result.excerpt()}"
                continue
            if dump.program not in counts.programs:
                counts.programs.append(dump.program)
            for document in _json_documents(result.stdout):
                for entry in document.get("files") or []:
                    source = _relative(str(entry.get("file", "")), src_prefixes)
                    for rec in entry.get("lines") or []:
                        counts.add(source, int(rec["line_number"]), dump.program, int(rec["count"]))
    return counts


def _json_documents(text: str) -> list[dict[str, Any]]:
    # gcov -t prints one JSON document per input file, one after the other.
    decoder, docs, pos = json.JSONDecoder(), [], 0
    while pos < len(text):
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            break
        try:
            doc, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            break
        if isinstance(doc, dict):
            docs.append(doc)
    return docs


def summarise(
    changed: dict[str, set[int]], the_plan: Plan, counts: _Counts, read_source: Callable[[str], str | None],
    built: Callable[[str], bool],
) -> CoverageSummary:
    """Per touched file: the changed functions and lines, and which programs ran them."""
    files = []
    for path in sorted(changed):
        if not path.endswith((".c", ".h")):
            continue
        if path in the_plan.skipped:
            files.append(CoveredFile(path, "not-profiled", the_plan.skipped[path]))
            continue
        if path.endswith(".c") and not built(path):
            files.append(CoveredFile(path, "not-built", "not part of this kernel's configuration"))
            continue
        obj = path.removesuffix(".c")
        if path.endswith(".c") and obj in counts.problems:
            files.append(CoveredFile(path, "unreadable", counts.problems[obj]))
            continue
        lines = counts.lines.get(path)
        if lines is None:
            why = ("no profiled object inlines its code" if path.endswith(".h")
                   else "the guest printed no counters for it")
            files.append(CoveredFile(path, "not-measured", why))
            continue
        files.append(_file_coverage(path, changed[path], lines, read_source(path) or ""))
    if not files:
        return CoverageSummary("unavailable", "the series changes no C source", counts.programs)
    measured = [f for f in files if f.status == "measured"]
    reason = "" if measured else "no touched file could be measured"
    return CoverageSummary("measured" if measured else "unavailable", reason, counts.programs, files)


def _file_coverage(path: str, changed: set[int], lines: dict[int, dict[str, int]], text: str) -> CoveredFile:
    executable = sorted(n for n in changed if n in lines)
    ran = [n for n in executable if any(lines[n].values())]
    functions = []
    for name, first, last in function_spans(text):
        mine = [n for n in changed if first <= n <= last]
        if not mine:
            continue
        by = sorted({p for n, per in lines.items() if first <= n <= last for p, c in per.items() if c})
        exe = [n for n in mine if n in lines]
        functions.append(CoveredFunction(name, first, tuple(by), len(exe),
                                         sum(1 for n in exe if any(lines[n].values()))))
    return CoveredFile(path, "measured", "", functions, len(executable), len(ran),
                       [n for n in executable if n not in ran])


class SourceReader:
    """Reads a file of the patched tree (None when it is gone)."""

    def __init__(self, tree: Path) -> None:
        self.tree = tree

    def __call__(self, path: str) -> str | None:
        try:
            return (self.tree / path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None


class BuiltCheck:
    """Was a .c file compiled into this kernel (its object is in the build directory)?"""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def __call__(self, path: str) -> bool:
        return (self.out_dir / path).with_suffix(".o").is_file()


def not_exercised(summary: CoverageSummary) -> list[CoveredFunction]:
    """Changed functions no program ran a line of (functions with executable lines only)."""
    return [f for c in summary.files if c.status == "measured" for f in c.functions
            if not f.executed_by and f.changed_lines]
