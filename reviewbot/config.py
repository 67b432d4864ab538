"""Typed settings read from config.yaml; secrets come only from the environment.

Lookup: ``--config FILE``, else ``$REVIEWBOT_CONFIG``, else ``./config.yaml`` when it exists,
else the defaults below (which config.yaml at the top of the project mirrors, documented).
Paths may use ``~`` and ``$VARS``; ``{data}``, ``{state}`` and ``{cache}`` expand to the XDG
directories of reviewbot, so that nothing is written into the checkout by default.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reviewbot.errors import ConfigError


@dataclass(frozen=True)
class MailSettings:
    max_message_bytes: int = 20 * 1024 * 1024  # one mail; larger ones are refused
    max_patch_lines: int = 100_000  # one patch's diff
    max_series_patches: int = 1000
    unthreaded_window_hours: float = 24.0  # unthreaded patches of one author grouped within this
    compute_patch_id: bool = True  # `git patch-id --stable` of each patch
    parse_jobs: int = 0  # processes that parse large inputs; 0: one per CPU
    parallel_min_bytes: int = 8 * 1024 * 1024  # inputs smaller than this parse in-process


@dataclass(frozen=True)
class TreeSettings:
    path: str = "{data}/linux"  # git repository made by `reviewbot tree init`
    # Where the bases come from (tree/sources.py): Debian packages, tarballs, git URL#REF.
    # The first tarball is the root import; each later one a child of the one before.
    sources: tuple[str, ...] = ("linux-source-6.1", "linux-source-6.12",
                                "debian:sid/linux-source", "debian:bullseye/linux-source-5.10")
    debian_mirror: str = "http://deb.debian.org/debian"  # for debian:SUITE/PACKAGE sources
    bases: tuple[str, ...] = ()  # candidate bases tried in order (empty: the tree's bases,
    # development trees first, then releases newest first)
    worktrees: str = "{cache}/worktrees"  # one reusable worktree per base
    lock_timeout_s: float = 600.0
    max_series_bytes: int = 50 * 1024 * 1024
    worktrees_per_base: int = 1  # >1: a second review on a busy base uses another slot
    am_timeout_s: float = 1800.0  # git am of one series on one base


@dataclass(frozen=True)
class RulesSettings:
    path: str = ""  # folder of rule YAML files; empty: the rules/ shipped with reviewbot
    coccinelle: bool = True  # run `coccinelle` rules when spatch is installed
    min_severity: str = "info"  # findings below this are dropped from reports
    facts: bool = True  # consult facts derived from the kernel tree (derived once per base)
    facts_dir: str = "{cache}/facts"  # where the derived facts of each base are cached
    rebuild: bool = True  # a series that does not apply: place its hunks on the base to read whole functions
    # Per series, the rules stage runs in a forked child under these limits (0: no limit;
    # both 0: in process). A 10k-line function takes ~6 s and ~85 MB.
    time_limit_s: float = 600.0
    memory_limit_mb: int = 4096
    bounded_min_lines: int = 2000  # smaller series (diff lines) run in process: no fork


@dataclass(frozen=True)
class BuildProfile:
    """One way of building the kernels under test (docs/boot.md, "Build profiles")."""

    name: str = ""
    fragments: tuple[str, ...] = ()  # on top of memcg.config; a bare name is one in reviewbot/data
    when_touched: tuple[str, ...] = ()  # build.profile auto: chosen when the series touches one
    # (fnmatch patterns on tree paths; `*` also matches `/`)
    cmdline: tuple[str, ...] = ()  # extra kernel command-line words
    timeout_factor: float = 1.0  # vm.boot_timeout_s and vm.program_timeout_s are multiplied


# What a memcg maintainer runs: the debug kernel whenever the series touches the memory
# manager, cgroup core, exit or fork (where the reference and RCU bugs of memcg series live).
DEFAULT_PROFILES = (
    BuildProfile("fast"),
    BuildProfile(
        "debug",
        fragments=("debug.config",),
        when_touched=("mm/*", "kernel/cgroup/*", "kernel/exit.c", "kernel/fork.c",
                      "include/linux/memcontrol.h", "include/linux/cgroup*.h"),
        cmdline=("kasan_multi_shot", "oops=panic"),
        timeout_factor=4.0,
    ),
)


@dataclass(frozen=True)
class BuildSettings:
    build_root: str = "{cache}/build"  # one O= directory per base
    ccache_dir: str = "{cache}/ccache"
    ccache_max_size: str = "5G"
    jobs: int = 0  # 0: number of CPUs
    timeout_s: int = 3600
    memory_limit_mb: int = 8192
    max_pids: int = 1024  # processes in one build command's cgroup (a fork bomb stops here)
    total_memory_mb: int = 12288  # memory of all its processes together (cgroup; 0: none)
    max_file_mb: int = 8192  # largest file a build process may write (RLIMIT_FSIZE)
    min_free_mb: int = 2048  # a build is stopped when the disk under it has less free
    fragments: tuple[str, ...] = ()  # extra Kconfig fragments on top of the memcg one
    # auto: the first profile whose when_touched matches a file the series touches, else the
    # first profile listed; or a profile's name (`--profile` overrides both)
    profile: str = "auto"
    profiles: tuple[BuildProfile, ...] = DEFAULT_PROFILES
    allow_unsandboxed: bool = False  # build without bubblewrap (never for untrusted mail)
    # gcov for the touched .c files of a patched build: which changed lines the tests ran
    coverage: bool = True


@dataclass(frozen=True)
class VmSettings:
    qemu: str = "qemu-system-x86_64"
    accel: str = "auto"  # auto: KVM only after a probe boot proved it works; else tcg|kvm
    memory_mb: int = 512
    cpus: int = 2
    boot_timeout_s: int = 300
    kvm_probe_timeout_s: int = 20
    suite_repeats: int = 2  # base runs of the suite (cached), to catch flaky tests
    selftests: tuple[str, ...] = ("test_memcontrol", "test_kmem")  # kernel selftests run
    program_timeout_s: int = 120  # limit of one guest program (busybox timeout in the guest)
    parallel_boots: bool = True  # boot the v2 and v1 guests of a run at once when cores are idle


@dataclass(frozen=True)
class ServiceSettings:
    host: str = "127.0.0.1"
    port: int = 8750
    state_dir: str = "{state}"  # database, queue, outbox, scan positions
    database_url: str = ""  # empty: SQLite in state_dir; postgresql://... for several machines
    redis_url: str = ""  # empty: SqliteHuey in state_dir; redis://... shares work across machines
    max_mail_bytes: int = 10 * 1024 * 1024
    replay_window_s: int = 300
    require_signature: bool = True  # False only for local use without REVIEWBOT_WEBHOOK_SECRET
    series_wait_s: int = 1800  # review an incomplete series after this long
    cover_wait_s: int = 60  # complete patches whose cover letter is not here yet wait this long
    lease_s: int = 300  # a run whose worker died is retried after this (renewed while alive)
    boot: bool = False  # run build+boot stages for webhook mail
    use_tree: bool = True  # apply on tree.path when it exists; False: rules on hunks only
    sweep_interval_s: float = 10.0  # how often each worker re-enqueues lost work
    worker_threads: int = 1  # reviews one worker process runs at once
    worker_nice: int = 10  # the worker lowers its CPU priority so intake stays responsive
    smtp_enabled: bool = False
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_from: str = "reviewbot <reviewbot@localhost>"
    reply_cc: bool = True  # Cc replies to the patch's To/Cc (reply-all); False: author only
    reply_cc_only: tuple[str, ...] = ()  # when set, Cc only addresses matching one (fnmatch)
    reply_cc_never: tuple[str, ...] = ()  # never Cc addresses matching one (fnmatch)
    nightly_scan_hour: int = 2


@dataclass(frozen=True)
class ScanSettings:
    sources_file: str = ""  # what `scan --all` and the nightly scan read; "": corpus/sources.yaml
    state_dir: str = ""  # scan positions and findings; "": service.state_dir
    window_hours: float = 0.0  # a thread closes this long after its last mail; 0: mail.unthreaded_window_hours
    max_buffered: int = 5000  # messages held in open threads before the oldest close
    jobs: int = 0  # review processes; 0: one per CPU
    reviews_per_worker: int = 100  # a review process is replaced after this many series


@dataclass(frozen=True)
class FetchSettings:
    public_inbox_url: str = "https://lore.kernel.org/all"  # {base}/{message-id}/t.mbox.gz
    timeout_s: float = 30.0
    retries: int = 3
    complete: bool = True  # fetch the thread of a partial series to complete it (--offline)


@dataclass(frozen=True)
class Settings:
    mail: MailSettings = field(default_factory=MailSettings)
    tree: TreeSettings = field(default_factory=TreeSettings)
    rules: RulesSettings = field(default_factory=RulesSettings)
    build: BuildSettings = field(default_factory=BuildSettings)
    vm: VmSettings = field(default_factory=VmSettings)
    service: ServiceSettings = field(default_factory=ServiceSettings)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    scan: ScanSettings = field(default_factory=ScanSettings)
    source: str = "<defaults>"  # the file these settings came from

    def path(self, template: str) -> Path:
        """Expand a path setting ({data}, {state}, {cache}, ~, $VARS)."""
        return expand_path(template)


def xdg_dirs() -> dict[str, Path]:
    home = Path.home()
    return {
        "data": Path(os.environ.get("XDG_DATA_HOME") or home / ".local/share") / "reviewbot",
        "state": Path(os.environ.get("XDG_STATE_HOME") or home / ".local/state") / "reviewbot",
        "cache": Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "reviewbot",
    }


def expand_path(template: str) -> Path:
    # Asked several times per series reviewed (tree, facts, rules): the answer depends on
    # the template and these variables only, unless a `$VAR` is left to expand.
    env = os.environ
    key = (template, env.get("HOME"), env.get("XDG_DATA_HOME"), env.get("XDG_STATE_HOME"),
           env.get("XDG_CACHE_HOME"))
    if any(part and "$" in part for part in key):
        return _expand_path(template)
    return _expand_cached(key)


@functools.lru_cache(maxsize=64)
def _expand_cached(key: tuple[str, str | None, str | None, str | None, str | None]) -> Path:
    return _expand_path(key[0])


def _expand_path(template: str) -> Path:
    dirs = xdg_dirs()
    text = template.format(**{k: str(v) for k, v in dirs.items()})
    return Path(os.path.expandvars(os.path.expanduser(text)))


@functools.cache
def project_root() -> Path:
    """The checkout (or installed package parent) that holds rules/ and corpus/."""
    return Path(__file__).resolve().parent.parent


def find_config_file(explicit: str | None) -> Path | None:
    if explicit:
        return Path(explicit)
    env = os.environ.get("REVIEWBOT_CONFIG")
    if env:
        return Path(env)
    local = Path("config.yaml")
    return local if local.is_file() else None


def load_settings(explicit: str | None = None) -> Settings:
    """Read settings; unknown keys and wrong types are errors that name the key and file.

    Raises:
        ConfigError: the file is missing, not YAML, or does not fit the schema.
    """
    path = find_config_file(explicit)
    if path is None:
        return Settings()
    import yaml  # here, not at the top: library users and the parse workers never need it

    try:
        # libyaml when present: the commented config.yaml takes 4 ms with the Python loader.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read config: {exc.strerror}", source=str(path)) from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=str(path)) from exc
    if not isinstance(raw, Mapping):
        raise ConfigError("top level must be a mapping of sections", source=str(path))
    return settings_from_mapping(raw, source=str(path))


def settings_from_mapping(raw: Mapping[str, Any], source: str = "<mapping>") -> Settings:
    sections: dict[str, Any] = {}
    hints = typing.get_type_hints(Settings)
    for key, value in raw.items():
        if key == "source" or key not in hints:
            raise ConfigError(f"unknown section {key!r}", source=source)
        if not isinstance(value, Mapping):
            raise ConfigError(f"section {key!r} must be a mapping", source=source)
        sections[key] = _build_section(hints[key], value, f"{key}", source)
    return Settings(**sections, source=source)


def _build_section(cls: type, values: Mapping[str, Any], where: str, source: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(
                f"unknown key {where}.{key} (known: {', '.join(sorted(names))})", source=source
            )
        kwargs[key] = _coerce(hints[key], value, f"{where}.{key}", source)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str, source: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list", source=source)
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        if dataclasses.is_dataclass(item):  # a list of mappings (build.profiles)
            if not all(isinstance(v, Mapping) for v in value):
                raise ConfigError(f"{where} must be a list of mappings", source=source)
            return tuple(_build_section(typing.cast(type, item), v, f"{where}[{i}]", source)
                         for i, v in enumerate(value))
        return tuple(_coerce(item, v, where, source) for v in value)
    if origin in (typing.Union, types.UnionType):
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool):
        if isinstance(value, bool) != (hint is bool) or not isinstance(value, hint):
            raise ConfigError(
                f"{where} must be {hint.__name__}, got {type(value).__name__} {value!r}",
                source=source,
            )
        return value
    return value
