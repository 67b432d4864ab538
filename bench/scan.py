#!/usr/bin/env python3
"""Scan benchmark: throughput, a second scan with nothing new, and memory at 1x vs Nx.

Turns ../shared/corpus/cgroups-2020.mbox.gz into a public-inbox v2 inbox (one commit per
message, the file ``m``, as lore's epochs are; built with ``git fast-import`` because
public-inbox-mda takes ~0.2 s per message) and an N-times larger one (the year repeated
with rewritten Message-IDs, marked subjects and dates moved on by a year per copy), cached under
``~/.cache/reviewbot/bench``. Every scan runs as its own ``reviewbot scan`` process so
that its peak RSS (``wait4``) is measured alone. The in-memory contrast is
``reviewbot series`` on the same mail, which holds every message at once.

Targets (issue 6): the year rules-only in under 30 s; a second scan with nothing new in
under 1 s; memory flat as the archive grows.

Usage: python bench/scan.py [--scale N] [--corpus FILE] [--json]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime, parseaddr, parsedate_to_datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "cgroups-2020.mbox.gz"
_MSGID = re.compile(rb"<([^<>\s]+)@([^<>\s]+)>")


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "reviewbot" / "bench"


def split_mbox(path: Path) -> Iterator[bytes]:
    """Messages of an mboxrd file (gzip or not), ">From " unquoted."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        lines: list[bytes] = []
        for line in fh:
            if line.startswith(b"From ") and (not lines or lines[-1] == b"\n"):
                if lines:
                    yield b"".join(lines)
                lines = []
                continue
            if re.match(rb"^>+From ", line):
                line = line[1:]
            lines.append(line)
        if lines:
            yield b"".join(lines)


def copy_of(raw: bytes, n: int) -> bytes:
    """Copy N of a message: ids made unique, dates moved on by N years, subjects marked
    (headers only). The subject mark keeps each copy's series content new: a scan knows
    series by content (Series.content_key), and a copy that only changed ids would be a
    RESEND it rightly skips."""
    if n == 0:
        return raw
    head, sep, body = raw.partition(b"\n\n")
    out = []
    for line in head.split(b"\n"):
        low = line[:20].lower()
        if low.startswith((b"message-id:", b"in-reply-to:", b"references:", b"\t", b" ")):
            line = _MSGID.sub(lambda m: b"<" + m.group(1) + b".c%d@" % n + m.group(2) + b">",
                              line)
        elif low.startswith(b"subject:"):
            line += b" c%d" % n
        elif low.startswith(b"date:"):
            try:
                when = parsedate_to_datetime(line[5:].decode().strip())
                line = b"Date: " + format_datetime(when + timedelta(days=366 * n)).encode()
            except (TypeError, ValueError, IndexError):
                pass
        out.append(line)
    return b"\n".join(out) + sep + body


def _header(raw: bytes, name: bytes) -> str:
    for line in raw.partition(b"\n\n")[0].split(b"\n"):
        if line.lower().startswith(name.lower() + b":"):
            return line.split(b":", 1)[1].decode("utf-8", "replace").strip()
    return ""


def build_inbox(dest: Path, messages: Iterator[bytes]) -> int:
    """A v2 inbox at DEST (git/0.git), one commit per message, via git fast-import."""
    epoch = dest / "git" / "0.git"
    epoch.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "--bare", str(epoch)], check=True)
    subprocess.run(["git", f"--git-dir={epoch}", "symbolic-ref", "HEAD", "refs/heads/master"],
                   check=True)
    proc = subprocess.Popen(["git", f"--git-dir={epoch}", "fast-import", "--quiet"],
                            stdin=subprocess.PIPE)
    assert proc.stdin is not None
    count = 0
    stamp = 1577836800  # 2020-01-01: commit times only need to be increasing
    for raw in messages:
        count += 1
        name, addr = parseaddr(_header(raw, b"From"))
        name = re.sub(r"[<>\n]", "", name) or addr or "unknown"
        subject = _header(raw, b"Subject").encode() or b"(no subject)"
        stamp += 1
        parts = [
            b"commit refs/heads/master\n",
            f"author {name} <{addr or 'unknown'}> {stamp} +0000\n".encode(),
            f"committer public-inbox <public-inbox@localhost> {stamp} +0000\n".encode(),
            b"data %d\n" % len(subject), subject, b"\n",
        ]
        parts += [b"M 100644 inline m\n", b"data %d\n" % len(raw), raw, b"\n"]
        proc.stdin.write(b"".join(parts))
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit(f"git fast-import failed for {dest}")
    return count


def ensure_inbox(corpus: Path, scale: int) -> tuple[Path, int]:
    dest = cache_dir() / f"{corpus.name.split('.')[0]}-x{scale}-v2"  # v2: marked subjects
    marker = dest / "bench-built.json"
    want = {"corpus": str(corpus), "size": corpus.stat().st_size, "scale": scale}
    if marker.is_file() and json.loads(marker.read_text()).get("key") == want:
        return dest, int(json.loads(marker.read_text())["messages"])
    if dest.exists():
        subprocess.run(["rm", "-rf", str(dest)], check=True)
    start = time.monotonic()
    count = build_inbox(dest, (copy_of(m, n) for n in range(scale) for m in split_mbox(corpus)))
    marker.write_text(json.dumps({"key": want, "messages": count}))
    print(f"built {dest} ({count} messages) in {time.monotonic() - start:.1f} s",
          file=sys.stderr)
    return dest, count


def run_measured(argv: list[str]) -> tuple[float, float, str]:
    """Run ARGV; return (seconds, peak RSS in MB, stdout)."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    out, err = proc.stdout.read(), proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"{' '.join(argv)} exited {code}:\n{err.decode()[-3000:]}")
    return seconds, usage.ru_maxrss / 1024.0, out.decode()


def scan(source: Path, state: Path, rules: Path | None) -> dict[str, object]:
    argv = [sys.executable, "-m", "reviewbot", "scan", str(source), "--state-dir", str(state),
            "--format", "json", "--no-progress"]
    if rules is not None:
        argv += ["--rules", str(rules)]
    seconds, rss, out = run_measured(argv)
    report = json.loads(out)
    return {"seconds": round(seconds, 2), "rss_mb": round(rss, 1),
            "messages": report["messages"]["read"],
            "msgs_per_s": round(report["messages"]["read"] / seconds, 1) if seconds else 0,
            "series": report["series"]["reviewed"],
            "findings": report["findings"]["total"],
            "buffer_peak": report["series"]["buffer_peak"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--scale", type=int, default=10, help="size of the larger archive")
    parser.add_argument("--rules", type=Path, help="rule folder (default: the shipped rules)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--no-contrast", action="store_true",
                        help="skip the in-memory `reviewbot series` contrast")
    args = parser.parse_args()
    if not args.corpus.is_file():
        print(f"SKIP: {args.corpus} is absent (needs ../shared/corpus)", file=sys.stderr)
        return 0
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="reviewbot-bench-") as tmp:
        for scale in (1, args.scale):
            inbox, count = ensure_inbox(args.corpus, scale)
            state = Path(tmp) / f"state-x{scale}"
            first = scan(inbox, state, args.rules)
            row: dict[str, object] = {"archive_messages": count, "first_scan": first}
            if scale == 1:
                row["second_scan"] = scan(inbox, state, args.rules)
                if not args.no_contrast:
                    seconds, rss, _ = run_measured(
                        [sys.executable, "-m", "reviewbot", "series", str(args.corpus),
                         "--json"])
                    row["in_memory_series_x1"] = {"seconds": round(seconds, 2),
                                                  "rss_mb": round(rss, 1)}
            figures[f"x{scale}"] = row
    one, big = figures["x1"], figures[f"x{args.scale}"]
    assert isinstance(one, dict) and isinstance(big, dict)
    verdict = {
        "year_under_30s": one["first_scan"]["seconds"] < 30,
        "second_scan_under_1s": one["second_scan"]["seconds"] < 1,
        "memory_ratio": round(big["first_scan"]["rss_mb"] / one["first_scan"]["rss_mb"], 2),
    }
    figures["verdict"] = verdict
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{'archive':<10}{'msgs':>8}{'scan s':>9}{'msgs/s':>9}{'RSS MB':>9}"
          f"{'buffer':>8}{'series':>8}{'findings':>9}")
    for name, row in figures.items():
        if name == "verdict" or not isinstance(row, dict):
            continue
        for label in ("first_scan", "second_scan"):
            r = row.get(label)
            if isinstance(r, dict):
                tag = name if label == "first_scan" else f"{name} again"
                print(f"{tag:<10}{r['messages']:>8}{r['seconds']:>9}{r['msgs_per_s']:>9}"
                      f"{r['rss_mb']:>9}{r['buffer_peak']:>8}{r['series']:>8}{r['findings']:>9}")
    contrast = one.get("in_memory_series_x1")
    if isinstance(contrast, dict):
        print(f"contrast: `reviewbot series` on the x1 mbox (all in memory): "
              f"{contrast['seconds']} s, {contrast['rss_mb']} MB")
    print(f"year < 30 s: {verdict['year_under_30s']}; second scan < 1 s: "
          f"{verdict['second_scan_under_1s']}; RSS x{args.scale}/x1: {verdict['memory_ratio']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
