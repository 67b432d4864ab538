"""Read a guest's serial console: KTAP results, metrics and kernel splats.

The guest's init frames each program with "# reviewbot-run: NAME" / "# reviewbot-exit: NAME
RC"; memcg_charge prints "# start TEST" before each test and "# metric TEST.KEY=VALUE" for
figures. Kernel messages share the console, so a splat is attributed to the program and test
that were running when it was printed (printk and the tests' writes both go synchronously to
ttyS0, which keeps their order). Kernel lines are told from userspace lines by the printk
timestamp (the guest boots with printk.time=1); a splat ends at its "---[ end" marker, at
the first userspace line, or after MAX_SPLAT_LINES.

States of the line scanner: outside any program -> inside program P (after reviewbot-run) ->
inside test T of P (after "# start T", memcg_charge only) -> back to P at T's result line ->
outside at reviewbot-exit. A splat, once started, collects lines until its end marker.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

# "[   12.345678] " printk timestamps, stripped before matching.
_TIME_RE = re.compile(r"^\[\s*\d+\.\d+\]\s?")
_RESULT_RE = re.compile(r"^(?P<ok>ok|not ok) (?P<num>\d+) (?P<name>[^#]*?)\s*(?:#\s*(?P<directive>.*))?$")
_METRIC_RE = re.compile(r"^# metric (?P<test>[\w.-]+)\.(?P<key>\w+)=(?P<value>\S+)$")

# (kind, pattern) in priority order; the first match names the splat.
SPLAT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("panic", re.compile(r"Kernel panic - not syncing")),
    ("kasan", re.compile(r"BUG: KASAN: ")),
    ("lockdep", re.compile(r"WARNING: (possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|bad unlock balance)")),
    ("rcu-stall", re.compile(r"rcu: INFO: \w+ (self-)?detected stall|rcu_\w+ detected stalls")),
    ("hung-task", re.compile(r"INFO: task \S+ blocked for more than \d+ seconds")),
    ("refcount", re.compile(r"refcount_t: ")),
    ("bug", re.compile(r"kernel BUG at |BUG: ")),
    ("oops", re.compile(r"Oops: |general protection fault")),
    ("warning", re.compile(r"WARNING: CPU: \d+ PID: \d+ at ")),
)
_END_RE = re.compile(r"---\[ end (trace|Kernel panic)")
MAX_SPLAT_LINES = 40


@dataclass
class Splat:
    kind: str
    title: str  # the first line, timestamps removed
    excerpt: list[str]
    program: str | None
    test: str | None
    fingerprint: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "title": self.title,
            "fingerprint": self.fingerprint,
            "program": self.program,
            "test": self.test,
            "excerpt": "\n".join(self.excerpt),
        }


@dataclass
class TestResult:
    program: str
    name: str
    status: str  # pass | fail | skip
    diagnostics: list[str] = field(default_factory=list)
    splats: list[Splat] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.program}.{self.name}"


@dataclass
class ConsoleReport:
    results: dict[str, TestResult]  # full_name -> result, in console order
    metrics: dict[str, str]  # "test.key" -> value
    splats: list[Splat]
    programs: dict[str, int | None]  # program -> exit code (None: never exited)
    up_s: float | None = None  # guest uptime when init started the suite (boot time)
    done_s: float | None = None  # guest uptime when the suite ended

    @property
    def suite_s(self) -> float | None:
        return None if self.up_s is None or self.done_s is None else self.done_s - self.up_s


def splat_fingerprint(kind: str, lines: list[str]) -> str:
    """Hash of what identifies a splat across runs: kind, title and call-trace functions.

    Addresses, offsets, PIDs, CPU numbers, line numbers and task names vary between runs and
    kernels, so they are removed (NIPA compares warnings in the same spirit).
    """
    title = _normalise(lines[0]) if lines else ""
    frames = []
    for line in lines[1:]:
        match = re.match(r"^\s*(?:\? )?([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+", line)
        if match and not line.lstrip().startswith("?"):
            frames.append(match.group(1))
        if len(frames) >= 6:
            break
    material = "|".join([kind, title, *frames])
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _normalise(line: str) -> str:
    line = re.sub(r"0x[0-9a-fA-F]+", "X", line)
    line = re.sub(r"\b[0-9a-f]{8,16}\b", "X", line)
    line = re.sub(r"(PID|pid|CPU|cpu): ?\d+", r"\1:N", line)
    line = re.sub(r":\d+", ":N", line)  # file:line
    line = re.sub(r"task \S+:\d+", "task T", line)
    line = re.sub(r"\b\d+\b", "N", line)
    return line.strip()


def _splat_kind(line: str) -> str | None:
    for kind, pattern in SPLAT_PATTERNS:
        if pattern.search(line):
            return kind
    return None


def _same_event(current: Splat, kind: str) -> bool:
    """WARN()-based reports print their own line, then "WARNING: CPU: ..." for the same event
    ("refcount_t: underflow; use-after-free." then the WARNING header): one splat, not two."""
    return kind == "warning" and current.kind != "warning" and len(current.excerpt) <= 3


def parse_console(text: str) -> ConsoleReport:
    results: dict[str, TestResult] = {}
    metrics: dict[str, str] = {}
    splats: list[Splat] = []
    programs: dict[str, int | None] = {}
    program: str | None = None
    test: str | None = None
    diagnostics: list[str] = []
    test_splats: list[Splat] = []
    current: Splat | None = None
    up_s: float | None = None
    done_s: float | None = None

    for raw in text.splitlines():
        line = _TIME_RE.sub("", raw.rstrip())
        kernel = line != raw.rstrip()  # printk lines carry a timestamp, userspace lines do not
        kind = _splat_kind(line) if kernel else None
        if current is not None and kind is not None and not _same_event(current, kind):
            current.fingerprint = splat_fingerprint(current.kind, current.excerpt)
            current = None  # a new splat starts; the line is read below
        if current is not None and kernel:
            current.excerpt.append(line)
            if _END_RE.search(line) or len(current.excerpt) >= MAX_SPLAT_LINES:
                current.fingerprint = splat_fingerprint(current.kind, current.excerpt)
                current = None
            continue
        if current is not None:  # userspace output ends the splat; the line is read below
            current.fingerprint = splat_fingerprint(current.kind, current.excerpt)
            current = None
        if kind is not None:
            current = Splat(kind, line.strip(), [line], program, test)
            splats.append(current)
            test_splats.append(current)
            continue
        if line.startswith("# reviewbot-guest: "):
            uptime = re.search(r"uptime=(\d+\.\d+)", line)
            if uptime and " up " in f" {line[19:]}":
                up_s = float(uptime.group(1))
            elif uptime:
                done_s = float(uptime.group(1))
            continue
        if line.startswith("# reviewbot-run: "):
            program = line.split(":", 1)[1].strip()
            programs[program] = None
            test, diagnostics, test_splats = None, [], []
            continue
        if line.startswith("# reviewbot-exit: ") and program:
            parts = line.split()
            programs[program] = int(parts[-1]) if parts[-1].lstrip("-").isdigit() else None
            program, test = None, None
            continue
        if program is None:
            continue
        if line.startswith("# start "):
            test, diagnostics, test_splats = line[len("# start "):].strip(), [], []
            continue
        metric = _METRIC_RE.match(line)
        if metric:
            metrics[f"{metric.group('test')}.{metric.group('key')}"] = metric.group("value")
            continue
        if line.startswith("#"):
            diagnostics.append(line[1:].strip())
            continue
        result = _RESULT_RE.match(line.strip())
        if result:
            name = result.group("name").strip()
            directive = (result.group("directive") or "").strip()
            if not name and directive.upper().startswith("SKIP "):
                # kselftest's ksft_test_result_skip() prints "ok 11 # SKIP test_memcg_sock"
                name = directive[5:].strip()
            if directive.upper().startswith("SKIP"):
                status = "skip"
            else:
                status = "pass" if result.group("ok") == "ok" else "fail"
            mine = [s for s in test_splats if s.test in (None, name)]
            entry = TestResult(program, name, status, diagnostics[-8:], mine)
            if status == "pass" and mine:
                entry.status = "fail"  # a splat while the test ran fails it
                entry.diagnostics.append(f"kernel {mine[0].kind} while the test ran: {mine[0].title}")
            results[entry.full_name] = entry
            test, diagnostics, test_splats = None, [], []
    if current is not None:
        current.fingerprint = splat_fingerprint(current.kind, current.excerpt)
    return ConsoleReport(results, metrics, splats, programs, up_s, done_s)
