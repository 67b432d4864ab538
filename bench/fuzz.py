"""Fuzz the mail reader with mutated real list mail and real diffs (issue 12).

Each case is a small mbox: one to five neighbouring messages of a real list year (neighbours
mostly share a thread, so assembly sees patches, covers and replies together), one of them
mutated one to three times. The mutations are what hostile or broken mail does: duplicated
and huge headers, broken MIME boundaries, deep multipart nesting, odd charsets and transfer
encodings, NUL, CR, lone surrogates, odd addresses and dates, nested encoded words, and in
the diff huge hunks, ``..`` and absolute paths, binary patches, renames and symlinks. A case
runs through what ``reviewbot series`` and ``review`` run on a file: the mbox reader,
``parse_raw`` (limits, parse_message), ``prepare`` (patch-id), series assembly, the JSON
and text reports, ``parse_diff``, ``patch_mail`` (what ``git am`` is given) and the reply
recipients. A few cases call the string-level parsers directly (service callers hand them
stored text): lone surrogates can only reach them that way.

Anything that escapes as an exception other than BadInputError is a crash, grouped by its
signature: exception type and the innermost frame in reviewbot/ (file and function, no
line number). A case over ``--timeout`` seconds is a hang. Cases run in worker processes
with an address-space limit, so a runaway case is a MemoryError, not a stuck machine.

Usage:
  python bench/fuzz.py --count N [--seed S] [--jobs J] [--timeout SECONDS]
  python bench/fuzz.py --case I [--seed S] [--dump FILE]   # rerun one case, with traceback
  python bench/fuzz.py --cli FILES [--per-file 40] [--command series|review]  # through the CLI
Exit 0 when no case crashed or hung, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import multiprocessing
import os
import resource
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
DEFAULT_SEEDS = REPO.parent / "shared" / "corpus" / "cgroups-2020.mbox.gz"
PROJECT = str(REPO / "reviewbot")

from fuzzcases import Case, Seeds, make_case  # noqa: E402  (after the path is set)

# -- running a case ---------------------------------------------------------------------------


def run_case(case: Case) -> None:
    """What ``reviewbot series`` / ``review`` do with the case's mbox file. Raises whatever
    escapes (BadInputError from a whole-input problem is fine and swallowed)."""
    from reviewbot.config import Settings
    from reviewbot.errors import BadInputError

    settings = Settings()
    if case.api:
        for func, text in case.api:
            with contextlib.suppress(BadInputError):
                _call_api(func, text, settings)
        return
    from reviewbot.diff import parse_diff
    from reviewbot.mail.ingest import read_raw
    from reviewbot.mail.parse import recipients
    from reviewbot.mail.read import iter_stream
    from reviewbot.mail.render import patch_mail
    from reviewbot.mail.series import assemble
    from reviewbot.report.json import series_set_json
    from reviewbot.report.text import render_series_set

    raws = list(iter_stream(io.BytesIO(case.mbox()), "fuzz.mbox"))
    # read_raw turns a parser exception into an "internal error" entry (the CLI goes on
    # with the next message) and logs it; for the fuzzer it is a crash, with its traceback.
    internal: list[BaseException] = []
    handler = _InternalErrors(internal)
    series_log = logging.getLogger("reviewbot.mail.ingest")
    level = series_log.level
    series_log.addHandler(handler)
    series_log.setLevel(logging.DEBUG)
    try:
        items = [read_raw(raw, settings.mail) for raw in raws]
    finally:
        series_log.removeHandler(handler)
        series_log.setLevel(level)
    if internal:
        raise internal[0]
    found = assemble(items, settings.mail)
    if found.messages != len(raws):
        raise AssertionError(f"{len(raws)} messages read, {found.messages} accounted for")
    # What the CLI writes: UTF-8 text and JSON on stdout (a lone surrogate fails there).
    render_series_set(found.series, found.errors).encode("utf-8")
    json.dumps(series_set_json(found.series, found.errors)).encode("utf-8")
    for series in found.series:
        for patch in series.patches:
            with contextlib.suppress(BadInputError):
                parse_diff(patch.message.diff or "", settings.mail, source="fuzz")
            patch_mail(patch)
            recipients(patch.message)


class _InternalErrors(logging.Handler):
    """Collects the exceptions read_raw logs when it turns one into an error entry."""

    def __init__(self, sink: list[BaseException]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.sink.append(record.exc_info[1])


def _call_api(func: str, text: str, settings: Any) -> None:
    from reviewbot.diff import parse_diff
    from reviewbot.mail import parse, patchid, subject, trailers

    if func == "patch_id":
        patchid.patch_id(text)
    elif func == "parse_subject":
        subject.parse_subject(text)
    elif func == "parse_address":
        parse.parse_address(text)
    elif func == "decode_header":
        parse.decode_header(text)
    elif func == "find_trailers":
        trailers.find_trailers(text)
    elif func == "split_body":
        parse.split_body(text)
    elif func == "reply_trailers":
        trailers.reply_trailers(text, "A", "a@b.c")
    elif func == "parse_diff":
        parse_diff(text, settings.mail, source="fuzz")


def signature(exc: BaseException) -> str:
    """Exception type + innermost reviewbot frame (file:function, no line number)."""
    frame = "(no project frame)"
    for entry in traceback.extract_tb(exc.__traceback__):
        if entry.filename.startswith(PROJECT):
            frame = f"{os.path.relpath(entry.filename, REPO)}:{entry.name}"
    return f"{type(exc).__name__} {frame}"


class CaseTimeout(BaseException):  # not an Exception: the code under test must not catch it
    """The per-case time limit fired (raised from a SIGALRM handler)."""


def _alarm(signum: int, frame: object) -> None:
    raise CaseTimeout()


@dataclass
class Outcome:
    index: int
    mutations: list[str]
    seconds: float
    crash: str | None = None  # signature
    detail: str = ""  # the last lines of the traceback
    hang: bool = False
    rss_mib: float = 0.0  # the worker's peak RSS after this case, when this case raised it


def run_guarded(case: Case, timeout: float) -> Outcome:
    """Run a case with a SIGALRM time limit (Python's regex engine checks signals too)."""
    signal.signal(signal.SIGALRM, _alarm)
    start = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        run_case(case)
    except CaseTimeout:
        return Outcome(case.index, case.mutations, time.perf_counter() - start, hang=True)
    except Exception as exc:  # RecursionError and MemoryError included
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:300]
        return Outcome(case.index, case.mutations, time.perf_counter() - start, signature(exc), detail)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return Outcome(case.index, case.mutations, time.perf_counter() - start)


# -- the run: workers, watchdog, summary ---------------------------------------------------


@dataclass
class Summary:
    cases: int = 0
    seconds: float = 0.0
    crashes: dict[str, list[Outcome]] = field(default_factory=dict)
    hangs: list[Outcome] = field(default_factory=list)
    slowest: list[Outcome] = field(default_factory=list)
    mutations: Counter[str] = field(default_factory=Counter)
    peak_rss_mib: float = 0.0
    peak_case: Outcome | None = None  # the case that raised a worker's RSS the most

    def add(self, outcome: Outcome) -> None:
        self.cases += 1
        self.mutations.update(outcome.mutations)
        if outcome.crash:
            self.crashes.setdefault(outcome.crash, []).append(outcome)
        if outcome.hang:
            self.hangs.append(outcome)
        if outcome.rss_mib > self.peak_rss_mib:
            self.peak_rss_mib, self.peak_case = outcome.rss_mib, outcome
        self.slowest.append(outcome)
        if len(self.slowest) > 40:
            self.slowest = sorted(self.slowest, key=lambda o: -o.seconds)[:10]

    @property
    def crash_count(self) -> int:
        return sum(len(v) for v in self.crashes.values())


def _worker(seeds: Seeds, seed: int, scale: float, indices: list[int], timeout: float,
            mem_mib: int, progress: Any, slot: int, results: Any) -> None:
    if mem_mib:
        limit = mem_mib << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    first = True
    for index in indices:
        progress[2 * slot] = index
        progress[2 * slot + 1] = time.monotonic()
        try:
            case = make_case(seeds, seed, index, scale)
        except Exception as exc:  # a bug of this harness, not of reviewbot
            results.put(Outcome(index, ["(make_case)"], 0.0, f"harness {type(exc).__name__}", str(exc)))
            continue
        # RSS high-water marks: a case is named for the peak only if running it, not
        # making it, raised the mark.
        made = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        outcome = run_guarded(case, timeout)
        del case  # a case can be 20 MB: not kept while the next one is made
        ran = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if ran > made or first:
            outcome.rss_mib, first = ran, False
        results.put(outcome)
    progress[2 * slot + 1] = 0.0
    results.put(("done", slot))


def run_many(seeds: Seeds, seed: int, count: int, jobs: int, timeout: float, mem_mib: int,
             first: int = 0, report: Callable[[Summary], None] | None = None,
             scale: float = 1.0) -> Summary:
    """Run cases first..first+count-1 over ``jobs`` forked workers; a worker stuck in C
    code past the limit (no SIGALRM delivered) is killed and its case counted as a hang."""
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    progress = context.Array("d", 2 * jobs, lock=False)
    todo = {slot: list(range(first + slot, first + count, jobs)) for slot in range(jobs)}
    procs: dict[int, Any] = {}
    summary = Summary()
    start = time.perf_counter()
    last_report = start

    def spawn(slot: int) -> None:
        progress[2 * slot + 1] = 0.0
        proc = context.Process(target=_worker, args=(seeds, seed, scale, todo[slot], timeout,
                                                      mem_mib, progress, slot, results), daemon=True)
        proc.start()
        procs[slot] = proc

    for slot in range(jobs):
        if todo[slot]:
            spawn(slot)
    while procs:
        try:
            item = results.get(timeout=0.5)
        except Exception:  # queue.Empty
            item = None
        if isinstance(item, Outcome):
            summary.add(item)
            slot = (item.index - first) % jobs
            if todo[slot] and todo[slot][0] == item.index:
                todo[slot].pop(0)
        elif isinstance(item, tuple) and item[0] == "done":
            procs.pop(item[1]).join()
        now = time.monotonic()
        for slot, proc in list(procs.items()):
            began = progress[2 * slot + 1]
            if began and now - began > timeout * 2 + 5:
                index = int(progress[2 * slot])
                proc.kill()
                proc.join()
                summary.add(Outcome(index, ["(killed)"], now - began, hang=True))
                if todo[slot] and todo[slot][0] == index:
                    todo[slot].pop(0)
                del procs[slot]
                if todo[slot]:
                    spawn(slot)
            elif not proc.is_alive() and results.empty():
                # Died without "done" (killed by the kernel, a crash in C): its case is lost.
                index = int(progress[2 * slot])
                summary.add(Outcome(index, ["(worker died)"], 0.0, f"worker exit {proc.exitcode}"))
                if todo[slot] and todo[slot][0] == index:
                    todo[slot].pop(0)
                del procs[slot]
                if todo[slot]:
                    spawn(slot)
        if report and time.perf_counter() - last_report > 30:
            last_report = time.perf_counter()
            summary.seconds = last_report - start
            report(summary)
    summary.seconds = time.perf_counter() - start
    return summary


def run_inline(seeds: Seeds, seed: int, count: int, timeout: float, first: int = 0,
               scale: float = 1.0) -> Summary:
    """The same cases in this process, one after the other."""
    summary = Summary()
    start = time.perf_counter()
    for index in range(first, first + count):
        summary.add(run_guarded(make_case(seeds, seed, index, scale), timeout))
    summary.seconds = time.perf_counter() - start
    summary.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return summary


def format_summary(summary: Summary, seed: int, jobs: int, timeout: float, mem_mib: int) -> Iterator[str]:
    rate = summary.cases / summary.seconds if summary.seconds else 0.0
    yield (f"cases: {summary.cases} (seed {seed}, {jobs} workers) in {summary.seconds:.1f} s: "
           f"{rate:,.0f} cases/s")
    yield f"uncaught exceptions: {summary.crash_count} in {len(summary.crashes)} signatures"
    for sig, outcomes in sorted(summary.crashes.items(), key=lambda kv: -len(kv[1])):
        example = outcomes[0]
        yield f"  {len(outcomes):6d}  {sig}"
        yield f"          e.g. case {example.index} {example.mutations}: {example.detail[:160]}"
    yield f"hangs (over {timeout:g} s): {len(summary.hangs)}"
    for outcome in summary.hangs[:10]:
        yield f"  case {outcome.index} {outcome.mutations}: {outcome.seconds:.1f} s"
    slow = sorted(summary.slowest, key=lambda o: -o.seconds)[:5]
    yield "slowest: " + ", ".join(f"case {o.index} {o.seconds:.2f} s {o.mutations}" for o in slow)
    peak = summary.peak_case
    yield (f"peak memory: {summary.peak_rss_mib:.0f} MiB RSS of a worker running a case"
           + (f" (reached in case {peak.index} {peak.mutations})" if peak else "")
           + (f" (address-space limit {mem_mib} MiB)" if mem_mib else ""))


def run_cli(seeds: Seeds, seed: int, files: int, per_file: int, command: str,
            timeout: float) -> Counter[str]:
    """The issue's measurement through the real CLI: ``files`` mbox files of ``per_file``
    mutated mails each, ``reviewbot series --json`` (or ``review --no-tree``) on each in a
    fresh process. Returns outcome -> count ("exit 0", "exit 3 + traceback", "timeout")."""
    import subprocess
    import tempfile

    argv = ["series", "--json"] if command == "series" else ["review", "--no-tree", "--format", "json"]
    outcomes: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="reviewbot-fuzz-") as tmp:
        path = Path(tmp) / "fuzz.mbox"
        for number in range(files):
            cases = [make_case(seeds, seed, number * per_file + i) for i in range(per_file)]
            path.write_bytes(b"".join(c.mbox() for c in cases if c.mails))
            # Its own session: on a timeout the whole group goes, parse workers included
            # (a ProcessPoolExecutor's workers outlive a killed parent until their task ends).
            proc = subprocess.Popen([sys.executable, "-m", "reviewbot", *argv, str(path)], cwd=REPO,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    start_new_session=True)
            try:
                _, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                outcomes["timeout"] += 1
                continue
            traceback_seen = b"Traceback (most recent call last)" in stderr
            outcomes[f"exit {proc.returncode}" + (" + traceback" if traceback_seen else "")] += 1
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000, help="cases to run")
    parser.add_argument("--seed", type=int, default=1, help="run seed (cases are reproducible)")
    parser.add_argument("--first", type=int, default=0, help="index of the first case")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per case: a hang")
    parser.add_argument("--memory", type=int, default=2048, help="MiB of address space per worker (0: none)")
    parser.add_argument("--seeds", type=Path, action="append", help="mbox(.gz) of real mail")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="below 1: large mutations shrink (quick runs); cases stay reproducible")
    parser.add_argument("--case", type=int, help="run this one case in-process, with its traceback")
    parser.add_argument("--dump", type=Path, help="with --case: write its mbox here")
    parser.add_argument("--cli", type=int, metavar="FILES",
                        help="instead: FILES mbox files of --per-file mutated mails through the CLI")
    parser.add_argument("--per-file", type=int, default=40)
    parser.add_argument("--command", choices=("series", "review"), default="series")
    args = parser.parse_args()

    paths = args.seeds or [DEFAULT_SEEDS]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        print(f"fuzz: skipped: {', '.join(map(str, missing))} is absent (the real-mail corpus in "
              "../shared is only on development machines; pass --seeds MBOX)")
        return 0
    seeds = Seeds.load(paths)
    print(f"seeds: {len(seeds.mails)} mails, {len(seeds.diffs)} diffs from "
          f"{', '.join(p.name for p in paths)}", flush=True)

    if args.case is not None:
        case = make_case(seeds, args.seed, args.case, args.scale)
        print(f"case {args.case}: mutations {case.mutations}, {len(case.mails)} mails")
        if args.dump:
            args.dump.write_bytes(case.mbox() if case.mails else "\n".join(t for _, t in case.api).encode("utf-8", "surrogatepass"))
            print(f"wrote {args.dump}")
        start = time.perf_counter()
        run_case(case)  # let the traceback show
        print(f"no exception ({time.perf_counter() - start:.3f} s)")
        return 0

    if args.cli:
        start = time.perf_counter()
        outcomes = run_cli(seeds, args.seed, args.cli, args.per_file, args.command, args.timeout * 6)
        print(f"cli: {args.cli} files of {args.per_file} mutated mails, reviewbot {args.command}, "
              f"{time.perf_counter() - start:.0f} s: "
              + ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())))
        return 1 if any("traceback" in o or o in ("exit 3", "timeout") for o in outcomes) else 0

    def progress(summary: Summary) -> None:
        print(f"  ... {summary.cases} cases, {summary.crash_count} crashes, "
              f"{len(summary.hangs)} hangs, {summary.seconds:.0f} s", file=sys.stderr, flush=True)

    summary = run_many(seeds, args.seed, args.count, args.jobs, args.timeout, args.memory,
                       args.first, progress, args.scale)
    for line in format_summary(summary, args.seed, args.jobs, args.timeout, args.memory):
        print(line)
    return 1 if summary.crashes or summary.hangs else 0


if __name__ == "__main__":
    sys.exit(main())
