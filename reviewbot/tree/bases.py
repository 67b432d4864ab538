"""Which bases to try, in which order, and why: the order a reviewer would try them in.

1. the series' ``base-commit:`` (the author said so);
2. ``--base REF`` (the operator said so);
3. for a stable backport (mail/stable.py: ``[PATCH AUTOSEL 6.1 ...]``, ``[PATCH 6.12.y]``),
   the tree's base of that stable series: the backport was written for it, any other base
   is a guess. When the tree has none, an attempt says so and the order goes on;
4. the guess from the diffs' ``index <old>..<new>`` lines: the bases whose files have those
   pre-image blobs, all of them first (b4's guess-base does the same over history);
5. subject prefix hints: ``[PATCH 6.1 ...]``, ``[PATCH AUTOSEL 6.12 ...]``, ``6.12.y`` name
   a release series, ``mm-unstable`` or ``-next`` a development tree among the remotes;
6. ``tree.bases`` when set, else the tree's own bases: git remotes, then releases newest
   first (tree/sources.py ``newest_first``).

A candidate that does not resolve is kept as an attempt with git's own message, and one
that resolves to a commit already tried is recorded as a duplicate.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reviewbot.gitcmd import git
from reviewbot.tree.sources import newest_first, version_key, version_of

_SHA = re.compile(r"[0-9a-fA-F]{7,64}")
# Option-like names and whitespace. Revision syntax stays allowed for --base and
# tree.bases, which come from the operator ("v6.1~3", "mm-stable@{1}"); the only ref taken
# from mail, base-commit:, must be a hex commit id (checked in candidates()).
_BAD_REF = re.compile(r"(^-)|[\s\0]")
_DIFF_GIT = re.compile(r"^diff --git a/(\S+) b/(\S+)$")
_INDEX = re.compile(r"^index ([0-9a-f]{7,64})\.\.([0-9a-f]{7,64})")
_RELEASE_HINT = re.compile(r"^v?(\d+)\.(\d+)(?:\.y|\.\d+)?$", re.I)
MAX_GUESS_FILES = 200  # a treewide series: the first 200 files decide


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


def pre_images(diffs: Sequence[str]) -> dict[str, str]:
    """Path -> abbreviated pre-image blob id of the first diff of the series that touches it
    (a later patch's pre-image is an earlier patch's result; new files have none)."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for diff in diffs:
        path: str | None = None
        for line in diff.splitlines():
            if m := _DIFF_GIT.match(line):
                path = m[2] if m[1] == m[2] else m[1]
            elif path is not None and (m := _INDEX.match(line)):
                if path not in seen and m[1].strip("0"):
                    out[path] = m[1]
                seen.add(path)
                path = None
            if len(out) >= MAX_GUESS_FILES:
                return out
    return out


def guess_from_index(repo: Path, bases: Sequence[str],
                     diffs: Sequence[str]) -> list[tuple[str, int, int]]:
    """(base, files matching, files with a pre-image) for each base where at least one
    pre-image blob of the diffs is the base's file, best first (all-match first)."""
    pre = pre_images(diffs)
    if not pre:
        return []
    scored: list[tuple[str, int, int]] = []
    for base in bases:
        res = git(["ls-tree", "--full-tree", "--end-of-options", base, "--", *pre], cwd=repo)
        if not res.ok:
            continue
        blobs = {}
        for line in res.stdout.splitlines():
            meta, _, path = line.partition("\t")
            parts = meta.split()
            if len(parts) == 3 and parts[1] == "blob":
                blobs[path] = parts[2]
        hits = sum(blobs.get(path, "").startswith(abbrev) for path, abbrev in pre.items())
        if hits:
            scored.append((base, hits, len(pre)))
    scored.sort(key=lambda t: t[1], reverse=True)
    return scored


def hinted(repo: Path, bases: Sequence[str], prefixes: Sequence[str]) -> list[tuple[str, str]]:
    """(base, the prefix) for subject prefixes that name a release series or a tree."""
    out: list[tuple[str, str]] = []
    for word in prefixes:
        if m := _RELEASE_HINT.match(word):
            want = (int(m[1]), int(m[2]))
            same = [b for b in bases if version_key(version_of(repo, b))[:2] == want]
            same.sort(key=lambda b: version_key(version_of(repo, b)), reverse=True)
            out += [(b, word) for b in same[:1]]
        elif len(word) > 2 and not word.isdigit():
            low = word.lower()
            if low.endswith("-next") or low == "next":
                low = "next"
            out += [(b, word) for b in bases
                    if b.startswith("bases/") and low in b.rsplit("/", 1)[-1].lower()]
    return out


def stable_base(repo: Path, bases: Sequence[str], target: str) -> tuple[str | None, str]:
    """(the newest base of the stable series ``target`` ("6.1"), "") or, when the tree has
    none, (None, "no 6.1 base in the tree (bases: 6.1.192, 6.12.118)")."""
    versions = {b: version_of(repo, b) for b in bases}
    want = version_key(f"{target}.0")[:2]
    same = sorted((b for b, v in versions.items() if v and version_key(v)[:2] == want),
                  key=lambda b: version_key(versions[b]), reverse=True)
    if same:
        return same[0], ""
    have = ", ".join(v or b for b, v in versions.items()) or "none"
    return None, f"no {target} base in the tree (bases: {have})"


def candidates(
    repo: Path,
    base_commit: str | None,
    option_base: str | None,
    configured: tuple[str, ...],
    default_base: str | None,
    tree_bases: Sequence[str] = (),
    diffs: Sequence[str] = (),
    prefixes: Sequence[str] = (),
    backport_target: str | None = None,
) -> list[Candidate]:
    """Every base to try, in order, each resolved (or with the reason it did not).

    ``backport_target`` is the stable series a backport names ("6.1", see
    :func:`reviewbot.mail.stable.backport_of`); its base comes right after ``--base``.
    """
    # (ref, reason, why it cannot be tried: "" when it is resolved below)
    wanted: list[tuple[str, str, str]] = []
    if base_commit:
        if _SHA.fullmatch(base_commit):
            wanted.append((base_commit, "base-commit: in the series", ""))
        else:
            wanted.append((base_commit, "base-commit: in the series (not a commit id)",
                           f"{base_commit!r} is not a commit id"))
    if option_base:
        wanted.append((option_base, "--base on the command line", ""))
    pool = list(dict.fromkeys([*tree_bases, *configured]))
    if backport_target:
        ref, missing = stable_base(repo, pool or ([default_base] if default_base else []),
                                   backport_target)
        reason = f"stable backport to {backport_target}"
        # Without such a base the attempt is still recorded, so that the report says why
        # the backport was not reviewed where it belongs; the normal order goes on.
        wanted.append((ref, f"{reason}: the tree's {backport_target} base", "") if ref
                      else (backport_target, reason, missing))
    for ref, hits, total in guess_from_index(repo, pool, diffs):
        wanted.append((ref, f"the diffs' index lines: {hits} of {total} pre-image blob(s) "
                            "are this base's files", ""))
    for ref, word in hinted(repo, pool, prefixes):
        wanted.append((ref, f"the subject prefix [{word}]", ""))
    for i, ref in enumerate(configured):
        wanted.append((ref, f"tree.bases[{i}] in config.yaml", ""))
    if not configured:
        fallback = newest_first(repo, list(tree_bases)) if tree_bases else \
            ([default_base] if default_base else [])
        for ref in fallback:
            wanted.append((ref, "the tree's imported base (tree.bases is empty)"
                           if len(fallback) == 1 else
                           "the tree's bases, newest first (tree.bases is empty)", ""))
    out: list[Candidate] = []
    for ref, reason, unusable in wanted:
        if unusable:
            out.append(Candidate(ref, reason, None, unusable))
            continue
        sha, message = resolve(repo, ref)
        out.append(Candidate(ref, reason, sha, message))
    return out
