"""Several kernel bases in one repository: where they come from, and how they are added.

``tree.sources`` lists them: Debian package names (``linux-source-6.12``: the tarball the
package installs under /usr/src), tarball paths, and git remotes (``URL#REF``, for a machine
with network access: torvalds/master, mm-unstable, linux-next). The first tarball source
is the root import (:func:`reviewbot.tree.repo.init_from_tarball`); every later tarball
is imported as a *child* of the previous base, so git stores only the files that differ
(6.12 on top of 6.1 adds ~190 MB of objects instead of ~525 MB) and ``git diff v6.1..v6.12``
is one command. A remote is fetched shallow into ``refs/heads/bases/<repo>/<ref>``.

Every base is listed in the tree's own config (``reviewbot.bases``, import order) with its
source, Debian package and import time (``reviewbot.<ref>.*``), which ``tree status`` reads.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from reviewbot.errors import BadInputError, InfraError
from reviewbot.gitcmd import git, git_ok
from reviewbot.proc import run
from reviewbot.progress import Progress
from reviewbot.tree import debarchive
from reviewbot.tree.repo import (
    CONFIG_BASES,
    IMPORT_DATE,
    IMPORT_EMAIL,
    IMPORT_NAME,
    KernelTree,
    debian_package_of,
    kernel_version,
    list_bases,
)

_DEBIAN = re.compile(r"linux-source-\d+\.\d+")
_TARBALL = re.compile(r"\.tar(\.(xz|gz|bz2|zst))?$")
_REF_PART = re.compile(r"[^A-Za-z0-9._-]+")
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class Source:
    """One entry of ``tree.sources``."""

    spec: str
    kind: str  # "debian" | "archive" | "tarball" | "git"
    tarball: Path | None = None
    url: str | None = None
    ref: str | None = None

    @property
    def local_ref(self) -> str:
        """Where a git source is fetched to: ``bases/<repo name>/<ref>``."""
        assert self.url is not None and self.ref is not None
        name = self.url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git") or "remote"
        return f"bases/{_REF_PART.sub('-', name)}/{_REF_PART.sub('-', self.ref)}"


def parse_source(spec: str, mirror: str = debarchive.MIRROR) -> Source:
    """A ``tree.sources`` entry, classified (``mirror``: the Debian archive that
    ``debian:SUITE/PACKAGE`` entries are fetched from).

    Raises:
        BadInputError: the entry is none of the three forms.
    """
    text = spec.strip()
    if _DEBIAN.fullmatch(text):
        return Source(text, "debian", tarball=Path("/usr/src") / f"{text}.tar.xz")
    if debarchive.parse_spec(text):
        return Source(text, "archive", url=mirror.rstrip("/"))
    if "#" in text:
        url, _, ref = text.rpartition("#")
        if url and ref and not ref.startswith("-") and not re.search(r"[\s\0]", url + ref):
            return Source(text, "git", url=url, ref=ref)
    if _TARBALL.search(text):
        return Source(text, "tarball", tarball=Path(text).expanduser())
    raise BadInputError(
        "not a tree source: expected a Debian package (linux-source-6.12), one from "
        "another Debian suite (debian:trixie-backports/linux-source-7.2), a tarball path "
        "(.tar.xz) or a git remote (URL#REF)", source=spec)


def base_info(repo: Path, ref: str) -> dict[str, str]:
    """What the config says about one base: source, package, imported (epoch seconds)."""
    res = git(["config", "--local", "--get-regexp", rf"^reviewbot\.{re.escape(ref)}\."],
              cwd=repo)
    out: dict[str, str] = {}
    for line in res.stdout.splitlines() if res.ok else []:
        key, _, value = line.partition(" ")
        out[key.rsplit(".", 1)[-1]] = value
    return out


def record_base(repo: Path, ref: str, **info: str) -> None:
    """Add ``ref`` to the tree's bases (once) with what is known about it."""
    listed = git(["config", "--local", "--get-all", CONFIG_BASES], cwd=repo).ok
    bases = list_bases(repo)
    # An older tree lists only its root (reviewbot.base): write it first, so that the list
    # stays in import order.
    for ref_ in ([] if listed else bases) + ([] if ref in bases else [ref]):
        git_ok(["config", "--local", "--add", CONFIG_BASES, ref_], cwd=repo)
    for key, value in info.items():
        if value:
            git_ok(["config", "--local", f"reviewbot.{ref}.{key}", value], cwd=repo)


def record_root(tree: KernelTree) -> None:
    """List the root import among the bases with its package, so that ``tree update``
    recognises it (trees made before several bases were supported lack it)."""
    if tree.default_base:
        record_base(tree.path, tree.default_base, package=tree.package or "",
                    source=tree.source or "")


def version_of(repo: Path, ref: str) -> str | None:
    """The kernel version in ``ref``'s top-level Makefile (None when it has none)."""
    res = git(["show", f"{ref}:Makefile"], cwd=repo)
    try:
        return kernel_version(res.stdout) if res.ok else None
    except BadInputError:
        return None


def version_key(version: str | None) -> tuple[int, int, int]:
    """Sortable (major, minor, sublevel); (0, 0, 0) when unknown."""
    m = _VERSION.match(version or "")
    return (int(m[1]), int(m[2]), int(m[3] or 0)) if m else (0, 0, 0)


def newest_first(repo: Path, bases: list[str]) -> list[str]:
    """The order a reviewer tries bases without other hints: development trees (git
    remotes) first, then releases newest first, one per major.minor (an older revision of
    the same stable series is reachable by ``--base`` or ``base-commit:``)."""
    remotes = [b for b in bases if b.startswith("bases/")]
    releases = [(version_key(version_of(repo, b)), b) for b in bases if b not in remotes]
    releases.sort(key=lambda vb: vb[0], reverse=True)
    seen: set[tuple[int, int]] = set()
    out = list(remotes)
    for key, ref in releases:
        if key[:2] in seen and key != (0, 0, 0):
            continue
        seen.add(key[:2])
        out.append(ref)
    return out


# Mainline's cadence, to date a release from its version alone (a tarball import carries no
# date): v5.0 came out on 2019-03-03 and a release follows every ~9.5 weeks; 5.19 was the
# last 5.x. Off by up to six weeks (6.12: estimated 2024-12-30, released 2024-11-17), which
# is enough to tell 2021 from 2025.
_V5_0 = datetime(2019, 3, 3, tzinfo=UTC)
_CADENCE = timedelta(days=66.5)


def release_date(version: tuple[int, int, int]) -> datetime | None:
    """Estimated mainline release date of ``major.minor``; None before 5.0 or unknown."""
    major, minor, _ = version
    if major < 5:
        return None
    steps = (major - 5) * 20 + minor  # 5.0-5.19, then 6.0-6.19 (and so on, by that habit)
    return _V5_0 + steps * _CADENCE


def base_date(repo: Path, ref: str) -> datetime | None:
    """When a base's code is from: a git remote's commit date; a tarball import (fixed
    date 2000) the estimated mainline release of its version."""
    if ref.startswith("bases/"):
        res = git(["log", "-1", "--format=%ct", ref], cwd=repo)
        if res.ok and res.stdout.strip().isdigit():
            return datetime.fromtimestamp(int(res.stdout.strip()), tz=UTC)
        return None
    return release_date(version_key(version_of(repo, ref)))


def _has_package(repo: Path, package: str) -> str | None:
    for ref in list_bases(repo):
        if base_info(repo, ref).get("package") == package:
            return ref
    return None


def tarball_version(tarball: Path) -> str:
    """The kernel version of a tarball, read from its top-level Makefile only.

    Raises:
        BadInputError: no kernel Makefile at the top of the tarball.
    """
    res = run(["tar", "-xOf", tarball, "--wildcards", "--no-wildcards-match-slash",
               "*/Makefile"], timeout=600)
    if not res.ok or not res.stdout:
        raise BadInputError("no Makefile at the top of the tarball: not a kernel source tree",
                            source=str(tarball))
    return kernel_version(res.stdout)


def import_child(repo: Path, tarball: Path, parent: str,
                 progress: Progress | None = None, *, package: str | None = None,
                 source: str | None = None) -> tuple[str, bool]:
    """Import ``tarball`` as a commit whose parent is ``parent``; tag it and record it.

    The checkout and index of ``repo`` are not touched: the files are unpacked into a
    scratch folder and added through a separate index. Idempotent: a tarball whose Debian
    package (with its revision) or whose tag is already in the tree is not imported again.

    Returns:
        (tag, created)
    Raises:
        BadInputError: the tarball is missing or not a kernel tree.
        InfraError: tar or git failed.
    """
    prog = progress or Progress()
    if not tarball.is_file():
        raise BadInputError(
            f"kernel tarball {tarball} not found (apt-get install "
            f"{tarball.name.split('.tar')[0]}, or change tree.sources)")
    package = package or debian_package_of(tarball)
    source = source or tarball.name
    if package and (done := _has_package(repo, package)):
        return done, False
    version = tarball_version(tarball)
    tag = f"v{version}-{'debian' if tarball.name.startswith('linux-source-') else 'import'}"
    if git(["rev-parse", "-q", "--verify", f"refs/tags/{tag}"], cwd=repo).ok:
        record_base(repo, tag, package=package or "", source=source)
        return tag, False
    work = repo / ".git" / "reviewbot-import"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir()
    index = repo / ".git" / "reviewbot-import.index"
    index.unlink(missing_ok=True)
    try:
        with prog.phase(f"unpacking {tarball.name}"):
            res = run(["tar", "-xf", tarball, "-C", work, "--strip-components=1",
                       "--no-same-owner"], timeout=3600)
            if not res.ok:
                raise InfraError(f"unpacking {tarball} failed", command=list(res.argv),
                                 output=res.stderr)
        env = {"GIT_INDEX_FILE": str(index), "GIT_WORK_TREE": str(work)}
        with prog.phase(f"adding Linux {version} on top of {parent}"):
            git_ok(["add", "-A", "-f"], cwd=repo, env=env, timeout=3600)
            tree = git_ok(["write-tree"], cwd=repo, env=env, timeout=600).strip()
        parent_sha = git_ok(["rev-parse", "--verify", f"{parent}^{{commit}}"], cwd=repo).strip()
        ident = {
            "GIT_AUTHOR_NAME": IMPORT_NAME, "GIT_AUTHOR_EMAIL": IMPORT_EMAIL,
            "GIT_AUTHOR_DATE": IMPORT_DATE, "GIT_COMMITTER_NAME": IMPORT_NAME,
            "GIT_COMMITTER_EMAIL": IMPORT_EMAIL, "GIT_COMMITTER_DATE": IMPORT_DATE,
        }
        message = (f"Import Linux {version} ({tarball.name})\n\n"
                   f"Imported by `reviewbot tree init` on top of {parent}, with a fixed\n"
                   "author, committer and date, so the commit id depends only on the files\n"
                   "and the parent.\n")
        commit = git_ok(["commit-tree", tree, "-p", parent_sha, "-m", message], cwd=repo,
                        env=ident).strip()
        git_ok(["tag", tag, commit], cwd=repo)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        index.unlink(missing_ok=True)
    record_base(repo, tag, package=package or "", source=source,
                imported=str(int(time.time())))
    prog.say(f"base {tag} imported ({commit[:12]}, child of {parent})")
    return tag, True


def fetch_remote(repo: Path, source: Source, progress: Progress | None = None,
                 timeout_s: float = 3600) -> tuple[str, bool]:
    """Fetch a git source shallow into ``refs/heads/bases/...``.

    Returns:
        (local ref, changed) - changed is False when the remote ref did not move.
    Raises:
        InfraError: the fetch failed (offline, no such ref), with git's message.
    """
    prog = progress or Progress()
    assert source.url is not None and source.ref is not None
    local = source.local_ref
    before = git(["rev-parse", "-q", "--verify", f"refs/heads/{local}"], cwd=repo)
    with prog.phase(f"fetching {source.ref} from {source.url}"):
        res = git(["fetch", "--depth=1", "--no-tags", "--end-of-options", source.url,
                   f"+{source.ref}:refs/heads/{local}"], cwd=repo, timeout=timeout_s)
    if not res.ok:
        raise InfraError(f"fetching {source.spec} failed", command=list(res.argv),
                         output=res.stderr)
    after = git_ok(["rev-parse", f"refs/heads/{local}"], cwd=repo).strip()
    record_base(repo, local, source=source.spec, imported=str(int(time.time())))
    return local, not before.ok or before.stdout.strip() != after


def import_archive(repo: Path, source: Source, parent: str,
                   progress: Progress | None = None, refresh: bool = False,
                   keyring: Path = debarchive.KEYRING) -> tuple[str, bool]:
    """Import the newest package of a ``debian:SUITE/linux-source-X.Y`` source as a child
    of ``parent``. Without ``refresh`` (``tree init``) a source imported once is not asked
    for again, so init stays offline and idempotent; ``tree update`` asks the archive and
    imports a newer revision as a new base.

    Raises:
        InfraError: the archive cannot be reached or does not verify.
    """
    parsed = debarchive.parse_spec(source.spec)
    assert parsed is not None and source.url is not None
    if not refresh:
        for ref in list_bases(repo):
            if base_info(repo, ref).get("source") == source.spec:
                return ref, False
    pkg = debarchive.newest(*parsed, mirror=source.url, keyring=keyring)
    if done := _has_package(repo, pkg.label):
        return done, False
    scratch = repo / ".git" / "reviewbot-download"
    shutil.rmtree(scratch, ignore_errors=True)
    try:
        tarball = debarchive.download_tarball(pkg, scratch, source.url, progress)
        return import_child(repo, tarball, parent, progress, package=pkg.label,
                            source=source.spec)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def add_sources(repo: Path, sources: list[Source], progress: Progress | None = None,
                fetch: bool = True, refresh: bool = False) -> list[tuple[str, bool]]:
    """Import or fetch every source after the root; each tarball becomes a child of the
    base imported before it. Returns (ref, created or changed) per source, in order.
    A failing source is an error of its own: the others are still added (the first
    error is raised at the end, so ``tree init`` exits 3 naming it)."""
    out: list[tuple[str, bool]] = []
    parent = list_bases(repo)[0]
    first_error: Exception | None = None
    for src in sources:
        try:
            if src.kind == "git":
                if fetch:
                    out.append(fetch_remote(repo, src, progress))
                continue
            if src.kind == "archive":
                ref, created = import_archive(repo, src, parent, progress, refresh)
                out.append((ref, created))
                parent = ref
                continue
            assert src.tarball is not None
            ref, created = import_child(repo, src.tarball, parent, progress)
            out.append((ref, created))
            parent = ref
        except (BadInputError, InfraError) as exc:
            first_error = first_error or exc
            (progress or Progress()).say(f"{src.spec}: {exc}")
    if first_error is not None:
        raise first_error
    return out


@dataclass(frozen=True)
class BaseView:
    """What the review needs to know of the tree's bases, read once per process (and again
    when ``tree init``/``update`` change the tree's config): the try order, each base's
    commit and the date its code is from."""

    order: tuple[str, ...]
    commits: dict[str, str | None]
    dates: dict[str, datetime | None]


def base_view(repo: Path) -> BaseView:
    try:
        stamp = (repo / ".git" / "config").stat().st_mtime_ns
    except OSError:
        stamp = 0
    return _base_view(repo, stamp)


@lru_cache(maxsize=8)
def _base_view(repo: Path, stamp: int) -> BaseView:
    bases = list_bases(repo)
    order = tuple(newest_first(repo, bases))
    commits: dict[str, str | None] = {}
    for ref in bases:
        res = git(["rev-parse", "-q", "--verify", f"{ref}^{{commit}}"], cwd=repo)
        commits[ref] = res.stdout.strip() if res.ok else None
    return BaseView(order, commits, {ref: base_date(repo, ref) for ref in bases})
