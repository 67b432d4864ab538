"""Stable backports: which stable series a posting targets and which upstream commits it
claims to be.

Documentation/process/stable-kernel-rules.rst asks a backport to name its upstream commit
on a line of its own above the changelog, as ``commit <sha1> upstream.`` or
``[ Upstream commit <sha1> ]``; the subject names the stable series. Forms seen on the
lists, each with a test in tests/mail/test_stable.py:

- ``[PATCH AUTOSEL 5.4 307/330]`` with ``[ Upstream commit <sha> ]`` (Sasha Levin's bot;
  17 mails of the cgroups list in 2020);
- ``[PATCH 5.4 12/34]`` with ``commit <sha> upstream.`` (Greg's stable review series);
- ``[PATCH 6.12.y]``, ``[PATCH 5.15.y v2 1/3]``, ``[PATCH stable 6.1]`` (hand-made
  backports, sometimes ending ``(cherry picked from commit <sha>)`` or saying
  "backport of upstream commit <sha>" in prose).

Strict on purpose: the subject must name a release series (``6.1``, ``6.1.y``, ``6.1.12``);
body lines alone never make a backport (``upstream commit`` appears in mainline changelogs
too), and only 12 to 40 hex digits are taken as a commit id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from reviewbot.model import Backport, Message, Series, number_ranges

# A release series as a subject word: "6.1", "6.1.y", "6.1.12". Not "v6.1" (the subject
# parser keeps "v2" as the series version, and "v6.1" is seen as a tree name), not
# "for-5.2-fixes" (a mainline fixes branch).
_RELEASE_WORD = re.compile(r"(\d{1,2})\.(\d{1,3})(?:\.y|\.\d{1,3})?", re.IGNORECASE)
_HEX = r"([0-9a-f]{12,40})(?![0-9a-z])"
# The stable rules' two forms, then what cherry-pick -x and hand-written backports say.
# Anchored at a line start (not after "> ": a quoted backport in a reply is not a claim).
_UPSTREAM_LINES = (
    re.compile(rf"^[ \t]*commit {_HEX} upstream\.?[ \t]*$", re.IGNORECASE | re.MULTILINE),
    re.compile(rf"^[ \t]*\[[ \t]*upstream commit {_HEX}[ \t]*\][ \t]*$",
               re.IGNORECASE | re.MULTILINE),
    re.compile(rf"^[ \t]*\(cherry picked from commit {_HEX}\)", re.IGNORECASE | re.MULTILINE),
    # Prose: "This is a backport of upstream commit 1234abcd5678 ("memcg: ...")".
    re.compile(rf"^(?![ \t]*>)[^\n]*?\bupstream commit:?[ \t]+{_HEX}",
               re.IGNORECASE | re.MULTILINE),
)
MAX_UPSTREAM = 64  # a stable review series has a few hundred patches: the report lists 64


def release_target(word: str) -> str | None:
    """``"6.1"`` for a subject word naming a release series (``6.1``, ``6.1.y``,
    ``6.1.12``), else None."""
    m = _RELEASE_WORD.fullmatch(word)
    return f"{int(m[1])}.{int(m[2])}" if m else None


def target_of(prefixes: Sequence[str]) -> tuple[str, bool, str] | None:
    """(target, autosel, the words that said so) for subject prefixes naming a stable
    series, else None.

    Args:
        prefixes: ``Subject.prefixes`` (``("PATCH", "AUTOSEL", "6.1")``).
    Returns:
        ``("6.1", True, "AUTOSEL 6.1")``; None for ``[PATCH v2 3/5]``, ``[PATCH mm-unstable]``
        or ``[PATCH AUTOSEL]`` without a release.
    """
    target: str | None = None
    said: list[str] = []
    autosel = False
    for word in prefixes:
        low = word.lower()
        if low == "autosel":
            autosel = True
            said.append(word)
        elif low == "stable":
            said.append(word)
        elif target is None and (found := release_target(word)):
            target = found
            said.append(word)
    if target is None:
        return None
    return target, autosel, " ".join(said)


def upstream_ids(commit_message: str) -> list[str]:
    """The upstream commit ids a changelog claims, lowercase, in order, once each.

    Args:
        commit_message: ``Message.commit_message`` (the text above ``---``).
    Returns:
        ids of 12 to 40 hex digits from ``commit <sha> upstream.``, ``[ Upstream commit
        <sha> ]``, ``(cherry picked from commit <sha>)`` and ``upstream commit <sha>``.
    """
    found: list[tuple[int, str]] = []
    for pattern in _UPSTREAM_LINES:
        found += [(m.start(1), m[1].lower()) for m in pattern.finditer(commit_message)]
    return list(dict.fromkeys(sha for _, sha in sorted(found)))


def backport_of(series: Series) -> Backport | None:
    """The stable backport a series is, or None when its subjects name no stable series.

    The cover letter's subject decides first, then the patches' in order (a stable review
    series names the release on every mail). Upstream ids come from each patch's changelog.
    """
    mails: list[Message] = [p.message for p in series.patches]
    said = None
    for msg in ([series.cover] if series.cover else []) + mails:
        if said := target_of(msg.subject.prefixes):
            break
    if said is None:
        return None
    target, autosel, words = said
    upstream: list[str] = []
    unclaimed: list[int] = []
    for patch in series.patches:
        ids = upstream_ids(patch.message.commit_message)
        if not ids:
            unclaimed.append(patch.index)
        upstream += ids
    upstream = list(dict.fromkeys(upstream))[:MAX_UPSTREAM]
    claimed = len(series.patches) - len(unclaimed)
    evidence = f"subject prefix [{words}]"
    if series.patches:
        evidence += f"; upstream commit named in {claimed} of {len(series.patches)} patch(es)"
    return Backport(target, autosel, tuple(upstream), evidence, tuple(unclaimed))


def describe(backport: Backport) -> str:
    """One sentence for the reports: what the backport claims, and what is not checked."""
    kind = f"stable backport to {backport.target}" + (" (AUTOSEL)" if backport.autosel else "")
    ids = [sha[:12] for sha in backport.upstream]
    if not ids:
        return (f"{kind}; no patch names its upstream commit (the stable rules ask for "
                "\"commit <sha> upstream.\" above the changelog)")
    if len(ids) == 1:
        what = f"of upstream commit {ids[0]} (claimed by the patch"
    else:
        shown = ", ".join(ids[:4]) + (f" and {len(ids) - 4} more" if len(ids) > 4 else "")
        what = f"of {len(ids)} upstream commits: {shown} (claimed by the patches"
    text = (f"{kind} {what}; whether the diff matches a normal backport of "
            f"{'that commit' if len(ids) == 1 else 'those commits'} is not checked offline)")
    if backport.unclaimed:
        many = len(backport.unclaimed) > 1
        text += (f"; {'patches' if many else 'patch'} {number_ranges(backport.unclaimed)} "
                 f"{'name' if many else 'names'} no upstream commit")
    return text
