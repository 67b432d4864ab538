"""The Python cpio writer produces archives that cpio(1) reads back."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from reviewbot.boot.guest.initramfs import GuestProgram, build_initramfs


@pytest.mark.skipif(shutil.which("cpio") is None or not Path("/bin/busybox").is_file(), reason="needs cpio and busybox-static")
def test_initramfs_lists_init_console_and_programs(tmp_path: Path) -> None:
    prog = tmp_path / "memcg_charge"
    prog.write_bytes(b"\x7fELF fake")
    out = build_initramfs(tmp_path / "initrd.gz", [GuestProgram("memcg_charge", prog, ("-v",))])
    listing = subprocess.run(["cpio", "-itv"], input=gzip.decompress(out.read_bytes()), capture_output=True, check=True).stdout.decode()
    assert "init" in listing.split()
    console = next(line for line in listing.splitlines() if line.endswith("dev/console"))
    assert console.startswith("crw") and "5,   1" in console
    extract = tmp_path / "x"
    extract.mkdir()
    subprocess.run(["cpio", "-id", "--no-absolute-filenames"], cwd=extract, input=gzip.decompress(out.read_bytes()), capture_output=True, check=True)
    assert (extract / "bin/memcg_charge").read_bytes() == b"\x7fELF fake"
    assert (extract / "etc/reviewbot/suite").read_text() == "memcg_charge /bin/memcg_charge -v\n"


def test_same_inputs_give_the_same_bytes(tmp_path: Path) -> None:
    if not Path("/bin/busybox").is_file():
        pytest.skip("needs busybox-static")
    prog = tmp_path / "p"
    prog.write_bytes(b"x")
    a = build_initramfs(tmp_path / "a.gz", [GuestProgram("p", prog)]).read_bytes()
    b = build_initramfs(tmp_path / "b.gz", [GuestProgram("p", prog)]).read_bytes()
    assert a == b


def test_a_confirming_run_takes_only_the_tests_that_regressed(tmp_path: Path) -> None:
    from reviewbot.boot.guest import programs

    charge, memcontrol, kmem = tmp_path / "memcg_charge", tmp_path / "test_memcontrol", tmp_path / "test_kmem"
    main = [GuestProgram("memcg_charge", charge, ("anon_charge", "threads_migrate", "zombie_leader")),
            GuestProgram("test_memcontrol", memcontrol), GuestProgram("test_kmem", kmem)]
    v1 = [GuestProgram("memcg_charge", charge, ("v1_immigration",))]
    only = {"memcg_charge.threads_migrate", "test_memcontrol.test_memcg_low"}
    assert programs.subset(main, only) == [GuestProgram("memcg_charge", charge, ("threads_migrate",)),
                                           GuestProgram("test_memcontrol", memcontrol)]
    assert programs.subset(v1, only) == []  # the v1 boot is dropped
    assert programs.subset(v1, {"memcg_charge.v1_immigration"}) == v1
