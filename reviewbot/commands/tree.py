"""``reviewbot tree init|status``: make the kernel repository once, and say what it holds."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from reviewbot.config import Settings
from reviewbot.errors import BadInputError, InfraError
from reviewbot.facts.build import facts_for
from reviewbot.gitcmd import git
from reviewbot.progress import Progress
from reviewbot.tree.bases import resolve
from reviewbot.tree.repo import (
    disk_usage,
    init_from_git,
    init_from_tarball,
    open_tree,
)
from reviewbot.tree.sources import (
    Source,
    add_sources,
    base_info,
    newest_first,
    parse_source,
    record_root,
    version_of,
)
from reviewbot.tree.worktree import list_worktrees, tree_id


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("tree", help="the kernel tree: init, update, status")
    sub = parser.add_subparsers(dest="tree_command", metavar="ACTION")
    init = sub.add_parser(
        "init",
        help="import the kernel bases once (default: Debian's linux-source-6.1 and 6.12)",
        description="Create the kernel git repository with every base of tree.sources "
        "(idempotent). Each tarball import is one commit with a fixed author and date, "
        "tagged v<version>-debian; each later base is a child of the one before.",
    )
    init.add_argument("--path", metavar="DIR", help="where (default: tree.path in config)")
    src = init.add_mutually_exclusive_group()
    src.add_argument("--from-tarball", metavar="FILE",
                     help="import only this kernel source tarball (default: tree.sources)")
    src.add_argument("--from-git", metavar="DIR|URL",
                     help="existing clone: used in place (no --path) or cloned to --path")
    init.set_defaults(func=cmd_init)
    update = sub.add_parser(
        "update", help="import newer Debian revisions and fetch the git remotes of tree.sources",
        description="Add what tree.sources has that the tree lacks: a newer installed "
        "linux-source package revision becomes a new base, each git remote is fetched again. "
        "A nightly timer can run it (docs/tree.md).")
    update.add_argument("--path", metavar="DIR", help="the tree (default: tree.path)")
    update.set_defaults(func=cmd_update)
    gc = sub.add_parser(
        "gc", help="pack the tree's loose objects (each import leaves ~90,000)",
        description="git gc on the tree, with its .git size before and after. Unreachable "
        "objects younger than two weeks are kept (git's default), so reviews running "
        "meanwhile lose nothing. Minutes on a 2-core machine for two bases.")
    gc.add_argument("--path", metavar="DIR", help="the tree (default: tree.path)")
    gc.set_defaults(func=cmd_gc)
    status = sub.add_parser("status", help="what the tree is, its bases and its worktrees")
    status.add_argument("--path", metavar="DIR", help="the tree (default: tree.path)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--du", action="store_true", help="also measure disk use (slow)")
    status.set_defaults(func=cmd_status)
    parser.set_defaults(func=lambda args, settings: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _tree_path(args: argparse.Namespace, settings: Settings) -> Path:
    """--path, else tree.path (update, gc and status act on an existing tree)."""
    return Path(args.path).expanduser() if args.path else settings.path(settings.tree.path)


def _sources(settings: Settings) -> list[Source]:
    return [parse_source(spec, settings.tree.debian_mirror) for spec in settings.tree.sources]


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    start = time.monotonic()
    progress = Progress()
    explicit = Path(args.path).expanduser() if args.path else None
    added: list[tuple[str, bool]] = []
    if args.from_git:
        tree, created = init_from_git(args.from_git, explicit, progress)
    elif args.from_tarball:
        dest = explicit or settings.path(settings.tree.path)
        tree, created = init_from_tarball(Path(args.from_tarball).expanduser(), dest, progress)
    else:
        sources = _sources(settings)
        tarballs = [s for s in sources if s.tarball is not None]
        if not tarballs:
            raise BadInputError("tree.sources names no tarball or Debian package to import "
                                "first (a git remote needs a tree: use --from-git)")
        root = tarballs[0]
        assert root.tarball is not None
        dest = explicit or settings.path(settings.tree.path)
        tree, created = init_from_tarball(root.tarball, dest, progress)
        record_root(tree)
        added = add_sources(tree.path, sources, progress)
        tree = open_tree(tree.path)
    elapsed = time.monotonic() - start
    verb = "created" if created else "already present"
    new = [ref for ref, made in added if made]
    print(f"{tree.path}: {verb}, base {tree.default_base} (Linux {tree.version})"
          + (f", added {', '.join(new)}" if new else "")
          + f"; bases: {', '.join(tree.bases)}; {elapsed:.1f}s")
    _derive_facts(tree.path, list(tree.bases), settings, progress)
    default = settings.path(settings.tree.path)
    if tree.path.resolve() != default.resolve():
        print(f"note: not the configured tree.path ({default}); pass --tree {tree.path} "
              "to review, or set tree.path in config.yaml", file=sys.stderr)
    return 0


def _derive_facts(path: Path, bases: list[str], settings: Settings, progress: Progress) -> None:
    if not settings.rules.facts:
        return
    for base in bases:
        # Once per base, here rather than in the first review (it takes half a minute).
        with progress.phase(f"kernel facts of {base} (what may sleep, lock and put helpers)"):
            facts = facts_for(path, base, settings.path(settings.rules.facts_dir),
                              say=progress.say)
        if facts is not None:
            print(f"facts of {base} ({facts.revision[:12]}): {json.dumps(facts.stats)}")


def cmd_update(args: argparse.Namespace, settings: Settings) -> int:
    progress = Progress()
    path = _tree_path(args, settings)
    tree = open_tree(path)
    sources = _sources(settings)
    record_root(tree)
    changed = add_sources(path, sources, progress, refresh=True)
    tree = open_tree(path)
    moved = [ref for ref, made in changed if made]
    print(f"{path}: " + (f"new or moved: {', '.join(moved)}" if moved else "up to date")
          + f"; bases: {', '.join(tree.bases)}")
    _derive_facts(path, moved, settings, progress)
    return 0


def cmd_gc(args: argparse.Namespace, settings: Settings) -> int:
    path = _tree_path(args, settings)
    tree = open_tree(path)
    progress = Progress()
    before = disk_usage(path / ".git")
    start = time.monotonic()
    with progress.phase(f"git gc of {path} (packing the objects)"):
        res = git(["gc", "--quiet"], cwd=tree.path, timeout=6 * 3600)
    if not res.ok:
        raise InfraError(f"git gc failed in {path}", command=list(res.argv), output=res.stderr)
    after = disk_usage(path / ".git")
    mib = 1024 * 1024
    print(f"{path}: .git {before // mib} MiB -> {after // mib} MiB in "
          f"{time.monotonic() - start:.0f} s")
    return 0


def tree_status(path: Path, settings: Settings, du: bool = False) -> dict[str, Any]:
    """What `tree status` prints, as data."""
    tree = open_tree(path)
    head = git(["rev-parse", "HEAD"], cwd=path).stdout.strip()
    dirty = git(["status", "--porcelain", "--untracked-files=no"], cwd=path).stdout.strip()
    bases: list[dict[str, Any]] = []
    now = time.time()
    for ref in list(dict.fromkeys([*tree.bases, *settings.tree.bases])):
        sha, message = resolve(path, ref)
        meta = base_info(path, ref)
        imported = int(meta["imported"]) if meta.get("imported", "").isdigit() else None
        bases.append({"ref": ref, "commit": sha, "message": message,
                      "version": version_of(path, ref) if sha else None,
                      "source": meta.get("source"), "package": meta.get("package"),
                      "imported": imported,
                      "age_days": round((now - imported) / 86400, 1) if imported else None,
                      "default": ref == tree.default_base,
                      "configured": ref in settings.tree.bases,
                      "facts": _facts_status(path, ref, settings).get("state")
                      if sha else None})
    root = settings.path(settings.tree.worktrees)
    info: dict[str, Any] = {
        "path": str(path),
        "source": tree.source,
        "package": tree.package,
        "version": tree.version,
        "default_base": tree.default_base,
        "head": head,
        "main_worktree_clean": not dirty,
        "bases": bases,
        # The order a series without base-commit: or --base is tried in (after the guess
        # from its index lines).
        "order": list(settings.tree.bases) or newest_first(path, list(tree.bases)),
        "worktree_root": str(root / tree_id(path)),
        "worktrees": list_worktrees(path, root),
        "facts": _facts_status(path, tree.default_base, settings),
    }
    if du:
        info["git_bytes"] = disk_usage(path / ".git")
        info["checkout_bytes"] = disk_usage(path) - info["git_bytes"]
        info["worktrees_bytes"] = disk_usage(root / tree_id(path))
    return info


def _facts_status(path: Path, base: str | None, settings: Settings) -> dict[str, Any]:
    if not base:
        return {"state": "no base"}
    try:
        facts = facts_for(path, base, settings.path(settings.rules.facts_dir), build=False)
    except InfraError as exc:
        return {"state": f"unavailable: {exc}"}
    if facts is None:
        return {"state": "not derived yet (the next `tree init` or review derives them)"}
    return {"state": "ready", "revision": facts.revision, **facts.stats}


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    path = _tree_path(args, settings)
    try:
        info = tree_status(path, settings, args.du)
    except InfraError as exc:
        if args.json:
            print(json.dumps({"path": str(path), "error": str(exc)}, indent=2))
        raise
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"tree:     {info['path']}")
    package = f" (Debian {info['package']})" if info["package"] else ""
    print(f"source:   {info['source'] or '(not made by tree init)'}{package}  "
          f"Linux {info['version']}")
    print(f"HEAD:     {info['head']}  ({'clean' if info['main_worktree_clean'] else 'DIRTY'})")
    print("bases:")
    for b in info["bases"]:
        marks = [m for m, on in (("root", b["default"]), ("tree.bases", b["configured"])) if on]
        where = f" {b['package'] or b['source']}" if b["package"] or b["source"] else ""
        age = f", imported {b['age_days']} days ago" if b["age_days"] is not None else ""
        mark = f" ({', '.join(marks)})" if marks else ""
        if b["commit"]:
            print(f"  {b['ref']}{mark}: Linux {b['version']}, {b['commit'][:12]}{where}{age}")
        else:
            print(f"  {b['ref']}{mark}: not found: {b['message']}")
    print(f"order:    {' -> '.join(info['order'])} (after base-commit:, --base, index guess)")
    facts = info["facts"]
    if facts.get("state") == "ready":
        print(f"facts:    {facts['revision'][:12]}: {facts.get('functions')} functions, "
              f"{facts.get('may_sleep')} may sleep, {facts.get('take_locks')} take a global lock")
    else:
        print(f"facts:    {facts.get('state')}")
    print(f"worktrees under {info['worktree_root']}:")
    if not info["worktrees"]:
        print("  (none yet: made on the first review, ~20 s and ~1.5 GB each)")
    for wt in info["worktrees"]:
        use = f"in use by {wt['lock']}" if wt.get("in_use") == "yes" else "free"
        print(f"  {wt['worktree']}  HEAD {wt.get('HEAD', '?')[:12]}  {use}")
    if args.du:
        mib = 1024 * 1024
        print(f"disk:     .git {info['git_bytes'] // mib} MiB, checkout "
              f"{info['checkout_bytes'] // mib} MiB, worktrees {info['worktrees_bytes'] // mib} MiB")
    return 0


