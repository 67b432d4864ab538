"""Build one kernel, assemble its guest and run the suite in QEMU: one "kernel under test".

Used for the base kernel (pristine sources per base commit) and for the patched kernel (the
apply stage's worktree); the stage compares what the two produce.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from reviewbot.boot import kbuild, vm
from reviewbot.boot.console import ConsoleReport, parse_console
from reviewbot.boot.guest import programs
from reviewbot.boot.guest.initramfs import build_initramfs
from reviewbot.boot.profiles import Profile
from reviewbot.config import Settings
from reviewbot.errors import InfraError
from reviewbot.gitcmd import git
from reviewbot.lock import FileLock, wait_lock
from reviewbot.progress import Progress

log = logging.getLogger(__name__)


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


def out_dir(settings: Settings, base_commit: str, label: str, profile: Profile | None = None) -> Path:
    """O= of one kernel: ``<sha>/base``, ``<sha>/patched-<worktree>``, and for a profile
    other than the default ``<sha>/base-debug``, ``<sha>/patched-debug-<worktree>``: a debug
    build and a fast build of one base never share (and reconfigure) one directory."""
    if profile is not None and profile.dir_suffix:
        kind, _, rest = label.partition("-")
        label = f"{kind}{profile.dir_suffix}" + (f"-{rest}" if rest else "")
    return build_root(settings) / base_commit / label


def locked(path: Path, timeout_s: float = 3600) -> FileLock:
    """The lock of one build directory (O=): one build in it at a time across workers."""
    return wait_lock(path, timeout_s, poll_s=1.0, what="build directory lock")


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
        git(["worktree", "prune"], cwd=repo, timeout=120)
        result = git(["worktree", "add", "--force", "--detach", dest, base_commit], cwd=repo,
                     timeout=1800)
        if not result.ok:
            raise InfraError(
                f"cannot check out base {base_commit[:12]} into {dest}",
                command=list(result.argv),
                output=result.excerpt(),
            )
    return dest


def repo_of(worktree: Path) -> Path:
    """The main repository a worktree belongs to (so that --tree DIR works as well)."""
    result = git(["rev-parse", "--git-common-dir"], cwd=worktree, timeout=60)
    if not result.ok:
        raise InfraError(f"{worktree} is not a git worktree", output=result.excerpt())
    common = Path(result.stdout.strip())
    if not common.is_absolute():
        common = (worktree / common).resolve()
    return common.parent if common.name == ".git" else common


def build(
    settings: Settings, label: str, src: Path, out: Path, progress: Progress, profile: Profile | None = None,
    variables: Sequence[str] = (),
) -> kbuild.BuildResult:
    with progress.phase(f"{label}: building {src} -> {out}"):
        result = kbuild.build_kernel(settings, src, out, say=progress.say, profile=profile, variables=variables)
    progress.say(f"{label}: build {result.status} in {result.seconds:.0f} s" + (f" ({result.reason})" if result.reason else ""))
    return result


def prepare_guest(
    settings: Settings, src: Path, out: Path, profile: Profile | None = None, only: Collection[str] | None = None,
) -> tuple[list[Path], dict[str, str]]:
    """The initramfs images for the kernel built from ``src`` into ``out``, one per boot.

    Two boots: the v2 charge tests and the kernel selftests, then the cgroup v1 test alone.
    Moving the memory controller from v2 to v1 inside one boot made 6.1.192 warn
    "page_counter underflow" from drain_obj_stock(): kernel-memory stocks charged while
    on v2 are uncharged from v1's kmem counter, which never had them. A fresh boot has no
    such stocks. Returns (initrds, selftests that did not compile).

    ``only`` (full test names, "memcg_charge.threads_migrate") makes the guests of a
    confirming run: memcg_charge runs just those tests, a selftest program runs when one of
    its tests is listed (its tests cannot be run one by one), a boot with nothing left is
    dropped.
    """
    charge = programs.build_charge_tests(Path(settings.path("{cache}")) / "boot" / "guest")
    sandbox = kbuild.make_sandbox(settings, src, out)
    selftests = programs.build_selftests(sandbox, programs.SELFTESTS)
    timeout = program_timeout_s(settings, profile)
    boots = [("reviewbot-initrd", programs.suite_programs(charge, selftests, settings.vm.selftests)),
             ("reviewbot-initrd-v1", programs.v1_programs(charge))]
    initrds = []
    for name, progs in boots:
        if only is not None:
            progs = programs.subset(progs, only)
            name += "-confirm"
        if progs:
            initrds.append(build_initramfs(out / f"{name}.gz", progs, program_timeout_s=timeout))
    return initrds, selftests.failed


def idle_cores() -> float:
    """CPUs the 1-minute load average leaves idle: two TCG guests at once only pay off when
    both get a core (a busy host also makes timing-sensitive tests flaky)."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return 0.0
    return (os.cpu_count() or 1) - load


def program_timeout_s(settings: Settings, profile: Profile | None) -> int:
    """One guest program's limit: a debug kernel runs the same tests several times slower."""
    return profile.scaled(settings.vm.program_timeout_s) if profile else settings.vm.program_timeout_s


def boot_timeout_s(settings: Settings, profile: Profile | None) -> int:
    return profile.scaled(settings.vm.boot_timeout_s) if profile else settings.vm.boot_timeout_s


def run_suite(
    settings: Settings, label: str, image: Path, initrds: list[Path], console: Path, accel: str, progress: Progress,
    profile: Profile | None = None,
) -> SuiteRun:
    """Boot once per initramfs; the consoles are joined into ``console`` and parsed as one.

    The boots are independent guests: with ``vm.parallel_boots`` and idle cores they run at
    once (the v1 boot is short, so the run takes about as long as the main boot alone)."""
    cmdline = " ".join(profile.cmdline) if profile else ""

    def one(index: int, initrd: Path) -> vm.BootRun:
        part = console.with_name(f"{console.stem}.boot{index + 1}{console.suffix}")
        progress.say(f"{label}: booting {initrd.name} ({accel})")
        return vm.boot(settings, image, initrd, part, accel=accel, cmdline_extra=cmdline,
                       timeout_s=boot_timeout_s(settings, profile), say=progress.say)

    boots: list[vm.BootRun] = []
    if len(initrds) > 1 and settings.vm.parallel_boots and idle_cores() >= 1.5:
        progress.say(f"{label}: {len(initrds)} guests at once ({idle_cores():.1f} cores idle)")
        with ThreadPoolExecutor(max_workers=len(initrds)) as pool:
            boots = list(pool.map(one, range(len(initrds)), initrds))
    else:
        for index, initrd in enumerate(initrds):
            boots.append(one(index, initrd))
            if boots[-1].status == "timeout":
                break  # a hung kernel is the answer; do not wait for it twice
    text = "".join(b.console if b.console.endswith("\n") or not b.console else b.console + "\n" for b in boots)
    console.write_text(text, encoding="utf-8")
    worst = next((s for s in ("timeout", "exited") if any(b.status == s for b in boots)), "completed")
    combined = vm.BootRun(accel, worst, sum(b.seconds for b in boots), console, text, max(b.returncode for b in boots))
    report = parse_console(text)
    passed = sum(1 for r in report.results.values() if r.status == "pass")
    progress.say(f"{label}: {len(boots)} boot(s) {worst} in {combined.seconds:.1f} s, {passed}/{len(report.results)} tests passed, {len(report.splats)} splats")
    return SuiteRun(combined, report)
