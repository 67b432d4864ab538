"""Write the guest's initramfs: a cpio "newc" archive made in Python, no cpio binary needed.

The archive holds busybox-static, the init script, the charge tests and the kernel's cgroup
selftests, plus /dev/console: without that node the kernel finds no initial console on the
rootfs and init's output never reaches the serial port.
"""

from __future__ import annotations

import gzip
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from reviewbot.errors import InfraError

GUEST_DIR = Path(__file__).resolve().parent
INIT_SCRIPT = GUEST_DIR / "init.sh"

# Directories init mounts on or writes into.
_DIRS = ("bin", "dev", "etc", "etc/reviewbot", "proc", "sys", "tmp", "mnt", "scratch", "root")

# Name resolution for static binaries: glibc's getaddrinfo() in a static program still
# dlopen()s the NSS "files" module, which needs libc.so.6 and the loader at run time
# (test_memcontrol's test_memcg_sock resolves "localhost" and failed without them).
_NSS_LIBS = (
    "/lib/x86_64-linux-gnu/libnss_files.so.2",
    "/lib/x86_64-linux-gnu/libc.so.6",
    "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
)
_HOSTS = b"127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"
_NSSWITCH = b"hosts: files\nnetworks: files\nservices: files\nprotocols: files\n"


def _nss_entries() -> list[_Entry]:
    entries = [
        _Entry("etc/hosts", stat.S_IFREG | 0o644, _HOSTS),
        _Entry("etc/nsswitch.conf", stat.S_IFREG | 0o644, _NSSWITCH),
    ]
    libs = [Path(p) for p in _NSS_LIBS if Path(p).is_file()]
    if len(libs) == len(_NSS_LIBS):
        entries += [_Entry("lib", stat.S_IFDIR | 0o755), _Entry("lib/x86_64-linux-gnu", stat.S_IFDIR | 0o755)]
        entries += [_Entry("lib64", stat.S_IFDIR | 0o755)]
        for lib in libs:
            entries.append(_Entry(str(lib).lstrip("/"), stat.S_IFREG | 0o755, lib.read_bytes()))
        entries.append(
            _Entry("lib64/ld-linux-x86-64.so.2", stat.S_IFLNK | 0o777, b"/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
        )
    return entries


@dataclass(frozen=True)
class GuestProgram:
    """A static binary copied into /bin and run by init as one suite entry."""

    name: str  # KTAP suite name, e.g. "memcg_charge" or "test_memcontrol"
    binary: Path
    args: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Entry:
    path: str  # inside the archive, without leading "/"
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def _newc_header(ino: int, entry: _Entry, namesize: int) -> bytes:
    # newc: magic + 13 eight-digit hex fields (see the kernel's
    # Documentation/driver-api/early-userspace/buffer-format.rst)
    fields = (
        ino,
        entry.mode,
        0,  # uid
        0,  # gid
        1,  # nlink
        0,  # mtime: fixed so that the same inputs give the same bytes
        len(entry.data),
        0,  # devmajor
        0,  # devminor
        entry.rdev[0],
        entry.rdev[1],
        namesize,
        0,  # check
    )
    return b"070701" + b"".join(b"%08X" % f for f in fields)


def _pad4(n: int) -> bytes:
    return b"\0" * (-n % 4)


def write_cpio(entries: Iterable[_Entry]) -> bytes:
    """Serialise entries into a newc archive ending with the TRAILER!!! record."""
    out = bytearray()
    all_entries = [*entries, _Entry("TRAILER!!!", 0)]
    for ino, entry in enumerate(all_entries, start=1):
        name = entry.path.encode() + b"\0"
        header = _newc_header(ino if entry.mode else 0, entry, len(name))
        out += header + name
        out += _pad4(len(header) + len(name))
        out += entry.data + _pad4(len(entry.data))
    return bytes(out)


def build_initramfs(
    dest: Path,
    programs: Iterable[GuestProgram],
    *,
    busybox: Path = Path("/bin/busybox"),
    program_timeout_s: int = 300,
) -> Path:
    """Write a gzip-compressed initramfs to ``dest`` and return it.

    Args:
        dest: output file (its directory must exist).
        programs: run in this order by init; each gets a suite line "NAME /bin/NAME ARGS".
        busybox: a statically linked busybox (Debian's busybox-static installs /bin/busybox).
        program_timeout_s: per-program limit inside the guest (busybox `timeout`).
    Raises:
        InfraError: busybox or a program binary is missing.
    """
    progs = list(programs)
    for path in (busybox, INIT_SCRIPT, *(p.binary for p in progs)):
        if not path.is_file():
            raise InfraError(f"guest file missing: {path}", detail="install busybox-static")
    entries = [_Entry(d, stat.S_IFDIR | 0o755) for d in _DIRS]
    entries.append(_Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)))
    entries.append(_Entry("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes()))
    entries.append(_Entry("init", stat.S_IFREG | 0o755, INIT_SCRIPT.read_bytes()))
    entries += _nss_entries()
    suite = []
    for prog in progs:
        entries.append(_Entry(f"bin/{prog.name}", stat.S_IFREG | 0o755, prog.binary.read_bytes()))
        suite.append(" ".join((prog.name, f"/bin/{prog.name}", *prog.args)))
    entries.append(_Entry("etc/reviewbot/suite", stat.S_IFREG | 0o644, ("\n".join(suite) + "\n").encode()))
    entries.append(
        _Entry("etc/reviewbot/timeout", stat.S_IFREG | 0o644, f"{program_timeout_s}\n".encode())
    )
    # mtime=0: identical inputs give an identical file (cache keys, reproducible runs)
    dest.write_bytes(gzip.compress(write_cpio(entries), compresslevel=6, mtime=0))
    return dest


def probe_initramfs(dest: Path, marker: str, *, busybox: Path = Path("/bin/busybox")) -> Path:
    """A minimal initramfs whose init prints ``marker`` and reboots: the KVM probe boot."""
    if not busybox.is_file():
        raise InfraError(f"guest file missing: {busybox}", detail="install busybox-static")
    script = f"#!/bin/busybox sh\n/bin/busybox echo {marker}\n/bin/busybox reboot -f\n"
    entries = [
        _Entry("bin", stat.S_IFDIR | 0o755),
        _Entry("dev", stat.S_IFDIR | 0o755),
        _Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        _Entry("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes()),
        _Entry("init", stat.S_IFREG | 0o755, script.encode()),
    ]
    dest.write_bytes(gzip.compress(write_cpio(entries), compresslevel=6, mtime=0))
    return dest
