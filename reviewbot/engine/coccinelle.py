"""The ``coccinelle`` engine: a .cocci file beside the rule, run with spatch when installed.

Coccinelle needs whole files, so it runs only when the series applied (the post-image
files of the touched paths are read from the worktree); without spatch or without a tree
the rule is skipped with a notice, never silently. Matches are reported in spatch's
``--very-quiet`` python/org output: one ``file:line: message`` per line, which the .cocci
script prints itself (see rules/*.cocci).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from reviewbot import proc
from reviewbot.engine.loader import Rule
from reviewbot.engine.types import PatchContext, RawFinding

_HIT = re.compile(r"^(?P<file>[^:\s]+):(?P<line>\d+):\s*(?P<msg>.*)$")


def spatch_path() -> str | None:
    return shutil.which("spatch")


def run_coccinelle(rule: Rule, ctx: PatchContext) -> tuple[list[tuple[str, RawFinding]], str | None]:
    """Return (findings, notice); a notice says why the rule did not run."""
    spatch = spatch_path()
    if spatch is None:
        return [], f"{rule.id}: skipped, spatch (Debian package coccinelle) is not installed"
    if ctx.worktree is None:
        return [], f"{rule.id}: skipped, Coccinelle needs the applied tree (--no-tree, or the series did not apply)"
    cocci = (rule.path.parent / rule.params["file"]).resolve()
    files = [
        fc.path
        for fc in ctx.files
        if rule.applies_to(fc.path) and fc.path.endswith(".c") and not fc.diff.is_deleted
    ]
    if not files:
        return [], None
    argv = [spatch, "--very-quiet", "--no-show-diff", "--sp-file", str(cocci)]
    argv += list(rule.params.get("options") or [])
    argv += [str(Path(ctx.worktree) / f) for f in files]
    result = proc.run(argv, cwd=ctx.worktree, timeout=rule.params.get("timeout", 120))
    if result.timed_out:
        return [], f"{rule.id}: spatch timed out after {rule.params.get('timeout', 120)} s"
    out = []
    prefix = str(Path(ctx.worktree)) + "/"
    by_path = {fc.path: fc for fc in ctx.files}
    for row in result.stdout.splitlines():
        m = _HIT.match(row.strip())
        if not m:
            continue
        path = m.group("file").removeprefix(prefix)
        line = int(m.group("line"))
        fc = by_path.get(path)
        added = fc is not None and any(
            ln.new_lineno == line for h in fc.diff.hunks for ln in h.lines if ln.kind == "+"
        )
        function = None
        if fc is not None:
            function = next((v.name for v in fc.post_views if line in v.line_set()), None)
        out.append(
            (
                path,
                RawFinding(
                    line,
                    function,
                    {"detail": m.group("msg"), "function": function or "?"},
                    (line,),
                    preexisting=not added,
                ),
            )
        )
    notice = None
    if not result.ok and not out:
        notice = f"{rule.id}: spatch failed: {result.excerpt(5)}"
    return out, notice
