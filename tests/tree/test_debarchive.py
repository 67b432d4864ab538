"""A base from another Debian suite (``debian:SUITE/linux-source-X.Y``): a real signed
archive on a loopback HTTP server, made here with gpg and dpkg-deb, checked the way apt
checks it; then imported as a child base of a real tree."""

from __future__ import annotations

import hashlib
import lzma
import shutil
import subprocess
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from treehelp import TAG, sh, write_source

from reviewbot.errors import BadInputError, InfraError
from reviewbot.progress import Progress
from reviewbot.tree import debarchive
from reviewbot.tree.repo import open_tree
from reviewbot.tree.sources import add_sources, base_info, import_archive, parse_source

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("gpg", "gpgv", "dpkg-deb", "dpkg")),
    reason="needs gpg, gpgv, dpkg and dpkg-deb (Debian's gnupg and dpkg packages)")

QUIET = Progress(heartbeat_s=3600)
SPEC = "debian:test-backports/linux-source-6.13"


def _gpg(home: Path, *args: str) -> str:
    return sh(["gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback",
               "--passphrase", "", *args], home)


def _key(base: Path, name: str) -> tuple[Path, Path]:
    """A throwaway signing key: (gpg home, exported public keyring for gpgv)."""
    home = base / f"gnupg-{name}"
    home.mkdir(mode=0o700)
    _gpg(home, "--quick-gen-key", f"{name} <{name}@archive.test>", "ed25519", "sign", "never")
    keyring = base / f"{name}.gpg"
    keyring.write_bytes(subprocess.run(["gpg", "--homedir", str(home), "--export"],
                                       capture_output=True, check=True).stdout)
    return home, keyring


def _deb(base: Path, version: str) -> Path:
    """linux-source-6.13_<version>_all.deb holding /usr/src/linux-source-6.13.tar.xz."""
    src = base / "src" / "linux-source-6.13"
    write_source(src)
    mk = src / "Makefile"
    mk.write_text(mk.read_text().replace("PATCHLEVEL = 1\n", "PATCHLEVEL = 13\n"))
    pkg = base / "pkg"
    (pkg / "usr/src").mkdir(parents=True)
    sh(["tar", "-cJf", str(pkg / "usr/src/linux-source-6.13.tar.xz"), "linux-source-6.13"],
       src.parent)
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN/control").write_text(
        f"Package: linux-source-6.13\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: t <t@archive.test>\nDescription: test kernel source\n")
    out = base / f"linux-source-6.13_{version}_all.deb"
    sh(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(pkg), str(out)], base)
    return out


def _publish(root: Path, home: Path, deb: Path, version: str) -> None:
    pool = root / "pool/main/l/linux"
    pool.mkdir(parents=True)
    shutil.copy(deb, pool / deb.name)
    data = deb.read_bytes()
    stanzas = [
        # An older backport and the current revision: the newest by dpkg's order wins.
        f"Package: linux-source-6.13\nVersion: 6.13.2-1~bpo13+1\nArchitecture: all\n"
        f"Filename: pool/main/l/linux/missing.deb\nSize: 10\nSHA256: {'0' * 64}\n",
        f"Package: linux-source-6.13\nVersion: {version}\nArchitecture: all\n"
        f"Filename: pool/main/l/linux/{deb.name}\nSize: {len(data)}\n"
        f"SHA256: {hashlib.sha256(data).hexdigest()}\nDescription: kernel\n source\n",
        f"Package: linux-source-6.9\nVersion: 6.9.12-1\nArchitecture: all\n"
        f"Filename: pool/main/l/linux/old.deb\nSize: 10\nSHA256: {'1' * 64}\n",
        # Debian's metapackage: it holds no tarball, and has the newest version.
        f"Package: linux-source\nVersion: 6.13.2-2\nArchitecture: all\n"
        f"Filename: pool/main/l/linux/meta.deb\nSize: 10\nSHA256: {'2' * 64}\n",
        "Package: unrelated\nVersion: 99\n",
    ]
    index = lzma.compress("\n".join(stanzas).encode())
    dists = root / "dists/test-backports"
    sha = hashlib.sha256(index).hexdigest()
    # As Debian's mirrors do: the index by hash (what the client must fetch) and by name,
    # where a stale copy stands (a mirror caught between two pushes).
    (dists / "main/binary-all/by-hash/SHA256").mkdir(parents=True)
    (dists / f"main/binary-all/by-hash/SHA256/{sha}").write_bytes(index)
    (dists / "main/binary-all/Packages.xz").write_bytes(lzma.compress(b"Package: stale\n"))
    release = (
        "Origin: Test\nSuite: test-backports\nAcquire-By-Hash: yes\nSHA256:\n"
        f" {sha} {len(index)} main/binary-all/Packages.xz\n")
    (dists / "Release").write_text(release)
    _gpg(home, "--clearsign", "-o", str(dists / "InRelease"), str(dists / "Release"))


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, Path]]:
    """(mirror URL, archive folder, trusted keyring)."""
    base = tmp_path_factory.mktemp("archive")
    home, keyring = _key(base, "archive")
    root = base / "www"
    _publish(root, home, _deb(base, "6.13.2-1"), "6.13.2-1")
    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root, keyring
    server.shutdown()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def test_spec_forms() -> None:
    src = parse_source(SPEC, "http://mirror.test/debian/")
    assert (src.kind, src.url, src.tarball) == ("archive", "http://mirror.test/debian", None)
    assert debarchive.parse_spec(SPEC) == ("test-backports", "linux-source-6.13")
    assert debarchive.parse_spec("debian:sid/linux-source") == ("sid", "linux-source")
    for bad in ("debian:../x/linux-source-7.2", "debian:sid/linux-image-7.2", "debian:sid/"):
        with pytest.raises(BadInputError, match="not a tree source"):
            parse_source(bad)


def test_newest_revision_of_a_verified_index(archive: tuple[str, Path, Path]) -> None:
    mirror, _, keyring = archive
    pkg = debarchive.newest("test-backports", "linux-source-6.13", mirror, keyring)
    assert (pkg.version, pkg.label) == ("6.13.2-1", "linux-source-6.13 6.13.2-1")
    # A bare linux-source follows the suite to its newest major.minor.
    assert debarchive.newest("test-backports", "linux-source", mirror, keyring) == pkg
    with pytest.raises(BadInputError, match="no package linux-source-7.0"):
        debarchive.newest("test-backports", "linux-source-7.0", mirror, keyring)


def test_archive_source_becomes_a_child_base_once(kernel_tree: Path,
                                                  archive: tuple[str, Path, Path]) -> None:
    mirror, _, keyring = archive
    src = parse_source(SPEC, mirror)
    ref, created = import_archive(kernel_tree, src, TAG, QUIET, keyring=keyring)
    assert (ref, created) == ("v6.13.999-debian", True)
    assert open_tree(kernel_tree).bases == (TAG, ref)
    assert base_info(kernel_tree, ref)["package"] == "linux-source-6.13 6.13.2-1"
    assert base_info(kernel_tree, ref)["source"] == SPEC
    assert sh(["git", "rev-parse", f"{ref}^"], kernel_tree) == sh(
        ["git", "rev-parse", f"{TAG}^{{commit}}"], kernel_tree)
    assert not (kernel_tree / ".git/reviewbot-download").exists()
    # init again: known source, not asked for (works offline); update: the archive has no
    # newer revision, so nothing is downloaded or imported.
    offline = parse_source(SPEC, "http://127.0.0.1:9")
    assert add_sources(kernel_tree, [offline], QUIET) == [(ref, False)]
    assert import_archive(kernel_tree, src, TAG, QUIET, refresh=True,
                          keyring=keyring) == (ref, False)


def test_a_tampered_index_or_a_foreign_signature_is_refused(
        kernel_tree: Path, archive: tuple[str, Path, Path], tmp_path: Path) -> None:
    mirror, root, keyring = archive
    _, other = _key(tmp_path, "stranger")
    with pytest.raises(InfraError, match="does not verify"):
        debarchive.newest("test-backports", "linux-source-6.13", mirror, other)
    index = next((root / "dists/test-backports/main/binary-all/by-hash/SHA256").iterdir())
    good = index.read_bytes()
    try:
        index.write_bytes(lzma.compress(b"Package: linux-source-6.13\nVersion: 9\n"))
        with pytest.raises(InfraError, match="does not match the SHA256"):
            import_archive(kernel_tree, parse_source(SPEC, mirror), TAG, QUIET,
                           keyring=keyring)
        # No by-hash copy (a proxy without it): the index by name is read, and checked.
        index.unlink()
        with pytest.raises(InfraError, match="does not match the SHA256"):
            debarchive.newest("test-backports", "linux-source-6.13", mirror, keyring)
    finally:
        index.write_bytes(good)
    assert open_tree(kernel_tree).bases == (TAG,)
    with pytest.raises(InfraError, match="fetching http://127.0.0.1:9"):
        debarchive.newest("test-backports", "linux-source-6.13", "http://127.0.0.1:9",
                          keyring)
