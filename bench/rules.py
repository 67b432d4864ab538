"""Speed and memory of the rules next to checkpatch.pl, on the real corpus, in one run.

Three figures, printed side by side:

1. per patch, in process: the rules stage (hunks mode, Coccinelle off) on each patch of
   ../shared/corpus/real, best of --repeat runs, next to
   ``scripts/checkpatch.pl --no-tree -q --terse`` of the 6.1 tree on the same file;
2. whole processes: ``reviewbot review --no-tree --format json DIR`` once over a folder of
   the patches, against checkpatch.pl run once per patch (what a CI does with each);
3. peak memory (max RSS) of ``reviewbot review --no-tree DIR`` over folders of 1x and 4x
   the corpus (copies with distinct Message-IDs): it must not grow with the folder.

4. one huge function (``--sizes 1000,10000,100000``): a patch adding one function of N lines
   of branches, locks and css references, reviewed by ``reviewbot review --no-tree`` in a
   child process: seconds and peak memory per size, and the time per line, which must not
   grow with N (issue 12: the engines were quadratic; ``--sizes ""`` skips it).

Usage: python bench/rules.py [CORPUS_DIR] [--linux DIR] [--repeat N] [--copies N] [--sizes N,N]
Target (issue 4): rules at most a tenth of checkpatch's time per patch.
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reviewbot.config import RulesSettings, Settings  # noqa: E402
from reviewbot.engine.stage import rules_stage  # noqa: E402
from reviewbot.mail import read_series  # noqa: E402
from reviewbot.pipeline import ReviewOptions, ReviewState  # noqa: E402

DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "real"
# checkpatch.pl comes from the tree `reviewbot tree init` imported (any 6.1 tree will do).
_env_linux = os.environ.get("REVIEWBOT_LINUX_SRC")
DEFAULT_LINUX = Path(_env_linux) if _env_linux else Settings().path(Settings().tree.path)


def _checkpatch(linux: Path, patch: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [str(linux / "scripts" / "checkpatch.pl"), "--no-tree", "-q", "--terse", str(patch)],
        cwd=tempfile.gettempdir(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
    )
    return time.perf_counter() - start


def _child_run(argv: list[str]) -> tuple[float, int]:
    """Wall time and max RSS (KiB) of one child process, measured by a fresh helper."""
    helper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run([sys.executable, "-c", helper, *argv], capture_output=True, text=True,
                         check=True, cwd=REPO)
    seconds, rss = out.stdout.split()
    return float(seconds), int(rss)


def _copy_corpus(patches: list[Path], dest: Path, copies: int) -> None:
    """Copies with distinct Message-IDs, so that series assembly keeps them apart."""
    dest.mkdir(parents=True, exist_ok=True)
    for n in range(copies):
        for p in patches:
            text = p.read_text(encoding="utf-8", errors="replace")
            if re.search(r"(?im)^message-id:", text):
                text = re.sub(r"(?im)^(message-id:\s*<)([^>]+)>", rf"\g<1>bench{n}.\g<2>>", text, count=1)
            else:
                text = f"Message-ID: <bench{n}.{p.stem}@bench.invalid>\n" + text
            (dest / f"{n:02d}-{p.name}").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", nargs="?", type=Path, default=DEFAULT_CORPUS)
    ap.add_argument("--linux", type=Path, default=DEFAULT_LINUX)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--copies", type=int, default=4, help="size of the large folder for memory")
    ap.add_argument("--sizes", default="1000,10000,100000",
                    help="lines of the huge-function patches (comma-separated; empty: skip)")
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    if sizes:
        bench_sizes(sizes)
    patches = sorted(args.corpus.glob("*.patch"))
    if not patches:
        print(f"bench: no patches in {args.corpus} (needs ../shared/corpus/real); skipped")
        return 0
    checkpatch = args.linux / "scripts" / "checkpatch.pl"
    if not checkpatch.is_file():
        print(f"bench: {checkpatch} not found; skipped")
        return 0
    settings = Settings(rules=RulesSettings(coccinelle=False))
    options = ReviewOptions(use_tree=False)
    series = {p: read_series([p], settings).series for p in patches}
    for ss in series.values():  # warm up: rule loading, tree-sitter, regex caches
        for s in ss:
            rules_stage(s, ReviewState(), settings, options)

    print(f"{'patch':44} {'rules ms':>9} {'checkpatch ms':>14} {'ratio':>7}")
    rules_ms: list[float] = []
    cp_ms: list[float] = []
    for p in patches:
        best = min(
            _timed(lambda s=s: [rules_stage(x, ReviewState(), settings, options) for x in s])
            for s in [series[p]] * args.repeat
        )
        cp = min(_checkpatch(args.linux, p) for _ in range(args.repeat))
        rules_ms.append(best * 1000)
        cp_ms.append(cp * 1000)
        print(f"{p.name[:44]:44} {best * 1000:9.1f} {cp * 1000:14.1f} {cp / best if best else 0:6.0f}x")
    print(f"{'mean':44} {statistics.mean(rules_ms):9.1f} {statistics.mean(cp_ms):14.1f} "
          f"{statistics.mean(cp_ms) / statistics.mean(rules_ms):6.0f}x")
    print(f"{'median':44} {statistics.median(rules_ms):9.1f} {statistics.median(cp_ms):14.1f}")
    print(f"rules per patch = {statistics.mean(rules_ms) / statistics.mean(cp_ms):.1%} of checkpatch"
          " (target <= 10%)")

    # Time reviewbot as installed (setup.sh byte-compiles): with PYTHONDONTWRITEBYTECODE set,
    # an edited module would otherwise be recompiled from source in every timed process.
    compileall.compile_dir(str(REPO / "reviewbot"), quiet=1)
    with tempfile.TemporaryDirectory(prefix="reviewbot-bench-") as tmp:
        small, large = Path(tmp) / "x1", Path(tmp) / f"x{args.copies}"
        _copy_corpus(patches, small, 1)
        _copy_corpus(patches, large, args.copies)
        # --all-versions: the copies look like newer versions of each other; review them all.
        cmd = [sys.executable, "-m", "reviewbot", "review", "--no-tree", "--all-versions", "--format", "json"]
        t1, rss1 = _child_run([*cmd, str(small)])
        tn, rssn = _child_run([*cmd, str(large)])
        cp_total = sum(_checkpatch(args.linux, p) for p in sorted(small.iterdir()))
        n1, nn = len(patches), len(patches) * args.copies
        print()
        print("whole processes (one `reviewbot review --no-tree DIR` vs checkpatch once per patch):")
        print(f"  reviewbot review, {n1} patches: {t1:6.2f} s ({t1 / n1 * 1000:6.1f} ms/patch)")
        print(f"  checkpatch.pl x{n1}:            {cp_total:6.2f} s ({cp_total / n1 * 1000:6.1f} ms/patch)"
              f"  -> reviewbot = {t1 / cp_total:.1%}")
        print(f"  reviewbot review, {nn} patches: {tn:6.2f} s ({tn / nn * 1000:6.1f} ms/patch)")
        print("peak memory (max RSS) of reviewbot review --no-tree DIR:")
        print(f"  {n1:4d} patches: {rss1 / 1024:6.1f} MiB")
        print(f"  {nn:4d} patches: {rssn / 1024:6.1f} MiB  (growth {(rssn - rss1) / 1024:+.1f} MiB)")
        shutil.rmtree(tmp, ignore_errors=True)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"(this benchmark process: max RSS {own / 1024:.1f} MiB)")
    return 0


def huge_function_patch(lines: int) -> str:
    """A patch that adds one function of about ``lines`` lines: blocks of a branch, a lock,
    a css reference taken and dropped; every path through it is a different state."""
    body: list[str] = []
    i = 0
    while len(body) < lines - 20:  # the whole diff stays within mail.max_patch_lines
        body += [f"\tif (nr > {i}) {{", "\t\tspin_lock(&memcg->move_lock);",
                 "\t\tcss_get(&memcg->css);", f"\t\ttotal += nr * {i};",
                 "\t\tspin_unlock(&memcg->move_lock);", "\t\tcss_put(&memcg->css);", "\t}"]
        i += 1
    fn = ["static int huge_fn(struct mem_cgroup *memcg, int nr)", "{", "\tint total = 0;", "",
          *body, "\treturn total;", "}"]
    return (f"From: Bench <bench@example.org>\nSubject: [PATCH] mm: a function of {lines} lines\n"
            f"Message-ID: <huge-{lines}@example.org>\nDate: Sun, 6 Dec 2026 10:00:00 +0000\n\n"
            "A benchmark.\n\nSigned-off-by: Bench <bench@example.org>\n---\n"
            "diff --git a/mm/huge.c b/mm/huge.c\nnew file mode 100644\nindex 0000000..1111111\n"
            f"--- /dev/null\n+++ b/mm/huge.c\n@@ -0,0 +1,{len(fn)} @@\n"
            + "".join(f"+{line}\n" for line in fn))


def bench_sizes(sizes: list[int]) -> None:
    print("one huge function (`reviewbot review --no-tree` in a child process):")
    print(f"  {'lines':>8} {'seconds':>9} {'us/line':>8} {'max RSS MiB':>12}")
    with tempfile.TemporaryDirectory(prefix="reviewbot-huge-") as tmp:
        for n in sizes:
            path = Path(tmp) / f"huge-{n}.patch"
            path.write_text(huge_function_patch(n))
            seconds, rss = _child_run([sys.executable, "-m", "reviewbot", "review", "--no-tree",
                                       "--format", "json", str(path)])
            print(f"  {n:8d} {seconds:9.2f} {seconds / n * 1e6:8.0f} {rss / 1024:12.1f}")
    print()


def _timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


if __name__ == "__main__":
    raise SystemExit(main())
