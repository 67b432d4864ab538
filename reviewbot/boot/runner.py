"""Build one kernel, assemble its guest and run the suite in QEMU: one "kernel under test".

Used for the base kernel (pristine sources per base commit) and for the patched kernel (the
apply stage's worktree); the stage compares what the two produce.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from reviewbot import kbuild, proc, vm
from reviewbot.boot.console import ConsoleReport, parse_console
from reviewbot.config import Settings
from reviewbot.errors import InfraError
from reviewbot.guest import programs
from reviewbot.guest.initramfs import build_initramfs

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass
class SuiteRun:
    """One boot of one kernel with the whole suite."""

    boot: vm.BootRun
    report: ConsoleReport

    @property
    def status(self) -> str:
        return self.boot.status


@dataclass
class KernelRun:
    label: str  # "base" or "patched"
    build: kbuild.BuildResult
    runs: list[SuiteRun] = field(default_factory=list)
    selftest_failures: dict[str, str] = field(default_factory=dict)


def build_root(settings: Settings) -> Path:
    return Path(settings.path(settings.build.build_root))


def out_dir(settings: Settings, base_commit: str, label: str) -> Path:
    return build_root(settings) / base_commit / label


@contextmanager
def locked(path: Path, timeout_s: float = 3600) -> Iterator[None]:
    """An flock on ``path`` (created): one build per O= directory at a time across workers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise InfraError(f"timed out waiting for the lock {path}") from None
                time.sleep(1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def base_source(settings: Settings, repo: Path, base_commit: str) -> Path:
    """A pristine worktree of ``base_commit`` (created once, reused): the base kernel's sources.

    Kept apart from the apply stage's worktree, which holds the series while we build.
    """
    dest = build_root(settings) / "base-src" / base_commit
    if (dest / "Makefile").is_file():
        return dest
    with locked(build_root(settings) / "base-src" / f"{base_commit}.lock"):
        if (dest / "Makefile").is_file():
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        proc.run(["git", "-C", repo, "worktree", "prune"], timeout=120)
        result = proc.run(
            ["git", "-C", repo, "worktree", "add", "--force", "--detach", dest, base_commit],
            timeout=1800,
        )
        if not result.ok:
            raise InfraError(
                f"cannot check out base {base_commit[:12]} into {dest}",
                command=list(result.argv),
                output=result.excerpt(),
            )
    return dest


def repo_of(worktree: Path) -> Path:
    """The main repository a worktree belongs to (so that --tree DIR works as well)."""
    result = proc.run(["git", "-C", worktree, "rev-parse", "--git-common-dir"], timeout=60)
    if not result.ok:
        raise InfraError(f"{worktree} is not a git worktree", output=result.excerpt())
    common = Path(result.stdout.strip())
    if not common.is_absolute():
        common = (worktree / common).resolve()
    return common.parent if common.name == ".git" else common


def build(settings: Settings, label: str, src: Path, out: Path, progress: Progress) -> kbuild.BuildResult:
    progress(f"{label}: building {src} -> {out}")
    result = kbuild.build_kernel(settings, src, out)
    progress(f"{label}: build {result.status} in {result.seconds:.0f} s" + (f" ({result.reason})" if result.reason else ""))
    return result


def prepare_guest(settings: Settings, src: Path, out: Path) -> tuple[Path, dict[str, str]]:
    """initramfs for the kernel built from ``src`` into ``out``; returns (initrd, selftest failures)."""
    charge = programs.build_charge_tests(Path(settings.path("{cache}")) / "boot" / "guest")
    sandbox = kbuild.make_sandbox(settings, src, out)
    selftests = programs.build_selftests(sandbox, programs.SELFTESTS)
    progs = programs.suite_programs(charge, selftests, settings.vm.selftests)
    initrd = build_initramfs(out / "reviewbot-initrd.gz", progs, program_timeout_s=settings.vm.program_timeout_s)
    return initrd, selftests.failed


def run_suite(
    settings: Settings, label: str, image: Path, initrd: Path, console: Path, accel: str, progress: Progress
) -> SuiteRun:
    progress(f"{label}: booting ({accel})")
    boot = vm.boot(settings, image, initrd, console, accel=accel, timeout_s=settings.vm.boot_timeout_s)
    report = parse_console(boot.console)
    passed = sum(1 for r in report.results.values() if r.status == "pass")
    progress(f"{label}: boot {boot.status} in {boot.seconds:.1f} s, {passed}/{len(report.results)} tests passed, {len(report.splats)} splats")
    return SuiteRun(boot, report)
