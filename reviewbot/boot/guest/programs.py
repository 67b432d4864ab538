"""Compile the guest's static programs.

- memcg_charge (the project's charge tests, trusted): compiled on the host once per source
  hash and cached.
- the kernel's tools/testing/selftests/cgroup programs (untrusted: they come from the tree
  under test, which a series may modify): compiled inside the build sandbox from the same
  source tree as the kernel, into the O= directory.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from reviewbot import proc
from reviewbot.boot.guest.initramfs import INIT_SCRIPT, GuestProgram
from reviewbot.boot.kbuild import Sandbox
from reviewbot.errors import InfraError

GUEST_DIR = Path(__file__).resolve().parent
CHARGE_SOURCE = GUEST_DIR / "memcg_charge.c"
SELFTEST_DIR = "tools/testing/selftests/cgroup"
# Selftests that are compiled when present; test_cpu and the shell scripts need controllers
# (cpu, cpuset) the memcg kernel does not have.
SELFTESTS = ("test_memcontrol", "test_kmem", "test_core", "test_freezer", "test_kill")
CFLAGS = ("-static", "-O2", "-pthread", "-Wall")
# The selftests' own Makefile uses "-Wall -pthread" and no optimisation, and they rely on it:
# with -O2, GCC removes alloc_anon()'s stores into a buffer that is freed right after
# (dead-store elimination), so the "allocate 100M in a 30M cgroup, expect the OOM killer"
# tests allocate nothing and fail (test_memcg_max, the oom_* tests, min/low). That was most
# of the 12/14 failures of a first try, together with the dropped CONFIG_SWAP.
SELFTEST_CFLAGS = ("-static", "-pthread", "-Wall")


@dataclass(frozen=True)
class SelftestBuild:
    programs: dict[str, Path]  # name -> static binary
    failed: dict[str, str]  # name -> compiler output excerpt


def guest_key(selftests: tuple[str, ...]) -> str:
    """Hash of the guest-side inputs the project controls (part of the base-result key)."""
    digest = hashlib.sha256()
    for path in (CHARGE_SOURCE, INIT_SCRIPT, Path(__file__), Path(__file__).with_name("initramfs.py")):
        digest.update(path.read_bytes())
    digest.update(" ".join(selftests).encode())
    return digest.hexdigest()[:12]


def build_charge_tests(cache_dir: Path) -> Path:
    """Static memcg_charge binary for this source, compiled once and cached by hash."""
    source = CHARGE_SOURCE.read_bytes()
    digest = hashlib.sha256(source + " ".join(CFLAGS).encode()).hexdigest()[:16]
    binary = cache_dir / f"memcg_charge-{digest}"
    if binary.is_file():
        return binary
    cache_dir.mkdir(parents=True, exist_ok=True)
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise InfraError("no C compiler (gcc) for the charge tests")
    tmp = binary.with_suffix(".tmp")
    result = proc.run([cc, *CFLAGS, "-o", tmp, CHARGE_SOURCE], timeout=300)
    if not result.ok:
        raise InfraError(
            "cannot compile the charge tests (is glibc's static libc, libc6-dev, installed?)",
            command=list(result.argv),
            output=result.excerpt(),
        )
    tmp.replace(binary)
    return binary


def build_selftests(sandbox: Sandbox, names: tuple[str, ...], *, timeout: float = 600) -> SelftestBuild:
    """Compile each named selftest with cgroup_util.c, statically, inside the sandbox."""
    src, build, _ = sandbox.paths()
    outdir = sandbox.build / "guest"
    outdir.mkdir(parents=True, exist_ok=True)
    programs: dict[str, Path] = {}
    failed: dict[str, str] = {}
    for name in names:
        source = sandbox.src / SELFTEST_DIR / f"{name}.c"
        if not source.is_file():
            failed[name] = f"{SELFTEST_DIR}/{name}.c not in this tree"
            continue
        argv = [
            "gcc", *SELFTEST_CFLAGS,
            f"-I{src}/tools/testing/selftests",
            "-o", f"{build}/guest/{name}",
            f"{src}/{SELFTEST_DIR}/{name}.c",
            f"{src}/{SELFTEST_DIR}/cgroup_util.c",
        ]  # fmt: skip
        result = sandbox.run(argv, timeout=timeout)
        if result.ok:
            programs[name] = outdir / name
        else:
            failed[name] = result.excerpt(10)
    return SelftestBuild(programs, failed)


# memcg_charge's tests in the order they run; the v1 test has a boot of its own.
CHARGE_TESTS = (
    "anon_charge",
    "fork_charge",
    "v2_migration",
    "threads_migrate",
    "clone_vm_shared",
    "zombie_leader",
    "exit_path_cost",
    "dying_cgroups",
    "v1_immigration",
)
V1_TESTS = ("v1_immigration",)


def suite_programs(
    charge_binary: Path, selftests: SelftestBuild, run: tuple[str, ...]
) -> list[GuestProgram]:
    """The first boot: memcg_charge's v2 tests, then the selftests named in ``run`` that
    compiled."""
    v2 = tuple(t for t in CHARGE_TESTS if t not in V1_TESTS)
    progs = [GuestProgram("memcg_charge", charge_binary, v2)]
    progs += [GuestProgram(n, selftests.programs[n]) for n in run if n in selftests.programs]
    return progs


def v1_programs(charge_binary: Path) -> list[GuestProgram]:
    """The second boot: the cgroup v1 test alone, on a memory controller v2 never used."""
    return [GuestProgram("memcg_charge", charge_binary, V1_TESTS)]


def subset(progs: list[GuestProgram], only: Collection[str]) -> list[GuestProgram]:
    """The programs a confirming run needs for the tests in ``only`` (full names, e.g.
    "memcg_charge.threads_migrate", "test_memcontrol.test_memcg_low"): memcg_charge with
    just those tests as arguments, a selftest program whole when any of its tests is listed."""
    wanted: dict[str, set[str]] = {}
    for name in only:
        program, _, test = name.partition(".")
        wanted.setdefault(program, set()).add(test)
    out = []
    for prog in progs:
        if prog.name not in wanted:
            continue
        if prog.name == "memcg_charge":
            args = tuple(a for a in prog.args if a in wanted[prog.name])
            if args:
                out.append(GuestProgram(prog.name, prog.binary, args))
        else:
            out.append(prog)
    return out
