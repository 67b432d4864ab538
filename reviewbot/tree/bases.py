"""Which bases to try, in which order, and why.

Order (the issue's contract): the series' ``base-commit:`` when that commit is in the tree;
``--base REF``; each of ``tree.bases``; and, when ``tree.bases`` is empty, the tag made by
``tree init``. A candidate that does not resolve is kept as an attempt with git's own
message, and one that resolves to a commit already tried is recorded as a duplicate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from reviewbot.gitcmd import git

_SHA = re.compile(r"[0-9a-fA-F]{7,64}")
# Option-like names and whitespace. Revision syntax stays allowed for --base and
# tree.bases, which come from the operator ("v6.1~3", "mm-stable@{1}"); the only ref taken
# from mail, base-commit:, must be a hex commit id (checked in candidates()).
_BAD_REF = re.compile(r"(^-)|[\s\0]")


@dataclass(frozen=True)
class Candidate:
    ref: str
    reason: str  # why it is tried: "base-commit: in the series", "--base", ...
    commit: str | None  # resolved sha, None when it does not resolve
    message: str = ""  # git's message when it did not resolve


def resolve(repo: Path, ref: str) -> tuple[str | None, str]:
    """(sha, "") when ``ref`` names a commit in ``repo``, else (None, git's message)."""
    if not ref or _BAD_REF.search(ref):
        return None, f"not a valid ref name: {ref!r}"
    res = git(["rev-parse", "--verify", "--end-of-options", f"{ref}^{{commit}}"], cwd=repo)
    if res.ok:
        return res.stdout.strip(), ""
    return None, res.excerpt(5) or f"fatal: {ref}: unknown revision"


def candidates(
    repo: Path,
    base_commit: str | None,
    option_base: str | None,
    configured: tuple[str, ...],
    default_base: str | None,
) -> list[Candidate]:
    """Every base to try, in order, each resolved (or with the reason it did not)."""
    wanted: list[tuple[str, str]] = []
    if base_commit:
        if _SHA.fullmatch(base_commit):
            wanted.append((base_commit, "base-commit: in the series"))
        else:
            wanted.append((base_commit, "base-commit: in the series (not a commit id)"))
    if option_base:
        wanted.append((option_base, "--base on the command line"))
    for i, ref in enumerate(configured):
        wanted.append((ref, f"tree.bases[{i}] in config.yaml"))
    if not configured and default_base:
        wanted.append((default_base, "the tree's imported base (tree.bases is empty)"))
    out: list[Candidate] = []
    for ref, reason in wanted:
        if reason.endswith("(not a commit id)"):
            out.append(Candidate(ref, reason, None, f"{ref!r} is not a commit id"))
            continue
        sha, message = resolve(repo, ref)
        out.append(Candidate(ref, reason, sha, message))
    return out
