"""Files of a base read from git by one long-lived ``git cat-file --batch``.

Reviewing a patch that did not apply reads each touched file of the nearest base; one
``git show`` per file costs a fork of a large process (3 ms on these machines, a third of
the rules' time over a year of the list). One reader per repository answers all of them,
and keeps the last files read (a series touches the same files patch after patch).
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections import OrderedDict
from functools import lru_cache
from pathlib import Path

from reviewbot.errors import InfraError
from reviewbot.gitcmd import cat_file_answer, git_popen

# Files kept, bounded by count and by size (the big cgroup files are 200-300 KB each, most
# files far less): a series is placed by reading each file it touches in every base, so
# three bases need three times the files of one, and a worker reviews series after series
# that touch the same files.
MAX_CACHED = 512
MAX_CACHED_CHARS = 24 * 1024 * 1024
MAX_BLOB = 8 * 1024 * 1024  # a source file larger than this is not read


class BlobReader:
    def __init__(self, repo: Path) -> None:
        self.repo = repo
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = 0  # the process that started `proc`: a forked child starts its own
        self.cache: OrderedDict[str, str | None] = OrderedDict()
        self.cached_chars = 0

    def _start(self) -> subprocess.Popen[bytes]:
        self.proc = git_popen(["cat-file", "--batch"], cwd=self.repo, stdin=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
        self.pid = os.getpid()
        return self.proc

    def read(self, rev: str, path: str) -> str | None:
        """The text of ``rev:path`` (None when there is no such file)."""
        spec = f"{rev}:{path}"
        if "\n" in spec:
            return None  # a path from a diff never holds one; cat-file would misread it
        with self.lock:
            if spec in self.cache:
                self.cache.move_to_end(spec)
                return self.cache[spec]
            text = self._ask(spec)
            self.cache[spec] = text
            self.cached_chars += len(text or "")
            while len(self.cache) > MAX_CACHED or \
                    (self.cached_chars > MAX_CACHED_CHARS and len(self.cache) > 1):
                _, old = self.cache.popitem(last=False)
                self.cached_chars -= len(old or "")
            return text

    def _ask(self, spec: str) -> str | None:
        proc = self.proc if self.proc is not None and self.pid == os.getpid() and \
            self.proc.poll() is None else self._start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(spec.encode() + b"\n")
            proc.stdin.flush()
            answer = cat_file_answer(proc.stdout, spec)
            data = answer[1] if answer is not None and answer[0] == b"blob" and \
                len(answer[1]) <= MAX_BLOB else None
        except (BrokenPipeError, OSError) as exc:
            self.proc = None
            raise InfraError(f"git cat-file died in {self.repo} reading {spec}") from exc
        return data.decode("utf-8", errors="replace") if data is not None else None

    def close(self) -> None:
        with self.lock:
            if self.proc is not None and self.pid == os.getpid():
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
                self.proc.wait(timeout=10)
            self.proc = None


@lru_cache(maxsize=4)
def blob_reader(repo: Path) -> BlobReader:
    """One reader per repository and process (a worker reviews series after series)."""
    return BlobReader(repo)
