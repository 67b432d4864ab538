"""QEMU command line and accelerator choice (no guest booted here)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from reviewbot.boot import vm
from reviewbot.config import settings_from_mapping


def test_qemu_exits_by_itself_and_never_reboots(tmp_path: Path) -> None:
    settings = settings_from_mapping({"vm": {"memory_mb": 384, "cpus": 2}})
    argv = vm.qemu_argv(settings, tmp_path / "bzImage", tmp_path / "initrd", tmp_path / "c.log", "tcg", vm.kernel_cmdline())
    assert "-no-reboot" in argv
    assert argv[argv.index("-m") + 1] == "384" and argv[argv.index("-smp") + 1] == "2"
    assert argv[argv.index("-accel") + 1].startswith("tcg")
    assert argv[argv.index("-serial") + 1] == f"file:{tmp_path / 'c.log'}"
    cmdline = argv[argv.index("-append") + 1]
    assert "panic=-1" in cmdline and "console=ttyS0" in cmdline


def test_kvm_never_uses_cpu_host(tmp_path: Path) -> None:
    settings = settings_from_mapping({})
    argv = vm.qemu_argv(settings, tmp_path / "k", tmp_path / "i", tmp_path / "c", "kvm", "")
    assert "host" not in argv  # -cpu host aborted on an MSR on this machine
    assert argv[argv.index("-accel") + 1] == "kvm"


def test_forced_accel_skips_the_probe(tmp_path: Path) -> None:
    settings = settings_from_mapping({"vm": {"accel": "tcg"}})
    assert vm.choose_accel(settings, tmp_path / "k", tmp_path) == ("tcg", "vm.accel: tcg")


def test_cached_probe_answer_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    settings = settings_from_mapping({})
    monkeypatch.setattr(vm.os, "access", lambda path, mode: True)
    cache = vm._probe_cache(settings)
    cache.parent.mkdir(parents=True)
    import socket

    cache.write_text(json.dumps({"host": f"{socket.gethostname()} {settings.vm.qemu}", "time": time.time(), "accel": "tcg", "why": "KVM probe boot hung"}))
    called = []
    monkeypatch.setattr(vm, "probe_kvm", lambda *a: called.append(a) or ("kvm", "x"))
    accel, why = vm.choose_accel(settings, tmp_path / "k", tmp_path)
    assert accel == "tcg" and "cached" in why and not called
