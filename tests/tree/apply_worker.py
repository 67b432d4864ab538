"""Run by the concurrency and cleanup tests in a child process (python apply_worker.py ...).

Applies one mbox with the tree stage, keeps the worktree locked for ``hold`` seconds (as the
build and boot stages would), checking all the while that the worktree still holds its own
series, then releases - in a ``finally``, as the pipeline does - and writes a JSON report.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

from reviewbot.config import Settings, TreeSettings
from reviewbot.mail import read_series
from reviewbot.pipeline import ReviewOptions, ReviewState
from reviewbot.tree.stage import apply_stage


def main() -> None:
    # A shell without job control starts background commands with SIGINT ignored, and
    # Python then installs no KeyboardInterrupt handler: the Ctrl-C test would find this
    # worker deaf when the suite itself runs in the background (nohup ... &).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tree, worktrees, mbox, hold, marker, report, slots = sys.argv[1:8]
    settings = Settings(tree=TreeSettings(path=tree, worktrees=worktrees, lock_timeout_s=120.0,
                                          worktrees_per_base=int(slots)))
    series = read_series([mbox], settings).series[0]
    state = ReviewState()
    out: dict[str, object] = {"started": time.time()}
    try:
        outcome = apply_stage(series, state, settings, ReviewOptions())
        out.update(applied=time.time(), status=outcome.status, data=outcome.json())
        Path(report + ".applied").write_text("1")
        consistent = True
        end = time.monotonic() + float(hold)
        while time.monotonic() < end:
            text = (Path(str(state.worktree)) / "mm/memcontrol.c").read_text()
            consistent &= marker in text
            time.sleep(0.05)
        out["consistent"] = consistent
    finally:
        for fn in reversed(state.release):
            fn()
        out["released"] = time.time()
        Path(report).write_text(json.dumps(out))


if __name__ == "__main__":
    main()
