"""Parse speed and peak memory: reviewbot reading a whole list year vs b4 am on the same file.

Both run as child processes in the same run, on the same uncompressed mbox, so that start-up
costs and memory are counted alike (peak RSS from getrusage of the child):
  reviewbot  reads every message and assembles every series (``reviewbot series --json``)
  b4         ``b4 am`` cutting one thread out of the file (it must read all of it to do so)
Targets (issue 2): at least 5x b4's speed, and no more peak memory than b4.

Usage: python bench/parse.py [MBOX(.gz)] [--repeat N]
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from b4_compare import b4_executable  # noqa: E402

DEFAULT_MBOX = REPO.parent / "shared" / "corpus" / "cgroups-2020.mbox.gz"


def run_child(argv: list[str], cwd: Path) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, returncode) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    return wall, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def first_msgid(mbox: Path) -> str:
    """A patch Message-ID from the middle of the file for b4 to cut out."""
    sys.path.insert(0, str(REPO))
    from reviewbot.config import Settings
    from reviewbot.mail import read_series

    found = read_series([mbox], Settings())
    multi = [s for s in found.series if len(s.patches) > 2]
    pick = multi[len(multi) // 2] if multi else found.series[0]
    return pick.patches[0].message_id


def count_messages(mbox: Path) -> int:
    with mbox.open("rb") as f:
        return sum(1 for line in f if line.startswith(b"From mboxrd@z") or line.startswith(b"From "))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mbox", nargs="?", type=Path, default=DEFAULT_MBOX)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not args.mbox.exists():
        print(f"skip: {args.mbox} is absent (the real-mail corpus lives in ../shared)")
        return 0
    b4 = b4_executable()
    with tempfile.TemporaryDirectory(prefix="bench-parse-") as tmp:
        work = Path(tmp)
        plain = work / "list.mbox"
        opener = gzip.open if args.mbox.suffix == ".gz" else open
        with opener(args.mbox, "rb") as src, plain.open("wb") as dst:
            shutil.copyfileobj(src, dst)
        n = count_messages(plain)
        size_mb = plain.stat().st_size / 2**20
        subprocess.run(["git", "init", "-q", "."], cwd=work, check=True)
        subprocess.run(["git", "config", "b4.attestation-policy", "off"], cwd=work, check=True)
        msgid = first_msgid(plain)
        assemble = [
            sys.executable, "-c",
            "import sys; from reviewbot.config import Settings; from reviewbot.mail import "
            "read_series; found = read_series([sys.argv[1]], Settings()); "
            "assert found.series", str(plain),
        ]
        cli = [sys.executable, "-m", "reviewbot", "series", "--json", str(plain)]
        theirs = [b4, "--offline-mode", "am", "-m", str(plain), "-o", str(work / "out"), msgid] if b4 else None
        rows = []
        for name, argv in (
            ("b4 am (one thread)", theirs),
            ("reviewbot read+assemble all", assemble),
            ("reviewbot series --json (CLI)", cli),
        ):
            if argv is None:
                print(f"{name}: skipped, b4 is not installed (pip install b4==0.16.*)")
                continue
            runs = [run_child(argv, work) for _ in range(args.repeat)]
            best = min(r[0] for r in runs)
            peak = max(r[1] for r in runs)
            rows.append((name, best, peak, runs[0][2]))
    print(f"input: {args.mbox.name}, {n} messages, {size_mb:.1f} MiB uncompressed; "
          f"best of {args.repeat}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'tool':<32} {'seconds':>8} {'msgs/s':>8} {'peak RSS MiB':>13} {'rc':>3}")
    for name, best, peak, rc in rows:
        print(f"{name:<32} {best:8.2f} {n / best:8.0f} {peak:13.1f} {rc:>3}")
    if len(rows) == 3:
        b4_row, ours_row = rows[0], rows[1]
        print(f"speed: reviewbot reads and assembles all series {b4_row[1] / ours_row[1]:.1f}x "
              f"as fast as b4 cuts one thread (target >= 5x); peak memory {ours_row[2]:.0f} MiB "
              f"vs {b4_row[2]:.0f} MiB (target: not more than b4)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
