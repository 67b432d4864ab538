"""The kernel repository: ``tree init`` (import once, deterministic) and opening it.

The import of Debian's tarball is one commit with a fixed author, committer and date, so the
commit id depends only on the files: every machine that imports the same
``linux-source-6.1`` package gets the same id, and corpus series can name it in
``base-commit:``. The tarball's top-level .gitignore ends with Debian's packaging lines
``/*`` and ``!/debian/``, which make ``git add -A`` import nothing at all, hence ``-f``.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from reviewbot.errors import BadInputError, InfraError
from reviewbot.gitcmd import git, git_ok
from reviewbot.proc import run
from reviewbot.progress import Progress

# The identity and date of the import commit: fixed, so the commit id is reproducible.
IMPORT_NAME = "reviewbot import"
IMPORT_EMAIL = "reviewbot@localhost"
IMPORT_DATE = "2000-01-01T00:00:00+0000"
# git config keys (in the tree's own .git/config) that describe the import.
CONFIG_BASE = "reviewbot.base"
CONFIG_SOURCE = "reviewbot.source"
CONFIG_VERSION = "reviewbot.version"
# "linux-source-6.1 6.1.192-3": Debian revises a package without changing the kernel
# version, and each revision imports to another commit id (docs/tree.md); kept outside the
# commit so that the id stays a function of the files.
CONFIG_PACKAGE = "reviewbot.package"
CONFIG_BASES = "reviewbot.bases"  # multi-valued: every base ref, in import order (sources.py)

_MAKEFILE_VAR = re.compile(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)\s*=\s*(\S*)\s*$", re.M)


@dataclass(frozen=True)
class KernelTree:
    """An opened kernel repository and its default base (the imported tag)."""

    path: Path
    default_base: str | None  # ref: the tag made by `tree init`, or HEAD's sha in place
    version: str | None
    source: str | None
    package: str | None = None  # the Debian package and revision the tarball came from
    bases: tuple[str, ...] = ()  # every base in import order, the root (default_base) first


def kernel_version(makefile_text: str) -> str:
    """``6.1.192`` from the top-level Makefile's VERSION/PATCHLEVEL/SUBLEVEL/EXTRAVERSION.

    Raises:
        BadInputError: the text is not a kernel Makefile.
    """
    found = dict(_MAKEFILE_VAR.findall(makefile_text))
    if not {"VERSION", "PATCHLEVEL"} <= found.keys():
        raise BadInputError("no VERSION/PATCHLEVEL in Makefile: not a kernel tree")
    version = f"{found['VERSION']}.{found['PATCHLEVEL']}"
    if found.get("SUBLEVEL", "0") not in ("", "0"):
        version += f".{found['SUBLEVEL']}"
    return version + str(found.get("EXTRAVERSION", ""))


def open_tree(path: Path) -> KernelTree:
    """Open a repository made by ``tree init`` (or any kernel clone).

    Raises:
        InfraError: no git repository with a kernel Makefile at ``path``.
    """
    if not (path / ".git").exists():
        raise InfraError(
            f"no kernel tree at {path}: run `reviewbot tree init` (or pass --tree DIR, "
            "or --no-tree to review without applying)"
        )
    default = _config_get(path, CONFIG_BASE) or _head(path)
    return KernelTree(
        path=path,
        default_base=default,
        version=_config_get(path, CONFIG_VERSION),
        source=_config_get(path, CONFIG_SOURCE),
        package=_config_get(path, CONFIG_PACKAGE),
        bases=tuple(list_bases(path)) or ((default,) if default else ()),
    )


def list_bases(repo: Path) -> list[str]:
    """Every base ref of the tree in import order (a tree made before several bases were
    supported lists only its ``reviewbot.base``)."""
    res = git(["config", "--local", "--get-all", CONFIG_BASES], cwd=repo)
    bases = [line.strip() for line in res.stdout.splitlines() if line.strip()] if res.ok else []
    if not bases:
        root = _config_get(repo, CONFIG_BASE)
        bases = [root] if root else []
    return list(dict.fromkeys(bases))


def _config_get(path: Path, key: str) -> str | None:
    res = git(["config", "--local", "--get", key], cwd=path)
    return res.stdout.strip() or None if res.ok else None


def _head(path: Path) -> str | None:
    res = git(["rev-parse", "--verify", "-q", "HEAD^{commit}"], cwd=path)
    return res.stdout.strip() or None if res.ok else None


def _already_imported(path: Path) -> KernelTree | None:
    if not (path / ".git").exists():
        return None
    tree = open_tree(path)
    if tree.default_base and git(["rev-parse", "-q", "--verify", tree.default_base], cwd=path).ok:
        return tree
    return None


def init_from_tarball(
    tarball: Path, dest: Path, progress: Progress | None = None
) -> tuple[KernelTree, bool]:
    """Unpack a kernel source tarball into ``dest`` and import it as one tagged commit.

    Idempotent: a ``dest`` that already holds an import is returned as is. The work happens
    in ``dest.partial`` and is renamed at the end, so an interrupted import leaves no
    half-made tree behind (the next run starts the partial one again).

    Returns:
        (tree, created) - created is False when the import already existed.
    Raises:
        BadInputError: the tarball is missing or holds no kernel Makefile.
        InfraError: tar or git failed.
    """
    prog = progress or Progress()
    done = _already_imported(dest)
    if done is not None:
        prog.say(f"{dest} already holds {done.default_base}: nothing to do")
        return done, False
    if dest.exists() and any(dest.iterdir()):
        raise BadInputError(f"{dest} exists and is not a tree made by `reviewbot tree init`")
    if not tarball.is_file():
        raise BadInputError(
            f"kernel tarball {tarball} not found (apt-get install linux-source-6.1, "
            "or pass --from-tarball FILE / --from-git DIR)"
        )
    work = dest.with_name(dest.name + ".partial")
    if work.exists():
        prog.say(f"removing the leftover of an interrupted import: {work}")
        shutil.rmtree(work)
    work.mkdir(parents=True)
    with prog.phase(f"unpacking {tarball.name}"):
        res = run(
            ["tar", "-xf", tarball, "-C", work, "--strip-components=1", "--no-same-owner"],
            timeout=3600,
        )
        if not res.ok:
            raise InfraError(f"unpacking {tarball} failed", command=list(res.argv),
                             output=res.stderr)
    makefile = work / "Makefile"
    if not makefile.is_file():
        raise BadInputError("no Makefile at the top of the tarball: not a kernel source tree",
                            source=str(tarball))
    version = kernel_version(makefile.read_text(encoding="utf-8", errors="replace"))
    # Debian's linux-source-X.Y package: v6.1.192-debian; any other tarball (kernel.org's
    # linux-6.1.tar.xz): v6.1-import, so the tag never claims a Debian origin it lacks.
    tag = f"v{version}-{'debian' if tarball.name.startswith('linux-source-') else 'import'}"
    _import_commit(work, version, tarball.name, tag, prog)
    package = debian_package_of(tarball)
    if package:
        git_ok(["config", "--local", CONFIG_PACKAGE, package], cwd=work)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists():
        dest.rmdir()  # empty, checked above
    work.rename(dest)
    prog.say(f"kernel tree ready at {dest}: tag {tag}" + (f" ({package})" if package else ""))
    return open_tree(dest), True


def debian_package_of(path: Path) -> str | None:
    """``"<package> <version>"`` of the installed Debian package that owns ``path``; None
    when dpkg is absent or no package owns it (a kernel.org tarball, a copy)."""
    if shutil.which("dpkg-query") is None:
        return None
    owner = run(["dpkg-query", "-S", str(path.resolve())], timeout=60)
    if not owner.ok or ":" not in owner.stdout:
        return None
    name = owner.stdout.split(":", 1)[0].strip()
    version = run(["dpkg-query", "-W", "-f=${Version}", name], timeout=60)
    return f"{name} {version.stdout.strip()}" if version.ok and version.stdout.strip() else None


def _import_commit(work: Path, version: str, source: str, tag: str, prog: Progress) -> None:
    git_ok(["init", "-q"], cwd=work)
    for key, value in (
        (CONFIG_BASE, tag),
        (CONFIG_VERSION, version),
        (CONFIG_SOURCE, source),
        ("core.autocrlf", "false"),
        ("gc.auto", "0"),
    ):
        git_ok(["config", "--local", key, value], cwd=work)
    with prog.phase("adding files to the index (git add -A -f)"):
        git_ok(["add", "-A", "-f"], cwd=work, timeout=3600)
    env = {
        "GIT_AUTHOR_NAME": IMPORT_NAME,
        "GIT_AUTHOR_EMAIL": IMPORT_EMAIL,
        "GIT_AUTHOR_DATE": IMPORT_DATE,
        "GIT_COMMITTER_NAME": IMPORT_NAME,
        "GIT_COMMITTER_EMAIL": IMPORT_EMAIL,
        "GIT_COMMITTER_DATE": IMPORT_DATE,
    }
    message = (
        f"Import Linux {version} ({source})\n\n"
        "Imported by `reviewbot tree init` with a fixed author, committer and date, so the\n"
        "commit id depends only on the files of the tarball.\n"
    )
    with prog.phase("committing"):
        git_ok(["commit", "-q", "--no-verify", "-m", message], cwd=work, env=env, timeout=3600)
    git_ok(["tag", tag], cwd=work)


def init_from_git(
    source: str, dest: Path | None, progress: Progress | None = None
) -> tuple[KernelTree, bool]:
    """Use an existing kernel clone in place (``dest`` None or the same) or clone it.

    A local clone is used in place and never modified beyond the three ``reviewbot.*`` keys
    of its config; a URL (or a local clone with a different ``dest``) is cloned.

    Returns:
        (tree, created)
    Raises:
        BadInputError: the source is not a git repository of a kernel tree.
        InfraError: git clone failed.
    """
    prog = progress or Progress()
    local = Path(source).expanduser()
    in_place = local.is_dir() and (dest is None or dest.resolve() == local.resolve())
    if in_place:
        target = local
        created = False
        if not (local / ".git").exists() and not git(["rev-parse"], cwd=local).ok:
            raise BadInputError("not a git repository", source=source)
    else:
        if dest is None:
            raise BadInputError("--from-git URL needs --path DIR (or tree.path in config)")
        done = _already_imported(dest)
        if done is not None:
            prog.say(f"{dest} already holds a clone: nothing to do")
            return done, False
        dest.parent.mkdir(parents=True, exist_ok=True)
        with prog.phase(f"cloning {source}"):
            # --local hardlinks objects of a local clone: fast, and independent of the source.
            git_ok(["clone", "--no-hardlinks" if not local.is_dir() else "--local",
                    "--end-of-options", source, str(dest)],
                   cwd=dest.parent, timeout=7200, what=f"git clone {source}")
        target = dest
        created = True
    head = git_ok(["rev-parse", "HEAD^{commit}"], cwd=target).strip()
    makefile = git(["show", "HEAD:Makefile"], cwd=target)
    if not makefile.ok:
        raise BadInputError("no Makefile at the top of HEAD: not a kernel tree", source=source)
    version = kernel_version(makefile.stdout)
    exact = git(["describe", "--tags", "--exact-match", "HEAD"], cwd=target)
    base = exact.stdout.strip() if exact.ok and exact.stdout.strip() else head
    if created and base == head:
        base = f"v{version}-reviewbot"
        git_ok(["tag", base, head], cwd=target)
    for key, value in ((CONFIG_BASE, base), (CONFIG_VERSION, version), (CONFIG_SOURCE, source)):
        git_ok(["config", "--local", key, value], cwd=target)
    prog.say(f"kernel tree {'ready' if created else 'used in place'} at {target}: base {base}")
    return open_tree(target), created


def disk_usage(path: Path) -> int:
    """Disk bytes used under ``path`` (du -s -B1: blocks, not apparent size), 0 if absent.

    Blocks matter: the import writes ~83,000 loose objects, whose apparent size (300 MB)
    is well under what they take on disk (~525 MB).
    """
    if not path.exists():
        return 0
    res = run(["du", "-s", "-B1", path], timeout=600)
    try:
        return int(res.stdout.split()[0])
    except (IndexError, ValueError):
        return 0
