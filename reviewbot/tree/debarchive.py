"""A kernel base from a Debian archive suite the machine does not use (``tree.sources``
entry ``debian:trixie-backports/linux-source-7.2``).

Debian 12 carries only 6.1 and 6.12, but patches on the list today are written against
7.x; the newest ``linux-source-X.Y`` of a later suite is the nearest release a machine
without git.kernel.org can reach. The package is fetched the way apt would trust it,
without changing the machine's apt configuration: the suite's ``InRelease`` is checked
with ``gpgv`` against the Debian archive keyring, the ``Packages`` index against the SHA256
the signed file gives, and the ``.deb`` against the SHA256 the index gives. Only the
kernel tarball is kept out of the package (``dpkg-deb``), in a scratch folder that the
import removes.
"""

from __future__ import annotations

import functools
import hashlib
import lzma
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from reviewbot.errors import BadInputError, InfraError
from reviewbot.proc import run
from reviewbot.progress import Progress

KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
MIRROR = "http://deb.debian.org/debian"
_SPEC = re.compile(
    r"debian:(?P<suite>[a-z0-9][a-z0-9.-]{0,40})/(?P<package>linux-source(?:-\d+\.\d+)?)")
_VERSIONED = re.compile(r"linux-source-\d+\.\d+")
_INDEX = "main/binary-all/Packages.xz"
# Bounds for what comes over the network: a suite's InRelease is ~200 kB, its binary-all
# Packages.xz ~5 MB (sid) and ~50 MB unpacked; a linux-source .deb ~165 MB.
_MAX_RELEASE = 4 << 20
_MAX_INDEX = 64 << 20
_MAX_INDEX_TEXT = 512 << 20
_MAX_DEB = 1 << 30
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ArchivePackage:
    """One ``linux-source`` package of a suite, as its signed index describes it."""

    suite: str
    package: str
    version: str
    filename: str  # pool path, relative to the mirror
    size: int
    sha256: str

    @property
    def label(self) -> str:
        """``"linux-source-7.2 7.2.13-1"``: how the tree records an imported package."""
        return f"{self.package} {self.version}"


def parse_spec(spec: str) -> tuple[str, str] | None:
    """(suite, package) of a ``debian:SUITE/linux-source[-X.Y]`` entry; None otherwise."""
    m = _SPEC.fullmatch(spec.strip())
    return (m["suite"], m["package"]) if m else None


def _chunks(url: str, limit: int) -> Iterator[bytes]:
    """The body of ``url`` in chunks, at most ``limit`` bytes (InfraError beyond it, or
    when the request fails; _MissingError for a 404)."""
    got = 0
    try:
        with requests.get(url, stream=True, timeout=60) as resp:
            if resp.status_code == 404:
                raise _MissingError(url)
            resp.raise_for_status()
            for chunk in resp.iter_content(_CHUNK):
                got += len(chunk)
                if got > limit:
                    raise InfraError(f"{url}: larger than {limit} bytes, not read further")
                yield chunk
    except requests.RequestException as exc:
        raise InfraError(f"fetching {url} failed: {exc}") from exc


class _MissingError(InfraError):
    def __init__(self, url: str) -> None:
        super().__init__(f"fetching {url} failed: 404 Not Found")


def _get(url: str, limit: int) -> bytes:
    return b"".join(_chunks(url, limit))


def _get_if_present(url: str, limit: int) -> bytes | None:
    try:
        return _get(url, limit)
    except _MissingError:
        return None


def verified_release(suite: str, mirror: str = MIRROR, keyring: Path = KEYRING) -> str:
    """The text of ``dists/SUITE/InRelease`` that the archive key signed (only that part:
    gpgv writes out what it verified, so nothing outside the signature is read)."""
    if shutil.which("gpgv") is None or not keyring.is_file():
        raise InfraError(f"cannot check the Debian archive signature: gpgv or {keyring} "
                         "is missing (apt-get install gpgv debian-archive-keyring)")
    signed = _get(f"{mirror}/dists/{suite}/InRelease", _MAX_RELEASE)
    with tempfile.TemporaryDirectory(prefix="reviewbot-release-") as tmp:
        path = Path(tmp) / "InRelease"
        path.write_bytes(signed)
        res = run(["gpgv", "--keyring", str(keyring), "--output", "-", str(path)], timeout=60)
    if not res.ok or not res.stdout:
        raise InfraError(f"the InRelease of Debian suite {suite} does not verify against "
                         f"{keyring}", output=res.stderr)
    return res.stdout


def _index_hash(release: str, name: str) -> tuple[str, int]:
    in_sha256 = False
    for line in release.splitlines():
        if not line.startswith(" "):
            in_sha256 = line.strip() == "SHA256:"
            continue
        parts = line.split()
        if in_sha256 and len(parts) == 3 and parts[2] == name and parts[1].isdigit():
            return parts[0].lower(), int(parts[1])
    raise InfraError(f"the signed release file lists no SHA256 for {name}")


def _stanzas(text: str) -> Iterator[dict[str, str]]:
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line[:1] in (" ", "\t") or ":" not in line:
                continue  # continuation lines (descriptions) are not needed
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        if fields:
            yield fields


def _compare_versions(a: str, b: str) -> int:
    if a == b:
        return 0
    # dpkg's own order (epochs, ~ before anything): a backport 7.2.11-1~bpo13+1 is older
    # than 7.2.11-1.
    return -1 if run(["dpkg", "--compare-versions", a, "lt", b], timeout=30).ok else 1


def newest(suite: str, package: str, mirror: str = MIRROR,
           keyring: Path = KEYRING) -> ArchivePackage:
    """The newest version of ``package`` in ``suite``, from its verified index; for a bare
    ``linux-source``, the newest of every ``linux-source-X.Y`` the suite has (so that
    ``tree update`` moves to 7.3 when the suite does).

    Raises:
        BadInputError: the suite has no such package.
        InfraError: the archive cannot be reached or does not verify.
    """
    release = verified_release(suite, mirror, keyring)
    want_sha, want_size = _index_hash(release, _INDEX)
    # A mirror updates InRelease and the indices one file at a time, and a CDN caches each
    # for its own time: fetch the index by its hash (Acquire-By-Hash, as apt does) so that
    # it is the one the signed file names; by name from archives or proxies without it.
    packed = None
    if re.search(r"^Acquire-By-Hash:\s*yes\s*$", release, re.M | re.I):
        folder, _, _ = _INDEX.rpartition("/")
        packed = _get_if_present(f"{mirror}/dists/{suite}/{folder}/by-hash/SHA256/{want_sha}",
                                 _MAX_INDEX)
    if packed is None:
        packed = _get(f"{mirror}/dists/{suite}/{_INDEX}", _MAX_INDEX)
    if len(packed) != want_size or hashlib.sha256(packed).hexdigest() != want_sha:
        raise InfraError(f"{suite}/{_INDEX} does not match the SHA256 of the signed release")
    try:
        text = lzma.LZMADecompressor().decompress(packed, max_length=_MAX_INDEX_TEXT)
    except lzma.LZMAError as exc:
        raise InfraError(f"{suite}/{_INDEX}: {exc}") from exc
    found = [s for s in _stanzas(text.decode("utf-8", "replace"))
             # A bare linux-source is the newest linux-source-X.Y, never Debian's
             # metapackage of that name (which only depends on it).
             if (s.get("Package") == package != "linux-source"
                 or (package == "linux-source" and _VERSIONED.fullmatch(s.get("Package", ""))))
             and s.get("Filename") and s.get("SHA256")
             and s.get("Size", "").isdigit()]
    if not found:
        raise BadInputError(f"Debian suite {suite} has no package {package}",
                            source=f"debian:{suite}/{package}")
    def order(x: dict[str, str], y: dict[str, str]) -> int:
        return _compare_versions(x.get("Version", ""), y.get("Version", ""))

    best = max(found, key=functools.cmp_to_key(order))
    return ArchivePackage(suite, best["Package"], best["Version"], best["Filename"],
                          int(best["Size"]), best["SHA256"].lower())


def download_tarball(pkg: ArchivePackage, dest: Path, mirror: str = MIRROR,
                     progress: Progress | None = None) -> Path:
    """Download ``pkg``'s .deb into ``dest`` (checked against its SHA256) and keep only
    the kernel tarball it installs (``/usr/src/<package>.tar.xz``). Returns its path."""
    prog = progress or Progress()
    if pkg.size > _MAX_DEB or not re.fullmatch(r"pool/[A-Za-z0-9+~._/-]+\.deb", pkg.filename) \
            or ".." in pkg.filename:
        raise InfraError(f"{pkg.label}: unexpected pool entry {pkg.filename!r} ({pkg.size} bytes)")
    dest.mkdir(parents=True, exist_ok=True)
    deb = dest / f"{pkg.package}.deb"
    url = f"{mirror}/{pkg.filename}"
    digest = hashlib.sha256()
    got = 0
    shown = 0
    with prog.phase(f"downloading {pkg.label} from {pkg.suite} ({pkg.size >> 20} MiB)"), \
            deb.open("wb") as out:
        for chunk in _chunks(url, pkg.size):  # larger than the index says: refused
            got += len(chunk)
            digest.update(chunk)
            out.write(chunk)
            if got - shown >= 32 << 20:
                shown = got
                prog.say(f"{got >> 20} of {pkg.size >> 20} MiB")
    if got != pkg.size or digest.hexdigest() != pkg.sha256:
        deb.unlink(missing_ok=True)
        raise InfraError(f"{url} does not match the SHA256 of the signed index")
    unpacked = dest / "unpacked"
    with prog.phase(f"taking the kernel tarball out of {deb.name}"):
        res = run(["dpkg-deb", "-x", str(deb), str(unpacked)], timeout=1800)
        deb.unlink(missing_ok=True)
        if not res.ok:
            raise InfraError(f"dpkg-deb could not unpack {pkg.label}", output=res.stderr)
    inner = unpacked / "usr" / "src" / f"{pkg.package}.tar.xz"
    if not inner.is_file():
        raise InfraError(f"{pkg.label} installs no /usr/src/{pkg.package}.tar.xz")
    tarball = dest / inner.name
    inner.replace(tarball)
    shutil.rmtree(unpacked, ignore_errors=True)
    return tarball
