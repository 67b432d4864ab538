"""Build profiles: which series get the debug kernel, what it is made of, and that fast and
debug builds of one base never share a cache entry or an O= directory."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

import pytest

from reviewbot.boot import kbuild, profiles, runner, stage, vm
from reviewbot.config import BuildProfile, Settings, load_settings, settings_from_mapping
from reviewbot.errors import BadInputError, ConfigError
from reviewbot.gitcmd import git
from reviewbot.progress import Progress

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
DEBUG_FRAGMENT = profiles.DATA_DIR / "debug.config"
BASES = ("v6.1.192-debian", "v6.12.118-debian")


@pytest.mark.parametrize(
    ("touched", "expected"),
    [
        (["mm/memcontrol.c"], "debug"),
        (["mm/vmscan.c", "Documentation/admin-guide/cgroup-v2.rst"], "debug"),
        (["kernel/cgroup/cgroup.c"], "debug"),
        (["kernel/exit.c"], "debug"),
        (["kernel/fork.c"], "debug"),
        (["include/linux/memcontrol.h"], "debug"),
        (["include/linux/cgroup-defs.h"], "debug"),
        (["include/linux/cgroup.h"], "debug"),
        (["Documentation/admin-guide/cgroup-v1/memory.rst"], "fast"),
        (["tools/testing/selftests/cgroup/test_memcontrol.c"], "fast"),
        (["include/linux/mm_types.h"], "fast"),  # not on the list: a maintainer may add it
        (["kernel/exit_helper.c", "kernel/forks.c"], "fast"),  # exact files, not prefixes
        ([], "fast"),  # `reviewbot boot` without a series
    ],
)
def test_auto_rule_picks_debug_for_memory_cgroup_exit_and_fork_code(touched: list[str], expected: str) -> None:
    assert profiles.choose(Settings(), touched).name == expected


def test_the_reason_names_the_file_that_chose_the_profile() -> None:
    chosen = profiles.choose(Settings(), ["Documentation/x.rst", "mm/memcontrol.c", "mm/vmscan.c"])
    assert chosen.reason == "the series touches mm/memcontrol.c and 1 more"
    assert profiles.choose(Settings(), ["README"]).reason.startswith("default (")


def test_override_beats_config_and_config_beats_the_rule() -> None:
    pinned = settings_from_mapping({"build": {"profile": "debug"}})
    assert profiles.choose(pinned, ["README"]).name == "debug"
    assert profiles.choose(pinned, ["mm/memcontrol.c"], "fast").name == "fast"
    assert profiles.choose(Settings(), ["mm/memcontrol.c"], "fast").reason == "given with --profile"


def test_unknown_profile_is_bad_input_naming_the_known_ones() -> None:
    with pytest.raises(BadInputError, match="unknown build profile 'kasan'.*fast, debug"):
        profiles.choose(Settings(), [], "kasan")
    with pytest.raises(BadInputError):
        profiles.check(settings_from_mapping({"build": {"profile": "nope"}}), "nope")


def test_profiles_are_read_from_config_as_a_list_of_mappings(tmp_path: Path) -> None:
    extra = tmp_path / "kcsan.config"
    extra.write_text("CONFIG_KCSAN=y\n")
    settings = settings_from_mapping({"build": {"profiles": [
        {"name": "fast"},
        {"name": "kcsan", "fragments": [str(extra)], "when_touched": ["kernel/cgroup/*"],
         "timeout_factor": 3},
    ]}})
    assert settings.build.profiles[1] == BuildProfile("kcsan", (str(extra),), ("kernel/cgroup/*",), (), 3.0)
    chosen = profiles.choose(settings, ["kernel/cgroup/rstat.c"])
    assert (chosen.name, chosen.fragments, chosen.default) == ("kcsan", (extra,), False)
    assert profiles.choose(settings, ["mm/memcontrol.c"]).name == "fast"  # no debug profile here


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"build": {"profiles": ["fast"]}}, "build.profiles must be a list of mappings"),
        ({"build": {"profiles": [{"name": "x", "kconfig": []}]}}, r"unknown key build.profiles\[0\].kconfig"),
        ({"build": {"profiles": [{"name": "x", "when_touched": "mm/*"}]}}, "when_touched must be a list"),
    ],
)
def test_profile_config_errors_name_the_key(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_mapping(raw)


@pytest.mark.parametrize("names", [[], ["fast", "fast"], ["fast", ""]])
def test_profiles_need_distinct_names(names: list[str]) -> None:
    settings = settings_from_mapping({"build": {"profiles": [{"name": n} for n in names]}})
    with pytest.raises(ConfigError, match="each with its own name"):
        profiles.choose(settings, [])


def test_missing_profile_fragment_is_a_config_error() -> None:
    settings = settings_from_mapping({"build": {"profiles": [{"name": "x", "fragments": ["/nonexistent/k.config"]}]}})
    with pytest.raises(ConfigError, match="fragment of a build profile not found"):
        profiles.choose(settings, [])


def test_debug_fragment_comes_after_memcg_and_before_the_sites_own(tmp_path: Path) -> None:
    site = tmp_path / "site.config"
    site.write_text("# CONFIG_DEBUG_LIST is not set\n")
    settings = settings_from_mapping({"build": {"fragments": [str(site)]}})
    debug = profiles.choose(settings, [], "debug")
    gcov = kbuild.GCOV_FRAGMENT  # build.coverage (on by default) comes right after memcg.config
    assert kbuild.fragment_paths(settings, debug) == [kbuild.MEMCG_FRAGMENT, gcov, DEBUG_FRAGMENT, site]
    assert kbuild.fragment_paths(settings, profiles.choose(settings, [])) == [kbuild.MEMCG_FRAGMENT, gcov, site]


def test_debug_fragment_asks_for_the_checks_the_issue_names() -> None:
    wanted = kbuild.parse_fragment(DEBUG_FRAGMENT.read_text())
    for option in ("PROVE_LOCKING", "PROVE_RCU", "DEBUG_LOCK_ALLOC", "DEBUG_OBJECTS",
                   "DEBUG_OBJECTS_PERCPU_COUNTER", "DEBUG_OBJECTS_RCU_HEAD", "KASAN",
                   "KASAN_GENERIC", "KASAN_INLINE", "DEBUG_KMEMLEAK", "DEBUG_FS", "DEBUG_VM"):
        assert wanted[f"CONFIG_{option}"] == "y", option
    assert wanted["CONFIG_DEBUG_KMEMLEAK_DEFAULT_OFF"] == "n"  # on from boot
    assert wanted["CONFIG_DEBUG_KMEMLEAK_AUTO_SCAN"] == "n"  # the guest scans after the suite


def test_fast_and_debug_builds_of_one_base_have_their_own_cache_key_and_directory() -> None:
    settings = Settings()
    sha = "035aa8c16ded313232b2f3d938a038f804fcfaa5"
    fast, debug = profiles.choose(settings, []), profiles.choose(settings, [], "debug")
    assert stage.base_key(settings, sha, fast) != stage.base_key(settings, sha, debug)
    assert "-debug-" in stage.base_key(settings, sha, debug)
    assert stage.base_key(settings, sha) == stage.base_key(settings, sha, fast)  # the default
    root = runner.build_root(settings) / sha
    # the fast directories are where they always were: warm caches stay warm
    assert runner.out_dir(settings, sha, "base", fast) == root / "base"
    assert runner.out_dir(settings, sha, "base", debug) == root / "base-debug"
    assert runner.out_dir(settings, sha, "patched-v6.1.192-debian", fast) == root / "patched-v6.1.192-debian"
    assert runner.out_dir(settings, sha, "patched-v6.1.192-debian", debug) == root / "patched-debug-v6.1.192-debian"


def test_debug_boots_get_longer_limits_and_every_kasan_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, float]] = []

    def fake_boot(settings: Settings, kernel: Path, initrd: Path, console: Path, *, accel: str,
                  timeout_s: float, cmdline_extra: str = "", say: object = None) -> vm.BootRun:
        seen.append((cmdline_extra, timeout_s))
        return vm.BootRun(accel, "completed", 1.0, console, "# reviewbot-guest: done\n", 0)

    monkeypatch.setattr(runner.vm, "boot", fake_boot)
    settings = Settings()
    for name in ("fast", "debug"):
        chosen = profiles.choose(settings, [], name)
        runner.run_suite(settings, name, tmp_path / "bzImage", [tmp_path / "initrd.gz"],
                         tmp_path / f"{name}.log", "tcg", Progress.silent(), chosen)
    assert seen == [("", settings.vm.boot_timeout_s), ("kasan_multi_shot oops=panic", 4 * settings.vm.boot_timeout_s)]
    assert runner.program_timeout_s(settings, profiles.choose(settings, [], "debug")) == 480


def _touched(patch: Path) -> list[str]:
    return sorted(set(re.findall(r"^diff --git a/(\S+) b/", patch.read_text(errors="replace"), re.M)))


def test_ci_boot_tests_pin_the_fast_profile() -> None:
    """The slow boot tests' series touch mm/ and kernel/: the default rule would build debug
    kernels in CI, which would cost far more than CI's budget. Their settings pin fast."""
    spec = importlib.util.spec_from_file_location("_boot_slow", TESTS / "boot" / "test_boot_slow.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ci_settings: Settings = module._settings()
    series = [*sorted((TESTS / "data" / "mutants").glob("*.patch")),
              REPO / "corpus" / "01-memcg-charge-move-cleanups.mbox"]
    for path in series:
        touched = _touched(path)
        assert profiles.choose(Settings(), touched).name == "debug", path.name  # why the pin matters
        assert profiles.choose(ci_settings, touched).name == "fast", path.name


# ---- the fragment against the real bases ------------------------------------------------


def _tree() -> Path:
    path = Path(load_settings(None).path(load_settings(None).tree.path))
    if not (path / ".git").exists():
        pytest.skip(f"no kernel tree at {path}: run `reviewbot tree init` to check the fragment against the bases")
    return path


def _declared_at(tree: Path, ref: str) -> set[str]:
    """kbuild.kconfig_symbols for a commit, read from git (no checkout needed)."""
    listing = git(["ls-tree", "-r", "--name-only", ref], cwd=tree, timeout=120)
    if not listing.ok:
        pytest.skip(f"base {ref} is not in the tree at {tree}")
    names = [n for n in listing.stdout.splitlines() if n.rsplit("/", 1)[-1].startswith("Kconfig")]
    blobs = git(["cat-file", "--batch"], cwd=tree, timeout=300,
                input_bytes="".join(f"{ref}:{n}\n" for n in names).encode())
    assert blobs.ok, blobs.excerpt()
    return set(re.findall(r"^\s*(?:menu)?config\s+([A-Za-z0-9_]+)\s*$", blobs.stdout, re.M))


@pytest.mark.parametrize("base", BASES)
def test_every_debug_option_exists_on_the_base(base: str) -> None:
    """Options a base does not declare are skipped by verify_config (the fragment follows the
    base), which would lose a check silently: both bases must declare every one."""
    declared = _declared_at(_tree(), base)
    wanted = kbuild.parse_fragment(DEBUG_FRAGMENT.read_text())
    missing = [name for name in wanted if name.removeprefix("CONFIG_") not in declared]
    assert missing == []


@pytest.mark.slow
@pytest.mark.parametrize("base", BASES)
def test_debug_fragment_survives_olddefconfig_on_the_base(base: str, tmp_path: Path) -> None:
    """tinyconfig + memcg + debug fragments, olddefconfig, verify: nothing dropped (about 11 s
    per base; configures only, builds nothing)."""
    settings = load_settings(None)
    tree = _tree()
    sha = git(["rev-parse", f"{base}^{{commit}}"], cwd=tree, timeout=60).stdout.strip()
    src = runner.build_root(settings) / "base-src" / sha
    if not (src / "Makefile").is_file() or shutil.which("bwrap") is None:
        pytest.skip(f"needs the pristine sources of {base} ({src}; `reviewbot boot --base {base}` makes them) and bubblewrap")
    sandbox = kbuild.make_sandbox(settings, src, tmp_path / "out")
    fragments = kbuild.fragment_paths(settings, profiles.choose(settings, [], "debug"))
    changed, status, message = kbuild.configure(sandbox, fragments, timeout=600)
    assert (changed, status, message) == (True, "success", "")


@pytest.mark.parametrize("command", [["boot"], ["review", "--boot", str(REPO / "corpus" / "01-memcg-charge-move-cleanups.mbox")]])
def test_unknown_profile_on_the_command_line_is_exit_2_before_any_work(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    from reviewbot.cli import main

    assert main([*command, "--profile", "nope"]) == 2
    assert "unknown build profile 'nope' (build.profiles has: fast, debug)" in capsys.readouterr().err


def test_a_base_cached_with_fewer_runs_than_asked_is_run_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """suite_repeats is not in the base key: CI's debug job (one run) reuses a base run twice,
    but a config asking for two runs does not take a one-run base as its baseline."""
    from reviewbot.boot import cache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sha = "035aa8c16ded313232b2f3d938a038f804fcfaa5"
    one = settings_from_mapping({"vm": {"suite_repeats": 1}})
    two = settings_from_mapping({"vm": {"suite_repeats": 2}})
    key = stage.base_key(one, sha)
    assert key == stage.base_key(two, sha)
    console = tmp_path / "console.log"
    console.write_text("# reviewbot-guest: done\n")
    cache.save(one, key, {"status": "success"}, [("tcg", "completed", 1.0, console)])

    def no_build(*args: object, **kwargs: object) -> object:
        raise AssertionError("built although the base was cached")

    monkeypatch.setattr(stage, "base_source", no_build)
    result, cached, _, _ = stage.ensure_base(one, tmp_path, sha, "tcg", Progress.silent())
    assert cached and len(result.runs) == 1
    with pytest.raises(AssertionError, match="built although"):
        stage.ensure_base(two, tmp_path, sha, "tcg", Progress.silent())
    cache.save(two, key, {"status": "success"}, [("tcg", "completed", 1.0, console)] * 2)
    for settings in (one, two):  # two runs answer both
        result, cached, _, _ = stage.ensure_base(settings, tmp_path, sha, "tcg", Progress.silent())
        assert cached and len(result.runs) == 2


def test_boot_command_progress_writes_to_the_stderr_of_its_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """A module-level Progress kept the stream of the import: a test session's captured
    stderr, closed by the time a later test ran `reviewbot boot` (ValueError, exit 3)."""
    import io

    from reviewbot.commands import boot as command

    first, second = io.StringIO(), io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    command._progress().say("one")
    first.close()
    monkeypatch.setattr("sys.stderr", second)
    command._progress().say("two")
    assert "[boot]" in second.getvalue() and "two" in second.getvalue()
