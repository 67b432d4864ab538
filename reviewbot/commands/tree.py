"""``reviewbot tree init|status``: make the kernel repository once, and say what it holds."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from reviewbot.config import Settings
from reviewbot.errors import InfraError
from reviewbot.facts.build import facts_for
from reviewbot.gitcmd import git
from reviewbot.progress import Progress
from reviewbot.tree.bases import resolve
from reviewbot.tree.repo import disk_usage, init_from_git, init_from_tarball, open_tree
from reviewbot.tree.worktree import list_worktrees, tree_id


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("tree", help="the kernel tree: init, status")
    sub = parser.add_subparsers(dest="tree_command", metavar="ACTION")
    init = sub.add_parser(
        "init",
        help="import a kernel tree once (default: Debian's linux-source-6.1 tarball)",
        description="Create the kernel git repository (idempotent). The tarball import is "
        "one commit with a fixed author and date, tagged v<version>-debian.",
    )
    init.add_argument("--path", metavar="DIR", help="where (default: tree.path in config)")
    src = init.add_mutually_exclusive_group()
    src.add_argument("--from-tarball", metavar="FILE",
                     help="kernel source tarball (default: tree.source_tarball)")
    src.add_argument("--from-git", metavar="DIR|URL",
                     help="existing clone: used in place (no --path) or cloned to --path")
    init.set_defaults(func=cmd_init)
    status = sub.add_parser("status", help="what the tree is, its bases and its worktrees")
    status.add_argument("--path", metavar="DIR", help="the tree (default: tree.path)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.add_argument("--du", action="store_true", help="also measure disk use (slow)")
    status.set_defaults(func=cmd_status)
    parser.set_defaults(func=lambda args, settings: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    start = time.monotonic()
    progress = Progress()
    explicit = Path(args.path).expanduser() if args.path else None
    if args.from_git:
        tree, created = init_from_git(args.from_git, explicit, progress)
    else:
        tarball = Path(args.from_tarball or settings.path(settings.tree.source_tarball))
        dest = explicit or settings.path(settings.tree.path)
        tree, created = init_from_tarball(tarball.expanduser(), dest, progress)
    elapsed = time.monotonic() - start
    verb = "created" if created else "already present"
    print(f"{tree.path}: {verb}, base {tree.default_base} (Linux {tree.version}), "
          f"{elapsed:.1f}s")
    if settings.rules.facts and tree.default_base:
        # Once per base, here rather than in the first review (it takes half a minute).
        with progress.phase("kernel facts (what may sleep, lock helpers, put helpers)"):
            facts = facts_for(tree.path, tree.default_base, settings.path(settings.rules.facts_dir),
                              say=progress.say)
        if facts is not None:
            print(f"facts of {facts.revision[:12]}: {json.dumps(facts.stats)}")
    default = settings.path(settings.tree.path)
    if tree.path.resolve() != default.resolve():
        print(f"note: not the configured tree.path ({default}); pass --tree {tree.path} "
              "to review, or set tree.path in config.yaml", file=sys.stderr)
    return 0


def tree_status(path: Path, settings: Settings, du: bool = False) -> dict[str, Any]:
    """What `tree status` prints, as data."""
    tree = open_tree(path)
    head = git(["rev-parse", "HEAD"], cwd=path).stdout.strip()
    dirty = git(["status", "--porcelain", "--untracked-files=no"], cwd=path).stdout.strip()
    bases: list[dict[str, Any]] = []
    wanted = list(settings.tree.bases) or ([tree.default_base] if tree.default_base else [])
    for ref in wanted:
        sha, message = resolve(path, ref)
        bases.append({"ref": ref, "commit": sha, "message": message,
                      "default": ref == tree.default_base})
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
    path = Path(args.path).expanduser() if args.path else settings.path(settings.tree.path)
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
        mark = " (imported)" if b["default"] else ""
        print(f"  {b['ref']}{mark}: {b['commit'] or 'not found: ' + b['message']}")
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


