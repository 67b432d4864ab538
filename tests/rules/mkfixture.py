"""Regenerate the rule fixtures (rules/tests/<id>/*.patch) as real git format-patch mails.

Each fixture is an edit of Linux 6.1 source (exact text replacements on files of the
read-only tree), committed in a throw-away git repository holding only the touched files
and exported with ``git format-patch``: hunk headers, line numbers and blob ids are those of
6.1. The edits live in :mod:`fixture_specs`; run this after changing them:

    python tests/rules/mkfixture.py [--linux DIR] [NAME...]   (default: the `tree init` tree)

Fixtures are committed; the test suite never regenerates them (it only needs the .patch).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

from fixture_specs import SPECS, Spec  # noqa: E402

from reviewbot.engine.fixtures import linux_source  # noqa: E402

ENV = {
    "GIT_AUTHOR_NAME": "Reviewbot Fixtures",
    "GIT_AUTHOR_EMAIL": "fixtures@reviewbot.invalid",
    "GIT_COMMITTER_NAME": "Reviewbot Fixtures",
    "GIT_COMMITTER_EMAIL": "fixtures@reviewbot.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00+00:00",
    "HOME": "/nonexistent",
    "GIT_CONFIG_NOSYSTEM": "1",
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
}


def git(repo: Path, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run(
        ["git", *args], cwd=repo, env=ENV, input=stdin, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def make(spec: Spec, linux: Path) -> str:
    with tempfile.TemporaryDirectory(prefix="fixture-") as tmp:
        repo = Path(tmp)
        git(repo, "init", "-q")
        for path in {e[0] for e in spec.edits}:
            dest = repo / path
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(linux / path, dest)
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "Linux 6.1 files")
        for path, old, new in spec.edits:
            target = repo / path
            text = target.read_text(encoding="utf-8")
            count = text.count(old)
            if count != 1:
                raise SystemExit(f"{spec.name}: edit of {path} matches {count} times:\n{old}")
            target.write_text(text.replace(old, new), encoding="utf-8")
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-F", "-", stdin=f"{spec.subject}\n\n{spec.body.strip()}\n\n"
            "Signed-off-by: Reviewbot Fixtures <fixtures@reviewbot.invalid>\n")
        return git(repo, "format-patch", "-1", "--stdout", "--subject-prefix=PATCH")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--linux", type=Path, default=linux_source(),
                    help="a Linux 6.1 source tree (default: $REVIEWBOT_LINUX_SRC, else the tree "
                         "`reviewbot tree init` imported)")
    ap.add_argument("names", nargs="*", help="fixture names (default: all)")
    args = ap.parse_args()
    if args.linux is None:
        ap.error("no Linux 6.1 tree: run `reviewbot tree init` or pass --linux DIR")
    for spec in SPECS:
        if args.names and spec.name not in args.names:
            continue
        mail = make(spec, args.linux)
        for rule, name in spec.rules.items():
            out = REPO / "rules" / "tests" / rule / f"{name}.patch"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(mail, encoding="utf-8")
            print(out.relative_to(REPO))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
