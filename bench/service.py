#!/usr/bin/env python3
"""Webhook benchmark: acknowledgement latency at a fixed rate, and the server's memory.

Starts ``reviewbot serve`` (and, unless --no-worker, one ``reviewbot worker`` reviewing
rules-only at the same time, as in production) on loopback with a throwaway state folder,
then posts signed mails open-loop at --rate per second for --seconds: each request is sent
on its own connection at its scheduled time, whatever the previous one is doing, so a slow
answer shows up as latency instead of silently lowering the rate (coordinated omission).
Latency is measured by the client, from send to the 202 (the mail committed and fsynced).
The server's resident memory is sampled from /proc every 0.2 s.

Mail: real messages from ../shared/corpus/cgroups-2020.mbox.gz when present (patches,
covers and replies as the list carried them), else made-up series of five mails.

Targets (issue 6): p99 under 50 ms at 50 mails/s; server RSS under 200 MB.

Usage: python bench/service.py [--rate 50] [--seconds 30] [--no-worker] [--postgres]
                               [--json] [--check]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus" / "cgroups-2020.mbox.gz"
SECRET = "bench-secret"
TARGET_P99_MS = 50.0
TARGET_RSS_MB = 200.0

sys.path.insert(0, str(REPO))


def corpus_mails(path: Path, limit: int) -> list[bytes]:
    """Up to ``limit`` messages of an mboxrd file, ">From " unquoted."""
    out: list[bytes] = []
    lines: list[bytes] = []
    with gzip.open(path, "rb") as fh:
        for line in fh:
            if line.startswith(b"From ") and (not lines or lines[-1] == b"\n"):
                if lines:
                    out.append(b"".join(lines))
                    if len(out) >= limit:
                        return out
                lines = []
                continue
            if line.startswith(b">") and line.lstrip(b">").startswith(b"From "):
                line = line[1:]
            lines.append(line)
    if lines:
        out.append(b"".join(lines))
    return out


def made_up_mails(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        series, part = divmod(i, 5)
        msgid = f"bench-{series}-{part}@example.org"
        refs = "" if part == 0 else f"In-Reply-To: <bench-{series}-0@example.org>\n" \
            f"References: <bench-{series}-0@example.org>\n"
        body = f"Patch {part}.\n\nSigned-off-by: B <b@example.org>\n---\n" + (
            "diff --git a/mm/memcontrol.c b/mm/memcontrol.c\n--- a/mm/memcontrol.c\n"
            "+++ b/mm/memcontrol.c\n@@ -1,3 +1,4 @@\n a\n b\n"
            f"+\tcss_get(&memcg->css); /* {i} */\n c\n"
        ) if part else "Cover letter.\n"
        out.append(
            (
                f"From: B <b@example.org>\nSubject: [PATCH {part}/4] mm: bench {series}\n"
                f"Message-ID: <{msgid}>\n{refs}Date: Mon, 2 Nov 2026 09:00:00 +0000\n\n{body}"
            ).encode()
        )
    return out


def unique(mails: list[bytes], run: str) -> list[bytes]:
    """Make every Message-ID new for this run, so each post is a first delivery (202)."""
    import re

    pat = re.compile(rb"<([^<>\s@]+)@([^<>\s]+)>")
    return [pat.sub(lambda m: b"<" + m.group(1) + b"." + run.encode() + b"@" + m.group(2)
                    + b">", raw) for raw in mails]


def start_postgres(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """initdb + postgres on a loopback port, as the postgres user when run as root."""
    import shutil

    def binary(name: str) -> str:
        found = shutil.which(name) or next(
            (str(p / name) for p in sorted(Path("/usr/lib/postgresql").glob("*/bin"))
             if (p / name).exists()), None)
        if not found:
            sys.exit(f"bench: {name} not found (apt-get install postgresql)")
        return found

    base = tmp / "pg"
    base.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:
        import pwd

        pw = pwd.getpwnam("postgres")
        os.chmod(tmp, 0o755)
        os.chown(base, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    subprocess.run([*prefix, binary("initdb"), "-D", str(base / "data"), "-U", "reviewbot",
                    "--auth=trust"], check=True, capture_output=True)
    proc = subprocess.Popen(
        [*prefix, binary("postgres"), "-D", str(base / "data"), "-p", str(port), "-h",
         "127.0.0.1", "-k", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"postgresql://reviewbot@127.0.0.1:{port}/postgres"
    import psycopg

    for _ in range(100):
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return proc, url
        except psycopg.OperationalError:
            time.sleep(0.2)
    sys.exit("bench: PostgreSQL did not start")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    rss = hwm = 0.0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    except OSError:
        pass
    return rss, hwm


def percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(p / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=50.0, help="mails per second")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--no-worker", action="store_true", help="measure the server alone")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    ap.add_argument("--postgres", action="store_true",
                    help="store in a throwaway PostgreSQL (initdb + postgres on loopback)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()

    import requests

    from reviewbot.service.auth import signed_headers

    total = int(args.rate * args.seconds)
    source = "made-up"
    if args.corpus.exists():
        mails = corpus_mails(args.corpus, total)
        source = f"{args.corpus.name} ({len(mails)} messages)"
    else:
        mails = made_up_mails(total)
    mails = unique((mails * (total // max(1, len(mails)) + 1))[:total], str(os.getpid()))
    sizes = sorted(len(m) for m in mails)

    tmp = Path(tempfile.mkdtemp(prefix="reviewbot-bench-"))
    pg: subprocess.Popen[bytes] | None = None
    database = ""
    if args.postgres:
        pg, database = start_postgres(tmp)
    (tmp / "config.yaml").write_text(
        "service:\n  use_tree: false\n  sweep_interval_s: 5.0\n"
        f"  database_url: '{database}'\n"
        "mail:\n  compute_patch_id: false\n"
    )
    env = dict(os.environ, REVIEWBOT_CONFIG=str(tmp / "config.yaml"),
               REVIEWBOT_WEBHOOK_SECRET=SECRET, XDG_STATE_HOME=str(tmp / "state"),
               XDG_CACHE_HOME=str(tmp / "cache"), XDG_DATA_HOME=str(tmp / "data"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    logs = open(tmp / "service.log", "wb")  # noqa: SIM115
    server = subprocess.Popen([sys.executable, "-m", "reviewbot", "serve", "--port", str(port)],
                              env=env, stdout=logs, stderr=subprocess.STDOUT, cwd=tmp)
    procs = [server]
    if not args.no_worker:
        procs.append(subprocess.Popen([sys.executable, "-m", "reviewbot", "worker"], env=env,
                                      stdout=logs, stderr=subprocess.STDOUT, cwd=tmp))
    try:
        deadline = time.time() + 30
        while True:
            try:
                if requests.get(url + "/healthz", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            if time.time() > deadline or server.poll() is not None:
                print((tmp / "service.log").read_text()[-3000:], file=sys.stderr)
                return 3
            time.sleep(0.1)
        idle_rss, _ = rss_mb(server.pid)

        samples: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.2):
                samples.append(rss_mb(server.pid)[0])

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        lock = threading.Lock()
        key = SECRET.encode()

        def post(raw: bytes) -> None:
            headers = {"Content-Type": "message/rfc822", **signed_headers(key, raw)}
            t0 = time.perf_counter()
            try:
                # A new connection per mail, as `reviewbot deliver` from an MTA makes.
                status = requests.post(url + "/v1/mail", data=raw, headers=headers,
                                       timeout=10).status_code
            except requests.RequestException:
                status = 0
            dt = time.perf_counter() - t0
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status in (200, 202):
                    latencies.append(dt)

        start = time.perf_counter()
        late = 0
        with ThreadPoolExecutor(max_workers=32) as pool:
            for i, raw in enumerate(mails):
                due = start + i / args.rate
                wait = due - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                elif wait < -0.005:
                    late += 1
                pool.submit(post, raw)
        elapsed = time.perf_counter() - start
        stop.set()
        sampler.join()
        _, hwm = rss_mb(server.pid)
        lat = sorted(latencies)
        result: dict[str, Any] = {
            "mails": len(mails),
            "source": source,
            "mail_bytes_p50": percentile([float(s) for s in sizes], 50),
            "mail_bytes_max": sizes[-1],
            "rate_target": args.rate,
            "rate_achieved": round(len(mails) / elapsed, 1),
            "sends_late_over_5ms": late,
            "worker_running": not args.no_worker,
            "store": "postgresql" if args.postgres else "sqlite",
            "statuses": statuses,
            "ack_ms_p50": round(percentile(lat, 50) * 1000, 2),
            "ack_ms_p90": round(percentile(lat, 90) * 1000, 2),
            "ack_ms_p99": round(percentile(lat, 99) * 1000, 2),
            "ack_ms_max": round(lat[-1] * 1000, 2) if lat else None,
            "server_rss_mb_idle": round(idle_rss, 1),
            "server_rss_mb_max_sampled": round(max(samples, default=idle_rss), 1),
            "server_rss_mb_peak_hwm": round(hwm, 1),
        }
        ok = (result["ack_ms_p99"] < TARGET_P99_MS and hwm < TARGET_RSS_MB
              and statuses.get(202, 0) + statuses.get(200, 0) == len(mails))
        result["targets"] = {"p99_ms": TARGET_P99_MS, "rss_mb": TARGET_RSS_MB, "met": ok}
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(f"mails:     {len(mails)} from {source}, median {result['mail_bytes_p50']:.0f}"
                  f" bytes, max {sizes[-1]} bytes")
            print(f"rate:      {result['rate_achieved']}/s (target {args.rate}/s), worker "
                  f"{'running' if not args.no_worker else 'off'}, store {result['store']}; "
                  f"answers {statuses}")
            print(f"ack:       p50 {result['ack_ms_p50']} ms, p90 {result['ack_ms_p90']} ms, "
                  f"p99 {result['ack_ms_p99']} ms, max {result['ack_ms_max']} ms "
                  f"(target p99 < {TARGET_P99_MS:.0f} ms)")
            print(f"server:    RSS idle {result['server_rss_mb_idle']} MB, peak "
                  f"{result['server_rss_mb_peak_hwm']} MB (target < {TARGET_RSS_MB:.0f} MB)")
            print(f"targets:   {'met' if ok else 'MISSED'}")
        return 1 if args.check and not ok else 0
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if pg is not None:
            import signal

            os.killpg(pg.pid, signal.SIGINT)
            pg.wait(timeout=30)
        logs.close()
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
