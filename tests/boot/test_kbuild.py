"""Config fragments, dropped-option detection, warnings and the sandbox command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from reviewbot.boot import kbuild
from reviewbot.config import Settings, settings_from_mapping
from reviewbot.errors import InfraError


def test_memcg_fragment_asks_for_what_the_tests_need() -> None:
    wanted = kbuild.parse_fragment(kbuild.MEMCG_FRAGMENT.read_text())
    for option in ("CONFIG_SMP", "CONFIG_SLUB", "CONFIG_MEMCG", "CONFIG_MEMCG_KMEM", "CONFIG_SWAP", "CONFIG_BLOCK", "CONFIG_CGROUPS", "CONFIG_SERIAL_8250_CONSOLE", "CONFIG_BLK_DEV_INITRD", "CONFIG_DEBUG_ATOMIC_SLEEP"):
        assert wanted[option] == "y", option
    assert wanted["CONFIG_SLOB"] == "n"


def test_dropped_options_are_named() -> None:
    wanted = {"CONFIG_SWAP": "y", "CONFIG_MEMCG": "y", "CONFIG_SLOB": "n"}
    actual = kbuild.parse_fragment("CONFIG_MEMCG=y\n# CONFIG_SWAP is not set\n")
    assert kbuild.dropped_options(wanted, actual) == ["CONFIG_SWAP=y (got n)"]
    assert kbuild.dropped_options(wanted, {"CONFIG_MEMCG": "y"}) == ["CONFIG_SWAP=y (got unset)"]


def test_verify_config_reports_the_dropped_ones(tmp_path: Path) -> None:
    (tmp_path / ".config").write_text("CONFIG_MEMCG=y\n")
    frag = tmp_path / "f.config"
    frag.write_text("CONFIG_MEMCG=y\nCONFIG_SWAP=y\n")
    message = kbuild.verify_config(tmp_path, [frag])
    assert "CONFIG_SWAP=y" in message and "CONFIG_MEMCG" not in message


def test_warnings_parsed_relative_to_the_source_tree() -> None:
    log = (
        "  CC      mm/memcontrol.o\n"
        "/src/mm/memcontrol.c:6951:9: warning: unused variable 'x' [-Wunused-variable]\n"
        "/src/kernel/exit.c:450:1: warning: no previous prototype for 'f' [-Wmissing-prototypes]\n"
    )
    warnings = kbuild.parse_warnings(log)
    assert [(w.file, w.line, w.flag) for w in warnings] == [
        ("mm/memcontrol.c", 6951, "-Wunused-variable"),
        ("kernel/exit.c", 450, "-Wmissing-prototypes"),
    ]
    assert kbuild.compiled_files(log) == ["mm/memcontrol.c"]


def test_new_warnings_only_in_touched_files_and_ignoring_moved_lines() -> None:
    old = kbuild.CompilerWarning("mm/memcontrol.c", 10, "unused variable 'x'", "-Wunused-variable")
    moved = kbuild.CompilerWarning("mm/memcontrol.c", 99, "unused variable 'x'", "-Wunused-variable")
    fresh = kbuild.CompilerWarning("mm/memcontrol.c", 50, "unused variable 'y'", "-Wunused-variable")
    elsewhere = kbuild.CompilerWarning("kernel/exit.c", 5, "unused variable 'z'", "-Wunused-variable")
    assert kbuild.new_warnings([old], [moved, fresh, elsewhere], ["mm/memcontrol.c"]) == [fresh]
    # a touched header can cause warnings in any file that includes it
    assert kbuild.new_warnings([old], [fresh, elsewhere], ["include/linux/memcontrol.h"]) == [fresh, elsewhere]


def _sandbox(tmp_path: Path, allow: bool = False) -> kbuild.Sandbox:
    return kbuild.Sandbox(tmp_path / "src", tmp_path / "build", tmp_path / "ccache", 1024, allow_unsandboxed=allow)


def test_sandbox_has_no_network_and_only_two_writable_mounts(tmp_path: Path) -> None:
    sandbox = _sandbox(tmp_path)
    if not sandbox.available():
        pytest.skip("bubblewrap not installed")
    argv = sandbox.wrap(["make"])
    assert argv[:4] == ["prlimit", f"--as={1024 * 1024 * 1024}",
                        f"--fsize={8192 * 1024 * 1024}", "--"]
    assert "--unshare-all" in argv and "--share-net" not in argv
    writable = [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"]
    assert writable == [str(tmp_path / "build"), str(tmp_path / "ccache")]
    assert argv[argv.index(str(tmp_path / "src")) - 1] == "--ro-bind"
    assert argv[-1] == "make"


def test_missing_bwrap_refuses_unless_allowed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kbuild.shutil, "which", lambda name: None)
    with pytest.raises(InfraError, match="refusing"):
        _sandbox(tmp_path).wrap(["make"])
    assert _sandbox(tmp_path, allow=True).wrap(["make"])[-1] == "make"


def test_sandbox_really_blocks_network_and_writes(tmp_path: Path) -> None:
    sandbox = _sandbox(tmp_path)
    if not sandbox.available():
        pytest.skip("bubblewrap not installed")
    for d in ("src", "build", "ccache"):
        (tmp_path / d).mkdir()
    ok = sandbox.run(["sh", "-c", "echo hi > /build/x && echo hi > /ccache/x"], timeout=30)
    assert ok.ok and (tmp_path / "build/x").exists()
    ro = sandbox.run(["sh", "-c", "echo hi > /src/y"], timeout=30)
    assert not ro.ok and not (tmp_path / "src/y").exists()
    outside = tmp_path / "outside"
    outside.mkdir()
    denied = sandbox.run(["sh", "-c", f"echo hi > {outside}/z"], timeout=30)
    assert not denied.ok and not (outside / "z").exists()
    net = sandbox.run(["sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1"], timeout=30)
    assert net.stdout.split() == ["lo"]


def test_wall_clock_limit_is_a_result(tmp_path: Path) -> None:
    sandbox = _sandbox(tmp_path)
    if not sandbox.available():
        pytest.skip("bubblewrap not installed")
    for d in ("src", "build", "ccache"):
        (tmp_path / d).mkdir()
    result = sandbox.run(["sleep", "30"], timeout=1)
    assert result.timed_out


def test_extra_fragments_come_from_config(tmp_path: Path) -> None:
    extra = tmp_path / "kasan.config"
    extra.write_text("CONFIG_KASAN=y\n")
    settings = settings_from_mapping({"build": {"fragments": [str(extra)]}})
    assert kbuild.fragment_paths(settings) == [kbuild.MEMCG_FRAGMENT, kbuild.GCOV_FRAGMENT, extra]
    assert kbuild.config_key([kbuild.MEMCG_FRAGMENT]) != kbuild.config_key([kbuild.MEMCG_FRAGMENT, extra])
    assert kbuild.fragment_paths(Settings()) == [kbuild.MEMCG_FRAGMENT, kbuild.GCOV_FRAGMENT]
    # build.coverage off: no gcov in either kernel, so the config (and the base cache) differ
    no_cov = settings_from_mapping({"build": {"coverage": False}})
    assert kbuild.fragment_paths(no_cov) == [kbuild.MEMCG_FRAGMENT]


def test_build_timeout_is_a_result_naming_the_limit(tmp_path: Path) -> None:
    import shutil as _shutil

    settings0 = Settings()
    src = settings0.path(settings0.tree.path)  # the tree `reviewbot tree init` imported
    if not (src / "Makefile").is_file() or _shutil.which("bwrap") is None:
        pytest.skip(f"needs the kernel tree at {src} (reviewbot tree init) and bubblewrap")
    settings = settings_from_mapping({"build": {"timeout_s": 1, "ccache_dir": str(tmp_path / "cc")}})
    # the read-only reference tree is mounted writable inside the sandbox only if it is;
    # tinyconfig writes only to O=, so a 1 s limit is hit while configuring.
    result = kbuild.build_kernel(settings, src, tmp_path / "out")
    assert result.status == "timeout"
    assert result.reason.startswith("build timed out after 1 s")


def test_options_the_base_does_not_declare_are_skipped(tmp_path: Path) -> None:
    # A 6.12-like tree: MEMCG_V1 exists, MEMCG_KMEM and BASE_FULL do not.
    src = tmp_path / "src"
    (src / "mm").mkdir(parents=True)
    (src / "mm" / "Kconfig").write_text(
        "menuconfig MEMCG\n\tbool \"Memory controller\"\n\nconfig MEMCG_V1\n\tbool \"v1\"\n")
    (src / "init").mkdir()
    (src / "init" / "Kconfig").write_text("config SWAP\n\tbool\n")
    assert kbuild.kconfig_symbols(src) == {"MEMCG", "MEMCG_V1", "SWAP"}
    out = tmp_path / "out"
    out.mkdir()
    (out / ".config").write_text("CONFIG_MEMCG=y\nCONFIG_SWAP=y\n")
    frag = tmp_path / "f.config"
    frag.write_text("CONFIG_MEMCG=y\nCONFIG_MEMCG_KMEM=y\nCONFIG_BASE_FULL=y\nCONFIG_MEMCG_V1=y\n")
    # Without the tree every option counts; with it, only MEMCG_V1 is really dropped.
    assert "CONFIG_MEMCG_KMEM=y" in kbuild.verify_config(out, [frag])
    message = kbuild.verify_config(out, [frag], src)
    assert "CONFIG_MEMCG_V1=y (got unset)" in message and "KMEM" not in message
    assert "BASE_FULL" not in message
