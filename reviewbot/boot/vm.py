"""Boot a kernel in QEMU: the command, the KVM probe, the hard timeout and the console log.

KVM is used only after a short probe boot proved that it works on this host (here /dev/kvm
exists but a KVM guest hung at "Booting from ROM", and `-cpu host` aborted on an MSR), else
TCG. The probe's answer is cached per host and QEMU binary for a day. The guest ends with
`reboot -f` and QEMU runs with -no-reboot, so a healthy guest makes QEMU exit by itself; a
hard timeout kills it otherwise. Parsing the console (KTAP, splats) is reviewbot.boot.console.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from reviewbot import proc
from reviewbot.boot.guest.initramfs import probe_initramfs
from reviewbot.config import Settings
from reviewbot.errors import InfraError

PROBE_MARKER = "reviewbot-probe-ok"
DONE_MARKER = "# reviewbot-guest: done"
PROBE_CACHE_S = 24 * 3600

# 2 RAM disks (brd): ram0 swap, ram1 ext2 scratch; pages are allocated only when written.
RAMDISK_KB = 200 * 1024


@dataclass(frozen=True)
class BootRun:
    accel: str  # "kvm" or "tcg"
    status: str  # completed | timeout | exited (QEMU ended before the guest said done)
    seconds: float
    console_path: Path
    console: str
    returncode: int

    @property
    def last_lines(self) -> str:
        return "\n".join(self.console.splitlines()[-25:])


def kernel_cmdline(extra: str = "") -> str:
    # panic=-1: reboot at once on panic, which -no-reboot turns into QEMU exiting.
    # hung_task/RCU stall reports stay on (see the memcg fragment) so hangs become splats.
    parts = [
        "console=ttyS0,115200",
        "panic=-1",
        f"brd.rd_nr=2 brd.rd_size={RAMDISK_KB}",
        "printk.time=1",
        "rdinit=/init",
    ]
    if extra:
        parts.append(extra)
    return " ".join(parts)


def qemu_argv(
    settings: Settings, kernel: Path, initrd: Path, console: Path, accel: str, cmdline: str
) -> list[str]:
    vm = settings.vm
    argv = [
        vm.qemu,
        "-nodefaults",
        "-no-reboot",
        "-display", "none",
        "-monitor", "none",
        "-serial", f"file:{console}",
        "-m", str(vm.memory_mb),
        "-smp", str(vm.cpus),
        "-kernel", str(kernel),
        "-initrd", str(initrd),
        "-append", cmdline,
    ]  # fmt: skip
    if accel == "kvm":
        argv += ["-accel", "kvm", "-cpu", "qemu64"]  # not -cpu host: it aborted on an MSR here
    else:
        argv += ["-accel", "tcg,thread=multi"]
    return argv


_FOLLOWED = re.compile(r"^(?:# reviewbot-run: (?P<run>\S+)|(?P<res>(?:not )?ok \d+ .*))$")


class ConsoleFollower:
    """Reads the console file as QEMU writes it and says what the guest is doing: each
    program as it starts, each test result (a TCG boot and suite is 30-150 s), and, when a
    program prints nothing for ``quiet_s`` (a test that hangs until its time limit), a
    "still running" line every ``quiet_s`` so the terminal never looks stuck."""

    def __init__(self, path: Path, say: Callable[[str], None], quiet_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path, self.say, self.offset = path, say, 0
        self.program = ""
        self.quiet_s, self.clock = quiet_s, clock
        self.started = self.heard = self.told = clock()  # program start, last result, last line

    def __call__(self) -> str | None:
        try:
            with self.path.open("rb") as fh:
                fh.seek(self.offset)
                chunk = fh.read()
        except OSError:
            return None
        end = chunk.rfind(b"\n") + 1
        self.offset += end
        now = self.clock()
        for raw in chunk[:end].decode("utf-8", "replace").splitlines():
            m = _FOLLOWED.match(raw.strip())
            if m is None:
                continue
            self.heard = self.told = now
            if m["run"]:
                self.program, self.started = m["run"], now
                self.say(f"  running {self.program}")
            else:
                self.say(f"    {self.program}: {m['res'][:120]}")
        if self.program and now - self.told >= self.quiet_s:
            self.told = now
            self.say(f"  still running {self.program} ({now - self.started:.0f}s; last "
                     f"result {now - self.heard:.0f}s ago)")
        return None


def boot(
    settings: Settings,
    kernel: Path,
    initrd: Path,
    console: Path,
    *,
    accel: str,
    timeout_s: float,
    cmdline_extra: str = "",
    say: Callable[[str], None] | None = None,
) -> BootRun:
    """Boot once; the console goes to ``console``. Timeout kills QEMU (process group).
    ``say`` gets each program start and test result as the guest prints them."""
    if shutil.which(settings.vm.qemu) is None:
        raise InfraError(f"{settings.vm.qemu} not found (install qemu-system-x86)")
    console.parent.mkdir(parents=True, exist_ok=True)
    console.unlink(missing_ok=True)
    argv = qemu_argv(settings, kernel, initrd, console, accel, kernel_cmdline(cmdline_extra))
    start = time.monotonic()
    follow = ConsoleFollower(console, say) if say is not None else None
    result = proc.run(argv, timeout=timeout_s, watch=follow, watch_every_s=1.0)
    if follow is not None:
        follow()  # the last lines
    seconds = time.monotonic() - start
    text = console.read_text(encoding="utf-8", errors="replace") if console.exists() else ""
    text = text.replace("\r\n", "\n")
    if result.timed_out:
        status = "timeout"
    elif DONE_MARKER in text:
        status = "completed"
    else:
        status = "exited"
        if result.returncode != 0 and not text:
            raise InfraError(
                f"QEMU failed to start (exit {result.returncode})",
                command=argv,
                output=result.excerpt(),
            )
    return BootRun(accel, status, seconds, console, text, result.returncode)


# ---- KVM probe -------------------------------------------------------------------------


def _probe_cache(settings: Settings) -> Path:
    return Path(settings.path("{cache}")) / "boot" / "kvm-probe.json"


def choose_accel(settings: Settings, kernel: Path, work: Path) -> tuple[str, str]:
    """Return (accel, why). ``vm.accel`` kvm|tcg forces; auto probes (cached)."""
    wanted = settings.vm.accel
    if wanted in ("kvm", "tcg"):
        return wanted, f"vm.accel: {wanted}"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg", "no usable /dev/kvm"
    cache = _probe_cache(settings)
    host = f"{socket.gethostname()} {settings.vm.qemu}"
    try:
        cached = json.loads(cache.read_text())
        if cached.get("host") == host and time.time() - float(cached["time"]) < PROBE_CACHE_S:
            return str(cached["accel"]), f"cached KVM probe: {cached['why']}"
    except (OSError, ValueError, KeyError):
        pass
    accel, why = probe_kvm(settings, kernel, work)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"host": host, "time": time.time(), "accel": accel, "why": why}))
    return accel, why


def probe_kvm(settings: Settings, kernel: Path, work: Path) -> tuple[str, str]:
    """Boot ``kernel`` under KVM with an initramfs that only prints a marker and reboots."""
    work.mkdir(parents=True, exist_ok=True)
    initrd = probe_initramfs(work / "probe-initrd.gz", PROBE_MARKER)
    console = work / "kvm-probe-console.log"
    argv = qemu_argv(settings, kernel, initrd, console, "kvm", kernel_cmdline())
    start = time.monotonic()
    result = proc.run(argv, timeout=settings.vm.kvm_probe_timeout_s)
    seconds = time.monotonic() - start
    text = console.read_text(errors="replace") if console.exists() else ""
    if PROBE_MARKER in text:
        return "kvm", f"KVM probe boot reached userspace in {seconds:.1f} s"
    if result.timed_out:
        last = (text.strip().splitlines() or ["(no console output)"])[-1]
        return "tcg", f"KVM probe boot hung ({settings.vm.kvm_probe_timeout_s} s; last line: {last})"
    return "tcg", f"KVM probe failed (exit {result.returncode}): {result.excerpt(3)}"
