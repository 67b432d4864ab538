"""Compare reviewbot's series assembly with ``b4 am`` on every series of an mbox.

For each thread of the input (connected by Message-ID / In-Reply-To / References), every
series reviewbot finds is cut out by ``b4 am -v VERSION MSGID`` from that thread alone
(b4 0.16, offline, attestation off, inside a scratch git repository). Where b4 writes an
.mbx, both must list the same patches (Message-IDs) in the same order with the same
trailers per patch. Differences are printed with the thread so that docs/b4-comparison.md
can give each one its reason.

Usage: python bench/b4_compare.py [MBOX] [--jobs N] [--limit N]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reviewbot.config import Settings  # noqa: E402
from reviewbot.mail.ingest import parse_raw  # noqa: E402
from reviewbot.mail.parse import parse_message, split_body  # noqa: E402
from reviewbot.mail.read import RawMessage, iter_path  # noqa: E402
from reviewbot.mail.series import assemble  # noqa: E402
from reviewbot.mail.trailers import commit_trailers  # noqa: E402
from reviewbot.model import Message, Series  # noqa: E402

DEFAULT_MBOX = REPO.parent / "shared" / "corpus" / "cgroups-2020.mbox.gz"


@dataclass
class Outcome:
    series: str  # "[vN] subject <id>"
    status: str  # same | different | b4-none
    detail: str = ""


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)


def _components(raws: list[tuple[RawMessage, Message]]) -> list[list[int]]:
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for _, msg in raws:
        for other in (msg.in_reply_to, *msg.references):
            if other:
                parent[find(other)] = find(msg.message_id)
        find(msg.message_id)
    groups: dict[str, list[int]] = defaultdict(list)
    for i, (_, msg) in enumerate(raws):
        groups[find(msg.message_id)].append(i)
    return list(groups.values())


def _mboxrd(raws: list[RawMessage]) -> bytes:
    out = []
    for raw in raws:
        body = re.sub(rb"(?m)^(>*From )", rb">\1", raw.data)
        out.append(b"From mboxrd@z Thu Jan  1 00:00:00 1970\n" + body.rstrip(b"\n") + b"\n\n")
    return b"".join(out)


def _b4_patches(mbx: Path) -> list[tuple[str, list[str]]]:
    """(Message-ID, trailer lines) for each patch b4 wrote."""
    result = []
    for raw in iter_path(mbx):
        if not isinstance(raw, RawMessage):
            continue
        msg = parse_message(raw.data)
        commit_message, _ = split_body(msg.body)
        result.append((msg.message_id, [t.line for t in commit_trailers(commit_message)]))
    return result


def _ours(series: Series) -> list[tuple[str, list[str]]]:
    return [(p.message_id, [t.line for t in p.trailers]) for p in series.patches]


def b4_executable() -> str | None:
    """b4 on PATH, else the one pip put beside this interpreter.

    CI and scripts/test.sh run ``.venv/bin/python -m pytest`` without activating the venv,
    so ``.venv/bin`` is not on PATH there although the dev extra installed b4 into it.
    """
    found = shutil.which("b4")
    if found:
        return found
    beside = Path(sys.executable).parent / "b4"
    return str(beside) if beside.is_file() else None


def _run_b4(series: Series, thread: Path, work: Path) -> list[tuple[str, list[str]]] | None:
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    msgid = series.cover.message_id if series.cover else series.patches[0].message_id
    subprocess.run(
        [b4_executable() or "b4", "--offline-mode", "am", "-m", str(thread), "-o", str(out),
         "-v", str(series.version), msgid],
        cwd=work, capture_output=True, timeout=120, check=False,
    )
    mbx = sorted(out.glob("*.mbx")) if out.is_dir() else []
    return _b4_patches(mbx[0]) if mbx else None


def _label(series: Series) -> str:
    return f"[v{series.version}] {series.subject} <{series.series_id}>"


def compare(mbox: Path, jobs: int = 2, limit: int | None = None) -> Report:
    settings = Settings()
    start = time.monotonic()
    raws: list[tuple[RawMessage, Message]] = []
    for raw in iter_path(mbox):
        if isinstance(raw, RawMessage):
            parsed = parse_raw(raw, settings.mail)
            if isinstance(parsed, Message):
                raws.append((raw, parsed))
    tasks: list[tuple[Series, bytes]] = []
    for component in _components(raws):
        found = assemble((raws[i][1] for i in component), settings.mail)
        if found.series:
            data = _mboxrd([raws[i][0] for i in component])
            tasks.extend((s, data) for s in found.series)
    if limit:
        tasks = tasks[:limit]
    report = Report()

    def one(task: tuple[Series, bytes]) -> Outcome:
        series, data = task
        with tempfile.TemporaryDirectory(prefix="b4cmp-") as tmp:
            work = Path(tmp)
            subprocess.run(["git", "init", "-q", "."], cwd=work, check=True)
            subprocess.run(["git", "config", "b4.attestation-policy", "off"], cwd=work, check=True)
            thread = work / "thread.mbox"
            thread.write_bytes(data)
            theirs = _run_b4(series, thread, work)
        if theirs is None:
            return Outcome(_label(series), "b4-none")
        ours = _ours(series)
        if ours == theirs:
            return Outcome(_label(series), "same")
        return Outcome(_label(series), "different", _describe(ours, theirs))

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        report.outcomes = list(pool.map(one, tasks))
    report.seconds = time.monotonic() - start
    return report


def _describe(ours: list[tuple[str, list[str]]], theirs: list[tuple[str, list[str]]]) -> str:
    lines = []
    if [m for m, _ in ours] != [m for m, _ in theirs]:
        lines.append(f"  patches: reviewbot {[m for m, _ in ours]}")
        lines.append(f"           b4        {[m for m, _ in theirs]}")
    theirs_by_id = dict(theirs)
    for msgid, trailers in ours:
        other = theirs_by_id.get(msgid)
        if other is not None and other != trailers:
            lines.append(f"  trailers of <{msgid}>:")
            lines.extend(f"    - {t}" for t in trailers if t not in other)
            lines.extend(f"    + {t}" for t in other if t not in trailers)
            if set(other) == set(trailers):
                lines.append("    (same set, different order)")
                lines.extend(f"    reviewbot: {t}" for t in trailers)
                lines.extend(f"    b4:        {t}" for t in other)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mbox", nargs="?", type=Path, default=DEFAULT_MBOX)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    if not args.mbox.exists():
        print(f"skip: {args.mbox} is absent (the real-mail corpus lives in ../shared)")
        return 0
    if b4_executable() is None:
        print("skip: b4 is not installed (pip install b4==0.16.*)")
        return 0
    report = compare(args.mbox, args.jobs, args.limit)
    for o in report.outcomes:
        if o.status == "different":
            print(f"DIFFERENT {o.series}\n{o.detail}")
    print(
        f"{len(report.outcomes)} series: {report.count('same')} same as b4, "
        f"{report.count('different')} different, {report.count('b4-none')} not accepted by b4 "
        f"({report.seconds:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
