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
outside at reviewbot-exit. A splat, once started, collects lines until its end marker. After
each program, a patched kernel with gcov prints its counters (reviewbot.boot.gcovdump). After
the suite, a debug kernel's init prints kmemleak's report between "# reviewbot-kmemleak:
begin" and "# reviewbot-kmemleak: end" (userspace lines: the guest cats the debugfs file);
each "unreferenced object" record in it is a splat of kind "kmemleak".

The debug profile's reports, in the formats of 6.1 and 6.12 (Documentation/dev-tools/kasan.rst,
kmemleak.rst, kernel/locking/lockdep.c, lib/debugobjects.c):
- KASAN: "BUG: KASAN: use-after-free in f+0x1c/0x80" (6.12: "slab-use-after-free"), the
  access ("Read of size 8 at addr ... by task ..."), the call trace, the allocation and free
  stacks, the memory state, and a closing line of "=".
- lockdep: "WARNING: possible circular locking dependency detected", "... recursive locking
  ...", "inconsistent lock state", "suspicious RCU usage", "bad unlock balance detected!",
  "held lock freed!", "lock held when returning to user space!", ...; the lock classes
  ("(&mm->mmap_lock){++++}-{3:3}") and the dependency chain, then "stack backtrace:" and a
  call trace that ends at "</TASK>". There is no end marker, and the reports are long.
- debug objects: "ODEBUG: free active (active state 0) object type: rcu_head hint: f+0x0/0x40"
  (6.12 adds "object: <hashed pointer>"), printed by WARN(), so a "WARNING: CPU:" header and
  "---[ end trace" follow: one splat.
- kmemleak: "unreferenced object 0xffff888004a1c000 (size 1024):", comm and pid, a hex dump,
  "  backtrace:" (6.12: "  backtrace (crc 5e2b1f0c):") and one frame a line,
  "    [<00000000f1e2d3c4>] f+0x1c/0x80" (6.12: "    f+0x1c/0x80").
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from reviewbot.boot.gcovdump import DumpReader, GcovDump

# "[   12.345678] " printk timestamps, stripped before matching.
_TIME_RE = re.compile(r"^\[\s*\d+\.\d+\]\s?")
_RESULT_RE = re.compile(r"^(?P<ok>ok|not ok) (?P<num>\d+) (?P<name>[^#]*?)\s*(?:#\s*(?P<directive>.*))?$")
_METRIC_RE = re.compile(r"^# metric (?P<test>[\w.-]+)\.(?P<key>\w+)=(?P<value>\S+)$")

# (kind, pattern) in priority order; the first match names the splat.
SPLAT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("panic", re.compile(r"Kernel panic - not syncing")),
    ("kasan", re.compile(r"BUG: KASAN: ")),
    ("lockdep", re.compile(
        r"WARNING: (possible circular locking|possible recursive locking|inconsistent lock state"
        r"|suspicious RCU usage|bad unlock balance|possible irq lock inversion|\w+-safe -> \w+-unsafe lock order"
        r"|held lock freed|lock held when returning to user space|Nested lock was not taken|bad contention"
        r"|\S+/\d+ still has locks held)"
        r"|INFO: trying to register non-static key")),
    ("debugobjects", re.compile(r"ODEBUG: ")),
    ("rcu-stall", re.compile(r"rcu: INFO: \w+ (self-)?detected stall|rcu_\w+ detected stalls")),
    ("hung-task", re.compile(r"INFO: task \S+ blocked for more than \d+ seconds")),
    ("refcount", re.compile(r"refcount_t: ")),
    ("bug", re.compile(r"kernel BUG at |BUG: ")),
    ("oops", re.compile(r"Oops: |general protection fault")),
    ("warning", re.compile(r"WARNING: CPU: \d+ PID: \d+ at ")),
)
_END_RE = re.compile(r"---\[ end (trace|Kernel panic)")
MAX_SPLAT_LINES = 40
# Reports that run long and have their own end: KASAN's closing "=" line, lockdep's final
# call trace (its dependency chains come first, and a circular-locking report is 80-120 lines).
LONG_SPLAT_LINES = 160
_KASAN_END_RE = re.compile(r"^={20,}$")
_TASK_END_RE = re.compile(r"^\s*</TASK>$")
KMEMLEAK_BEGIN = "# reviewbot-kmemleak: begin"
KMEMLEAK_END = "# reviewbot-kmemleak: end"
_KMEMLEAK_RE = re.compile(r"^unreferenced object 0x[0-9a-f]+ \(size (?P<size>\d+)\):")
# "    [<00000000f1e2d3c4>] css_alloc+0x1c/0x80" (6.1) or "    css_alloc+0x1c/0x80" (6.12)
_LEAK_FRAME_RE = re.compile(r"^\s+(?:\[<[0-9a-f]+>\]\s+)?(?P<fn>[A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+")
_FRAME_RE = re.compile(r"^\s*(?:\? )?([A-Za-z_][\w.]*)\+0x[0-9a-f]+/0x[0-9a-f]+")
# Frames every report of a kind has (the reporting machinery, lock primitives): skipped, so
# the fingerprint names the code that did it. Only for the debug kinds below; the older kinds
# keep the fingerprints reviews and scans already recorded.
_DEBUG_KINDS = ("kasan", "lockdep", "debugobjects", "kmemleak")
_GENERIC_FRAMES = re.compile(
    r"^(dump_stack|dump_stack_lvl|show_stack|print_report|print_address_description.*|kasan_.*|__kasan_.*"
    r"|__asan_.*|check_memory_region.*|lockdep_.*|check_noncircular|check_prev_add|check_prevs_add"
    r"|validate_chain|__lock_acquire|lock_acquire|lock_release|__lock_release|lock_acquired"
    r"|lock_is_held_type|mark_lock.*|mark_usage|valid_state|print_.*|debug_print_object"
    r"|debug_object_\w+|__debug_check_no_obj_freed|debug_check_no_obj_freed|__warn|warn_slowpath_fmt"
    r"|report_bug|handle_bug|exc_invalid_op|asm_exc_invalid_op|_raw_\w+|__raw_\w+|do_raw_\w+"
    r"|__mutex_lock.*|mutex_lock.*|down_read.*|down_write.*|up_read|up_write|rcu_read_lock_held.*"
    r"|stack_trace_save|save_stack|kfree|kmem_cache_free|__kmem_cache_free|slab_free.*|__slab_free"
    r"|kmemleak_.*)$"
)
# kmemleak's first frames are the allocator's own: the allocation site is the first after them.
_ALLOCATOR_FRAMES = re.compile(
    r"^(kmalloc.*|__kmalloc.*|kmem_cache_alloc.*|__kmem_cache_alloc.*|kmemleak_.*|slab_.*|__slab_.*"
    r"|___slab_.*|kzalloc.*|kvmalloc.*|__kvmalloc.*|kvzalloc.*|kmemdup.*|kstrdup.*|krealloc.*"
    r"|__do_kmalloc.*|alloc_pages.*|__alloc_pages.*|pcpu_alloc.*|__alloc_percpu.*|__vmalloc.*"
    r"|vmalloc.*|vzalloc.*|__get_vm_area.*|alloc_slab.*|allocate_slab|new_slab|kasan_.*|__kasan_.*"
    r"|create_object|__create_object|stack_trace_save"
    # a slab cache's own structures: the site is whoever created the cache
    r"|kmem_cache_create.*|__kmem_cache_create.*|create_cache|do_kmem_cache_create)$"
)


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
    kmemleak_scanned: bool = False  # the guest printed kmemleak's report (debug profile)
    gcov: list[GcovDump] = field(default_factory=list)  # per program, per profiled object

    @property
    def suite_s(self) -> float | None:
        return None if self.up_s is None or self.done_s is None else self.done_s - self.up_s


def splat_fingerprint(kind: str, lines: list[str]) -> str:
    """Hash of what identifies a splat across runs: kind, title and call-trace functions.

    Addresses, offsets, PIDs, CPU numbers, line numbers and task names vary between runs and
    kernels, so they are removed (NIPA compares warnings in the same spirit). The debug
    kinds hash what tells two reports apart: for lockdep the lock classes (and, for
    suspicious RCU usage, the file of the rcu_dereference()), for KASAN the access, and the
    frames of the final call trace without the reporting machinery; for kmemleak the
    allocation site's frames only (size and contents vary).
    """
    if kind == "kmemleak":
        material = "|".join([kind, *leak_frames(lines)[:6]])
        return hashlib.sha256(material.encode()).hexdigest()[:16]
    title = _normalise(lines[0]) if lines else ""
    if kind in _DEBUG_KINDS:
        # "WARNING: timeout/65 still has locks held!": the task is whoever hit it
        title = re.sub(r"[\w.:-]+/N\b", "TASK", title)
        material = "|".join([kind, title, *_debug_details(kind, lines), *_trace_frames(lines)])
        return hashlib.sha256(material.encode()).hexdigest()[:16]
    frames = []
    for line in lines[1:]:
        match = _FRAME_RE.match(line)
        if match and not line.lstrip().startswith("?"):
            frames.append(match.group(1))
        if len(frames) >= 6:
            break
    material = "|".join([kind, title, *frames])
    return hashlib.sha256(material.encode()).hexdigest()[:16]


_LOCK_CLASS_RE = re.compile(r"\(([^(){}\s][^(){}]*)\)\{[^{}]*\}")
# "include/linux/cgroup.h:481 suspicious rcu_dereference_check() usage!", "include/linux/
# rcupdate.h:417 Illegal context switch in RCU read-side critical section!" (seen on 6.1)
_RCU_USAGE_RE = re.compile(r"^(\S+?\.[ch]):\d+ (.+)$")
_KASAN_ACCESS_RE = re.compile(r"^(Read|Write) of size (\d+)")


def _debug_details(kind: str, lines: list[str]) -> list[str]:
    """The lines of a lockdep or KASAN report that say what went wrong, normalised."""
    details: list[str] = []
    for line in lines[1:]:
        text = line.strip()
        if kind == "lockdep":
            if text.startswith(("the existing dependency chain", "other info", "stack backtrace")):
                break  # the chain's stacks and the held-lock list repeat or vary
            if rcu := _RCU_USAGE_RE.match(text):
                details.append(f"{rcu.group(1)} {rcu.group(2)}")
            details += [f"lock {name}" for name in _LOCK_CLASS_RE.findall(text)]
        elif kind == "kasan" and (access := _KASAN_ACCESS_RE.match(text)):
            details.append(f"{access.group(1)} {access.group(2)}")
            break
    return details


def _trace_frames(lines: list[str], limit: int = 6) -> list[str]:
    """The first functions of the report's last call trace that are not the reporting
    machinery or a lock primitive (KASAN's only trace is the access; lockdep's last one is
    the stack backtrace after the dependency chains)."""
    starts = [i for i, line in enumerate(lines) if line.strip() == "Call Trace:"]
    frames: list[str] = []
    for line in lines[starts[-1] + 1 if starts else 1:]:
        if _TASK_END_RE.match(line):
            break
        match = _FRAME_RE.match(line)
        if match and not line.lstrip().startswith("?") and not _GENERIC_FRAMES.match(match.group(1)):
            frames.append(match.group(1))
        if len(frames) >= limit:
            break
    return frames


def leak_frames(lines: list[str]) -> list[str]:
    """The functions of a kmemleak record's backtrace after the allocator's own frames:
    the allocation site first."""
    frames = [m.group("fn") for line in lines if (m := _LEAK_FRAME_RE.match(line))]
    start = 0
    while start < len(frames) and _ALLOCATOR_FRAMES.match(frames[start]):
        start += 1
    return frames[start:]


def _leak_title(lines: list[str]) -> str:
    size = _KMEMLEAK_RE.match(lines[0]) if lines else None
    frames = leak_frames(lines)
    where = f" allocated by {frames[0]}" if frames else ""
    comm = next((m.group(1) for line in lines if (m := re.match(r'^\s*comm "([^"]*)"', line))), "")
    return (f"kmemleak: unreferenced object (size {size.group('size') if size else '?'}){where}"
            + (f" (comm {comm})" if comm else ""))


def _splat_ends(splat: Splat, line: str) -> bool:
    if _END_RE.search(line):
        return True
    if splat.kind == "kasan" and len(splat.excerpt) > 1 and _KASAN_END_RE.match(line.strip()):
        return True
    if splat.kind == "lockdep" and _TASK_END_RE.match(line):
        return True
    limit = LONG_SPLAT_LINES if splat.kind in ("kasan", "lockdep") else MAX_SPLAT_LINES
    return len(splat.excerpt) >= limit


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
    in_kmemleak = False
    kmemleak_scanned = False
    leak: Splat | None = None  # the kmemleak record being read
    gcov = DumpReader()

    def end_leak() -> None:
        nonlocal leak
        if leak is not None:
            leak.title = _leak_title(leak.excerpt)
            leak.fingerprint = splat_fingerprint("kmemleak", leak.excerpt)
            leak = None

    for raw in text.splitlines():
        line = _TIME_RE.sub("", raw.rstrip())
        kernel = line != raw.rstrip()  # printk lines carry a timestamp, userspace lines do not
        kind = _splat_kind(line) if kernel else None
        if current is not None and kind is not None and not _same_event(current, kind):
            current.fingerprint = splat_fingerprint(current.kind, current.excerpt)
            current = None  # a new splat starts; the line is read below
        if current is not None and kernel:
            current.excerpt.append(line)
            if _splat_ends(current, line):
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
        if not kernel and gcov.feed(line):
            continue
        if not kernel and line.startswith(KMEMLEAK_BEGIN):
            in_kmemleak = kmemleak_scanned = True
            continue
        if in_kmemleak and not kernel:
            if line.startswith(KMEMLEAK_END):
                end_leak()
                in_kmemleak = False
            elif _KMEMLEAK_RE.match(line):
                end_leak()
                leak = Splat("kmemleak", line.strip(), [line.rstrip()], None, None)
                splats.append(leak)
            elif leak is not None and len(leak.excerpt) < MAX_SPLAT_LINES:
                leak.excerpt.append(line.rstrip())
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
    end_leak()  # a guest that stopped in the middle of the report
    gcov.close()
    return ConsoleReport(results, metrics, splats, programs, up_s, done_s, kmemleak_scanned, gcov.dumps)
