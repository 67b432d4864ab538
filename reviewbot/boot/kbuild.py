"""Build a kernel from an (untrusted) source tree: config fragments, sandbox, O= dirs, warnings.

Layout under ``settings.build.build_root`` (one directory per base commit)::

    base-src/<sha>/          pristine worktree of the base commit (the base kernel's sources)
    <sha>/base/              O= of the base kernel, kept between runs
    <sha>/patched-<wt>/      O= of patched kernels built from worktree <wt> of this base, kept
                             between runs so that a series rebuilds only what it touches (plus
                             what the previous series touched, which the worktree reset reverted)

The sandbox (bubblewrap) always mounts the source tree at /src, the O= directory at /build
and ccache at /ccache. The compiler therefore sees the same paths for the base tree and for
every worktree, so ccache hits across them: the first patched build on a base costs about as
much as a hot-ccache rebuild rather than a cold build.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reviewbot import proc
from reviewbot.boot.buildwatch import BuildWatch
from reviewbot.boot.cgroup import build_group
from reviewbot.boot.profiles import DATA_DIR, Profile
from reviewbot.config import Settings
from reviewbot.errors import BadInputError, InfraError
from reviewbot.results import CompilerWarning

log = logging.getLogger(__name__)

MEMCG_FRAGMENT = DATA_DIR / "memcg.config"
GCOV_FRAGMENT = DATA_DIR / "gcov.config"
ARCH = "x86_64"
IMAGE = "arch/x86/boot/bzImage"
SANDBOX_SRC = "/src"
SANDBOX_BUILD = "/build"
SANDBOX_CCACHE = "/ccache"
CONFIG_STAMP = ".reviewbot-config"  # hash of the fragments the .config was made from
WARNINGS_FILE = "reviewbot-warnings.json"  # warnings of every file compiled so far
BUILD_LOG = "reviewbot-build.log"

# Fixed build identity: otherwise init/version.o and friends differ between the base and the
# patched build for no reason, and ccache misses.
BUILD_ENV = {
    "KBUILD_BUILD_USER": "reviewbot",
    "KBUILD_BUILD_HOST": "reviewbot",
    "KBUILD_BUILD_TIMESTAMP": "Thu Jan  1 00:00:00 UTC 1970",
}

_WARNING_RE = re.compile(
    r"^(?P<file>[^\s:]+):(?P<line>\d+):(?:(?P<col>\d+):)? warning: (?P<msg>.*?)(?: \[(?P<flag>-W[^\]]+)\])?$"
)


@dataclass
class BuildResult:
    status: str  # success | fail | timeout | config-error
    seconds: float
    out_dir: Path
    log_path: Path
    reason: str = ""
    excerpt: str = ""
    warnings: list[CompilerWarning] = field(default_factory=list)  # from this run's log
    config_changed: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def image(self) -> Path:
        return self.out_dir / IMAGE


# ---- Kconfig fragments -----------------------------------------------------------------


def fragment_paths(settings: Settings, profile: Profile | None = None) -> list[Path]:
    """The project's memcg fragment, the coverage one (build.coverage), the build profile's,
    then the ones build.fragments adds (last, so that a site's own fragment can still turn
    an option off)."""
    paths = [MEMCG_FRAGMENT, *((GCOV_FRAGMENT,) if settings.build.coverage else ()),
             *(profile.fragments if profile else ())]
    for raw in settings.build.fragments:
        path = Path(settings.path(raw))
        if not path.is_file():
            raise BadInputError("Kconfig fragment not found", source=str(path))
        paths.append(path)
    return paths


def parse_fragment(text: str) -> dict[str, str]:
    """Map CONFIG_X -> value ("n" for "# CONFIG_X is not set") from a fragment's text."""
    wanted: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        unset = re.fullmatch(r"# (CONFIG_\w+) is not set", line)
        if unset:
            wanted[unset.group(1)] = "n"
        elif line and not line.startswith("#") and "=" in line:
            name, value = line.split("=", 1)
            wanted[name.strip()] = value.strip()
    return wanted


def read_dotconfig(path: Path) -> dict[str, str]:
    return parse_fragment(path.read_text(encoding="utf-8", errors="replace"))


def dropped_options(wanted: dict[str, str], actual: dict[str, str]) -> list[str]:
    """Options of the fragments that olddefconfig did not keep, as "CONFIG_X=want (got v)"."""
    dropped = []
    for name, value in wanted.items():
        got = actual.get(name, "n")
        if got != value:
            dropped.append(f"{name}={value} (got {got if name in actual else 'unset'})")
    return dropped


def config_key(fragments: Sequence[Path]) -> str:
    """Hash of everything the .config is made from; names the base-result cache too."""
    digest = hashlib.sha256(ARCH.encode())
    for path in fragments:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# ---- sandbox ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sandbox:
    """bubblewrap around one build: no network, read-only system and sources, two writable
    mounts (the O= directory and ccache).

    Memory: RLIMIT_AS per process through ``prlimit`` (util-linux). This container has no
    delegated cgroup and no systemd user manager, so a total limit (``systemd-run --user -p
    MemoryMax=``) is not available; per-process address space bounds a runaway cc1 or ld,
    and the total is at most jobs x limit.
    """

    src: Path
    build: Path
    ccache: Path
    memory_limit_mb: int
    allow_unsandboxed: bool = False
    extra_ro: tuple[Path, ...] = ()
    max_pids: int = 1024  # processes in the build's cgroup (a fork bomb stops here)
    total_memory_mb: int = 12288  # memory of the whole build's cgroup (0: no group limit)
    max_file_mb: int = 8192  # largest file a build process may write (RLIMIT_FSIZE)

    def containment(self) -> str:
        """What bounds a build on this machine, in words (docs/boot.md, tests)."""
        group = build_group(self.max_pids, self.total_memory_mb)
        try:
            where = group.description if group else "no cgroup (not writable here)"
        finally:
            if group:
                group.close()
        box = "bubblewrap (no network, read-only system and sources)" if self.available() \
            else "NO SANDBOX"
        return (f"{box}; per process {self.memory_limit_mb} MiB address space, files up to "
                f"{self.max_file_mb} MiB; {where}")

    def available(self) -> bool:
        return shutil.which("bwrap") is not None

    def wrap(self, argv: Sequence[str], *, writable_src: bool = False) -> list[str]:
        """The sandboxed command line. The source tree is read-only unless asked: an O=
        build never writes into it, and the later stages read the same tree."""
        limit = ["prlimit", f"--as={self.memory_limit_mb * 1024 * 1024}",
                 f"--fsize={self.max_file_mb * 1024 * 1024}", "--"]
        if not self.available():
            if not self.allow_unsandboxed:
                raise InfraError(
                    "bubblewrap (bwrap) is not installed; refusing to build untrusted code "
                    "without a sandbox (install the bubblewrap package, or set "
                    "build.allow_unsandboxed: true for trusted input only)"
                )
            return [*limit, *argv]  # caller runs with real paths via env below
        bind_src = "--bind" if writable_src else "--ro-bind"
        cmd = [
            "bwrap",
            "--ro-bind", "/usr", "/usr",
            "--symlink", "usr/bin", "/bin",
            "--symlink", "usr/lib", "/lib",
            "--symlink", "usr/lib64", "/lib64",
            "--symlink", "usr/sbin", "/sbin",
            "--ro-bind", "/etc", "/etc",
            "--dev", "/dev",
            "--proc", "/proc",
            "--tmpfs", "/tmp",
            "--unshare-all",  # network, pid, ipc, uts, cgroup: nothing leaves the sandbox
            "--die-with-parent",
            "--new-session",
            bind_src, str(self.src), SANDBOX_SRC,
            "--bind", str(self.build), SANDBOX_BUILD,
            "--bind", str(self.ccache), SANDBOX_CCACHE,
        ]  # fmt: skip
        for path in self.extra_ro:
            cmd += ["--ro-bind", str(path), str(path)]
        # cwd in the O= directory: merge_config.sh makes its temporary files in "."
        cmd += ["--chdir", SANDBOX_BUILD, "--setenv", "HOME", "/tmp", "--"]
        return [*limit, *cmd, *argv]

    @property
    def sandboxed(self) -> bool:
        return self.available()

    def paths(self) -> tuple[str, str, str]:
        """(src, build, ccache) as the command inside sees them."""
        if self.sandboxed:
            return SANDBOX_SRC, SANDBOX_BUILD, SANDBOX_CCACHE
        return str(self.src), str(self.build), str(self.ccache)

    def env(self, ccache_max_size: str) -> dict[str, str]:
        _, _, ccache = self.paths()
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": "/tmp",
            "LANG": "C",
            "LC_ALL": "C",
            "CCACHE_DIR": ccache,
            "CCACHE_MAXSIZE": ccache_max_size,
            "CCACHE_NOHASHDIR": "1",
            **BUILD_ENV,
        }

    def run(
        self, argv: Sequence[str], *, timeout: float, ccache_max_size: str = "5G",
        watch: Callable[[], str | None] | None = None,
    ) -> proc.ProcResult:
        _, build, _ = self.paths()
        command = self.wrap(argv)
        # A cgroup per command: pids.max stops a fork bomb, the memory limit the sum of
        # all processes; whatever is left inside afterwards (a daemon the Makefile started)
        # is killed with the group.
        group = build_group(self.max_pids, self.total_memory_mb)
        if group is not None:
            command = group.enter_command(command)
        try:
            return proc.run(
                command,
                cwd=build if not self.sandboxed else None,
                env=self.env(ccache_max_size),
                timeout=timeout,
                watch=watch,
                watch_every_s=2.0,
            )
        finally:
            if group is not None and (killed := group.close()):
                log.warning("killed %d process(es) left in the build's cgroup: %s", len(killed),
                            ", ".join(killed))


def make_sandbox(settings: Settings, src: Path, out_dir: Path) -> Sandbox:
    ccache = Path(settings.path(settings.build.ccache_dir))
    ccache.mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    return Sandbox(
        src=src,
        build=out_dir,
        ccache=ccache,
        memory_limit_mb=settings.build.memory_limit_mb,
        allow_unsandboxed=settings.build.allow_unsandboxed,
        max_pids=settings.build.max_pids,
        total_memory_mb=settings.build.total_memory_mb,
        max_file_mb=settings.build.max_file_mb,
    )


# ---- warnings ----------------------------------------------------------------------------


def parse_warnings(log: str, src_prefixes: Iterable[str] = (SANDBOX_SRC,)) -> list[CompilerWarning]:
    """Compiler warnings in a build log, with paths made relative to the source tree."""
    prefixes = [p.rstrip("/") + "/" for p in src_prefixes]
    found: dict[tuple[str, int, str], CompilerWarning] = {}
    for line in log.splitlines():
        match = _WARNING_RE.match(line.strip())
        if not match:
            continue
        path = match.group("file")
        for prefix in prefixes:
            if path.startswith(prefix):
                path = path[len(prefix):]
        if path.startswith("./"):
            path = path[2:]
        warning = CompilerWarning(path, int(match.group("line")), match.group("msg"), match.group("flag") or "")
        found.setdefault((warning.file, warning.line, warning.message), warning)
    return list(found.values())


def _load_warnings(out_dir: Path) -> dict[str, list[dict[str, object]]]:
    path = out_dir / WARNINGS_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def record_warnings(out_dir: Path, log: str, compiled: Iterable[str], warnings: list[CompilerWarning]) -> None:
    """Keep, per source file, the warnings of its latest compile (a rebuild replaces them)."""
    table = _load_warnings(out_dir)
    for file in compiled:
        table[file] = []
    for warning in warnings:
        table.setdefault(warning.file, []).append(warning.to_json())
    (out_dir / WARNINGS_FILE).write_text(json.dumps(table, indent=1, sort_keys=True), encoding="utf-8")


def recorded_warnings(out_dir: Path) -> list[CompilerWarning]:
    return [
        CompilerWarning(str(w["file"]), int(str(w["line"])), str(w["message"]), str(w["flag"]))
        for entries in _load_warnings(out_dir).values()
        for w in entries
    ]


def compiled_files(log: str) -> list[str]:
    """Sources kbuild compiled in this run ("  CC      mm/memcontrol.o" -> mm/memcontrol.c)."""
    files = []
    for line in log.splitlines():
        match = re.match(r"^\s+CC\s+(\S+)\.o$", line)
        if match:
            files.append(match.group(1) + ".c")
    return files


def new_warnings(
    base: Iterable[CompilerWarning], patched: Iterable[CompilerWarning], touched: Iterable[str]
) -> list[CompilerWarning]:
    """Warnings of the patched build in files the series touches that the base build lacks.

    Compared without line numbers: a warning that only moved is not new. A touched header
    shows up through the .c files that include it, so warnings in any file are kept when
    the series touches a header; otherwise only warnings in touched files count.
    """
    touched_set = set(touched)
    any_header = any(t.endswith(".h") for t in touched_set)
    base_keys = {w.key for w in base}
    new = []
    for warning in patched:
        if warning.key in base_keys:
            continue
        if warning.file in touched_set or any_header:
            new.append(warning)
    return new


# ---- the build ---------------------------------------------------------------------------


def _make(sandbox: Sandbox, targets: Sequence[str], jobs: int, cc: str, variables: Sequence[str] = ()) -> list[str]:
    src, build, _ = sandbox.paths()
    return ["make", "-C", src, f"ARCH={ARCH}", f"O={build}", f"-j{jobs}", f"CC={cc}", *variables, *targets]


def configure(sandbox: Sandbox, fragments: Sequence[Path], *, timeout: float) -> tuple[bool, str, str]:
    """Write O=/.config from tinyconfig + fragments unless the stamp shows it is current.

    Returns (changed, status, message): status "success", "config-error" or "timeout".
    """
    out = sandbox.build
    key = config_key(fragments)
    stamp = out / CONFIG_STAMP
    if (out / ".config").is_file() and stamp.is_file() and stamp.read_text().strip() == key:
        return False, "success", ""
    src, build, _ = sandbox.paths()
    merged = out / "reviewbot-fragments.config"
    merged.write_text("".join(p.read_text(encoding="utf-8") + "\n" for p in fragments), encoding="utf-8")
    steps = [
        ["make", "-C", src, f"ARCH={ARCH}", f"O={build}", "tinyconfig"],
        [f"{src}/scripts/kconfig/merge_config.sh", "-m", "-O", build, f"{build}/.config", f"{build}/{merged.name}"],
        ["make", "-C", src, f"ARCH={ARCH}", f"O={build}", "olddefconfig"],
    ]
    for argv in steps:
        result = sandbox.run(argv, timeout=timeout)
        if result.timed_out:
            return True, "timeout", f"build timed out after {int(timeout)} s (in {argv[-1]})"
        if not result.ok:
            return True, "config-error", f"{' '.join(argv[:4])} failed:\n{result.excerpt()}"
    problem = verify_config(out, fragments, sandbox.src)
    if problem:
        return True, "config-error", problem
    stamp.write_text(key + "\n")
    return True, "success", ""


_KCONFIG_SYMBOL = re.compile(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$", re.M)


def kconfig_symbols(src: Path) -> set[str]:
    """Every symbol a ``config``/``menuconfig`` entry of the tree's Kconfig files declares.

    The fragment follows the base: 6.12 has no BASE_FULL (it became BASE_SMALL's inverse),
    no MEMCG_KMEM (always on with MEMCG) and no SLOB, and only 6.12 has MEMCG_V1 (the v1
    charge tests need it). An option the base does not declare is not "dropped"; it does
    not exist there. About 0.3 s for the 1,700 Kconfig files of a kernel tree.
    """
    found: set[str] = set()
    for root, dirs, files in os.walk(src):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if name.startswith("Kconfig"):
                try:
                    text = (Path(root) / name).read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
                found.update(_KCONFIG_SYMBOL.findall(text))
    return found


def verify_config(out_dir: Path, fragments: Sequence[Path], src: Path | None = None) -> str:
    """"" when every fragment option is in O=/.config, else a message naming the dropped ones.

    With ``src``, options whose symbol the tree's Kconfig does not declare are left out.
    """
    wanted: dict[str, str] = {}
    for path in fragments:
        wanted.update(parse_fragment(path.read_text(encoding="utf-8")))
    if src is not None:
        declared = kconfig_symbols(src)
        if declared:
            wanted = {k: v for k, v in wanted.items() if k.removeprefix("CONFIG_") in declared}
    dropped = dropped_options(wanted, read_dotconfig(out_dir / ".config"))
    if dropped:
        return "Kconfig dropped options of the fragments (a missing dependency?): " + ", ".join(dropped)
    return ""


def build_kernel(
    settings: Settings,
    src: Path,
    out_dir: Path,
    *,
    log_path: Path | None = None,
    jobs: int | None = None,
    say: Callable[[str], None] | None = None,
    profile: Profile | None = None,
    variables: Sequence[str] = (),
) -> BuildResult:
    """Configure (when needed) and build bzImage from ``src`` into ``out_dir``.

    A failed compile, a dropped config option or a timeout is a result, not an exception;
    InfraError only for a missing sandbox. ``say`` gets a progress line every ten seconds
    (objects compiled, against a complete build's count, and the time left). ``profile``
    adds its fragments (the debug kernel's checks) after the memcg one. ``variables`` are
    make variables for this build only (``GCOV_PROFILE_memcontrol.o=y``: reviewbot.boot.
    coverage); kbuild recompiles an object whose command line they change.
    """
    start = time.monotonic()
    fragments = fragment_paths(settings, profile)
    sandbox = make_sandbox(settings, src, out_dir)
    log_path = log_path or out_dir / BUILD_LOG
    deadline = float(settings.build.timeout_s)
    changed, status, message = configure(sandbox, fragments, timeout=deadline)
    if status != "success":
        log_path.write_text(message + "\n", encoding="utf-8")
        return BuildResult(status, time.monotonic() - start, out_dir, log_path, reason=message.splitlines()[0], excerpt=message)
    jobs = jobs or settings.build.jobs or os.cpu_count() or 1
    remaining = max(1.0, deadline - (time.monotonic() - start))
    # make writes its log straight into the O= directory, so a long build can be followed
    # with tail -f and a killed one still leaves its log behind.
    _, build_dir, _ = sandbox.paths()
    live_log = out_dir / BUILD_LOG
    make = _make(sandbox, ["bzImage"], jobs, "ccache gcc", variables)
    watch = BuildWatch(live_log, out_dir, settings.build.min_free_mb, say)
    result = sandbox.run(
        ["sh", "-c", f'exec "$@" > {build_dir}/{BUILD_LOG} 2>&1', "sh", *make],
        timeout=remaining,
        ccache_max_size=settings.build.ccache_max_size,
        watch=watch,
    )
    watch.finish(result.ok)
    log = live_log.read_text(encoding="utf-8", errors="replace") if live_log.is_file() else ""
    log += result.stdout + result.stderr  # the sandbox's own complaints, if any
    if log_path != live_log:
        log_path.write_text(log, encoding="utf-8")
    seconds = time.monotonic() - start
    src_prefix, _, _ = sandbox.paths()
    warnings = parse_warnings(log, (src_prefix, str(src)))
    record_warnings(out_dir, log, compiled_files(log), warnings)
    if result.timed_out:
        return BuildResult("timeout", seconds, out_dir, log_path, reason=f"build timed out after {int(deadline)} s",
                           excerpt="\n".join(log.splitlines()[-20:]), warnings=warnings, config_changed=changed)
    if result.stopped:
        return BuildResult("fail", seconds, out_dir, log_path, reason=result.stopped,
                           excerpt="\n".join(log.splitlines()[-20:]), warnings=warnings,
                           config_changed=changed)
    if not result.ok:
        return BuildResult("fail", seconds, out_dir, log_path, reason=_first_error(log) or f"make exited with {result.returncode}",
                           excerpt=_error_excerpt(log), warnings=warnings, config_changed=changed)
    # The series may have changed Kconfig files; kbuild's own syncconfig then rewrote .config.
    problem = verify_config(out_dir, fragments, src)
    if problem:
        return BuildResult("config-error", seconds, out_dir, log_path, reason=problem, excerpt=problem, warnings=warnings)
    return BuildResult("success", seconds, out_dir, log_path, warnings=warnings, config_changed=changed)


def _first_error(log: str) -> str:
    for line in log.splitlines():
        if ": error: " in line or line.startswith("make") and "Error" in line:
            return line.strip()
    return ""


def _error_excerpt(log: str, context: int = 20) -> str:
    lines = log.splitlines()
    for i, line in enumerate(lines):
        if ": error: " in line:
            return "\n".join(lines[max(0, i - 3): i + context])
    return "\n".join(lines[-context:])
