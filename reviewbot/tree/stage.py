"""The apply stage: choose a base, apply the series in a locked worktree, say what happened.

Its result is an :class:`~reviewbot.results.ApplyResult` (the ``apply`` object of
reviewbot/review/v1): the base chosen, every base tried (``outcome`` applied | conflict |
not-found | duplicate | refused) and every patch's result (``status`` applied | conflict |
already-present | skipped | refused).
A series that applies on no base is status "fail" with reason "does not apply" (review
exits 1); only a broken tree or git is an :class:`~reviewbot.errors.InfraError`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from reviewbot.config import Settings
from reviewbot.gitcmd import git, open_repo
from reviewbot.mail.render import patch_mail
from reviewbot.mail.stable import backport_of
from reviewbot.model import Finding, Patch, Series
from reviewbot.results import (
    ALREADY_PRESENT,
    REFUSED,
    SKIPPED,
    ApplyResult,
    BaseAttempt,
    PatchResult,
    ReviewOptions,
    ReviewState,
    SafetyIssue,
    StageOutcome,
)
from reviewbot.tree.apply import ApplyRun, PatchItem, apply_series, reverse_applies
from reviewbot.tree.bases import Candidate, candidates
from reviewbot.tree.repo import open_tree
from reviewbot.tree.safety import check_patch
from reviewbot.tree.worktree import Worktree, acquire_worktree, reset_to, worktree_key

if TYPE_CHECKING:
    import git as gitpython

log = logging.getLogger(__name__)

STAGE = "apply"


@dataclass
class _Attempt:
    candidate: Candidate
    run: ApplyRun


def series_items(series: Series) -> list[PatchItem]:
    """One :class:`PatchItem` per slot 1..N, with the mail ``git am`` will read."""
    items: list[PatchItem] = []
    total = series.expected
    for index, slot in enumerate(series.slots[1:], start=1):
        if not isinstance(slot, Patch):
            items.append(PatchItem(index, None, None,
                                   skip_reason=f"patch {index}/{total} is missing from the series"))
            continue
        msg = slot.message
        if not msg.diff:
            items.append(PatchItem(index, None, None, msg.subject.subject, msg.message_id,
                                   skip_reason="the mail carries no diff"))
            continue
        items.append(PatchItem(index, patch_mail(slot), msg.diff, msg.subject.subject,
                               msg.message_id))
    return items


def _symlink_checker(repo: gitpython.Repo, commit: str) -> functools._lru_cache_wrapper[bool]:
    tree = repo.commit(commit).tree

    @functools.lru_cache(maxsize=4096)
    def is_symlink(path: str) -> bool:
        try:
            obj = tree / path
        except KeyError:
            return False
        return bool(obj.mode == 0o120000)

    return is_symlink


def safety_issues(repo_path: Path, commit: str, items: list[PatchItem]) -> list[SafetyIssue]:
    """Every safety issue of the series against the base ``commit``."""
    repo = open_repo(repo_path)
    try:
        is_symlink = _symlink_checker(repo, commit)
        created: set[str] = set()
        issues: list[SafetyIssue] = []
        for it in items:
            if it.diff:
                issues += check_patch(it.index, it.diff, is_symlink, created)
        return issues
    finally:
        repo.close()


def _finding(issue: SafetyIssue) -> Finding:
    digest = hashlib.sha256(f"tree-unsafe-patch|{issue.kind}|{issue.path}".encode()).hexdigest()
    return Finding(
        rule="tree-unsafe-patch" if issue.refused else "tree-binary-patch",
        severity="error" if issue.refused else "warning",
        confidence="high",
        file=issue.path,
        line=None,
        function=None,
        message=issue.message,
        fingerprint=digest[:16],
        patch_index=issue.index,
        category="tree",
    )


def apply_stage(
    series: Series, state: ReviewState, settings: Settings, options: ReviewOptions
) -> StageOutcome:
    """Apply ``series`` on the first base where it applies; keep that worktree locked.

    On success ``state`` gets the worktree, base and commits, and ``state.release`` the
    unlock (the pipeline calls it after the last stage). Raises only InfraError.
    """
    cfg = settings.tree
    tree = open_tree(options.tree or settings.path(cfg.path))
    items = series_items(series)
    size = sum(len(it.mail or b"") for it in items)
    result = ApplyResult(tree=str(tree.path), series_bytes=size)
    result.patches = [PatchResult(it.index, SKIPPED, message=it.skip_reason or "not tried",
                                  subject=it.subject, message_id=it.message_id)
                      for it in items]
    if size > cfg.max_series_bytes:
        result.base_reason = "not applied: series too large"
        return StageOutcome(STAGE, "fail",
                            f"series too large: {size} bytes of mail, more than "
                            f"tree.max_series_bytes ({cfg.max_series_bytes})", result)
    backport = backport_of(series)
    cands = candidates(tree.path, series.base_commit, options.base, cfg.bases,
                       tree.default_base, tree.bases, [it.diff for it in items if it.diff],
                       subject_prefixes(series), backport.target if backport else None)
    attempts: list[_Attempt] = []
    seen: dict[str, str] = {}
    issues: list[SafetyIssue] = []
    for cand in cands:
        entry = BaseAttempt(cand.ref, cand.commit, cand.reason)
        result.tried.append(entry)
        if cand.commit is None:
            entry.outcome, entry.message = "not-found", cand.message
            continue
        if cand.commit in seen:
            entry.outcome = "duplicate"
            entry.message = f"same commit as {seen[cand.commit]}, already tried"
            continue
        seen[cand.commit] = cand.ref
        issues = safety_issues(tree.path, cand.commit, items)
        result.issues = issues
        refused = [i for i in issues if i.refused]
        if refused:
            entry.outcome, entry.message = "refused", refused[0].message
            return _refused(result, items, refused, issues)
        wt = acquire_worktree(tree.path, settings.path(cfg.worktrees),
                              _key(tree.path, cand, tree.default_base), cand.commit,
                              slots=cfg.worktrees_per_base, timeout_s=cfg.lock_timeout_s)
        run = _apply_in(wt, cand.commit, items, cfg.am_timeout_s)
        attempts.append(_Attempt(cand, run))
        if run.ok:
            entry.outcome, entry.message = "applied", _applied_message(run)
            return _success(state, result, cand, wt, run, issues)
        failed = run.first_failure()
        entry.outcome = "conflict"
        entry.message = failed.message if failed else "git am failed"
        try:
            already = reverse_applies(wt.path, cand.commit, [it.diff for it in items if it.diff])
        finally:
            wt.release()
        if already:
            entry.outcome = "already-applied"
            entry.message = "every patch reverse-applies: the series is already in this base"
            return _already_in(result, cand, items)
    # Nothing applied anywhere: report the attempt that got furthest (first on a tie).
    best = max(attempts, key=lambda a: a.run.n_applied, default=None)
    if best is not None:
        for r in best.run.results:  # commits of a failed attempt are on no branch: drop
            r.commit = None
        result.patches = list(best.run.results)
    n = len([c for c in cands if c.commit])
    result.base_reason = (f"does not apply on any of {n} base(s)" if n
                          else "no base found in the tree")
    return StageOutcome(STAGE, "fail", "does not apply", result,
                        [_finding(i) for i in issues])


def subject_prefixes(series: Series) -> tuple[str, ...]:
    """Subject prefix words of the series (cover letter and patches), in order, once."""
    words: list[str] = []
    for msg in [series.cover,
                *(p.message for p in series.patches)]:
        if msg is not None:
            words += [w for w in msg.subject.prefixes if w not in words]
    return tuple(words)


def _key(repo: Path, cand: Candidate, default_base: str | None) -> str:
    """Worktree name of a base: a sha given as base-commit: reuses the worktree of the tag
    that points at it (each worktree of the full tree is ~1.5 GB and ~20 s to make)."""
    assert cand.commit is not None
    if cand.ref != cand.commit[: len(cand.ref)]:
        return worktree_key(cand.ref, cand.commit)
    names = git(["tag", "--points-at", cand.commit], cwd=repo).stdout.split()
    if default_base in names:
        return worktree_key(default_base or "", cand.commit)
    return worktree_key(sorted(names)[0] if names else cand.ref, cand.commit)


def _apply_in(wt: Worktree, base: str, items: list[PatchItem], timeout_s: float) -> ApplyRun:
    try:
        return apply_series(wt.path, base, items, timeout_s)
    except BaseException:
        # Ctrl-C or a crash in the middle of git am: put the worktree back before unlocking,
        # so that the next run finds it clean (a SIGKILL is repaired by the next holder).
        try:
            reset_to(wt.path, base)
        finally:
            wt.release()
        raise


def _applied_message(run: ApplyRun) -> str:
    done = sum(r.status != SKIPPED for r in run.results)
    present = sum(r.status == ALREADY_PRESENT for r in run.results)
    text = f"git am --3way applied {done} patch(es)"
    return text + (f", {present} already present" if present else "")


def _success(state: ReviewState, result: ApplyResult, cand: Candidate, wt: Worktree,
             run: ApplyRun, issues: list[SafetyIssue]) -> StageOutcome:
    state.worktree = wt.path
    state.base_ref = cand.ref
    state.base_commit = cand.commit
    state.applied = True
    state.patch_commits = {r.index: r.commit for r in run.results if r.commit}
    state.release.append(wt.release)  # the build and boot stages use the worktree too
    result.base, result.base_commit, result.base_reason = cand.ref, cand.commit, cand.reason
    result.worktree = str(wt.path)
    result.patches = list(run.results)
    result.recovered_from_pid = wt.recovered_from
    notes = [f"{sum(r.status == s for r in run.results)} {s}"
             for s in (ALREADY_PRESENT, SKIPPED) if any(r.status == s for r in run.results)]
    if any(not i.refused for i in issues):
        notes.append("binary patch(es)")
    status = "warning" if notes else "success"
    reason = f"applied on {cand.ref}" + (f" ({', '.join(notes)})" if notes else "")
    return StageOutcome(STAGE, status, reason, result, [_finding(i) for i in issues])


def _already_in(result: ApplyResult, cand: Candidate, items: list[PatchItem]) -> StageOutcome:
    """The series is in ``cand`` already: say which base, not "does not apply"."""
    result.base, result.base_commit = cand.ref, cand.commit
    result.base_reason = f"already in {cand.ref}: every patch reverse-applies"
    result.patches = [
        PatchResult(it.index, ALREADY_PRESENT if it.diff else SKIPPED,
                    message=f"already in {cand.ref}" if it.diff else
                    (it.skip_reason or "no diff"), subject=it.subject, message_id=it.message_id)
        for it in items
    ]
    return StageOutcome(STAGE, "fail", f"already in {cand.ref} (every patch reverse-applies)",
                        result)


def _refused(result: ApplyResult, items: list[PatchItem], refused: list[SafetyIssue],
             issues: list[SafetyIssue]) -> StageOutcome:
    bad = {i.index: i.message for i in refused}
    result.patches = [
        PatchResult(it.index, REFUSED if it.index in bad else SKIPPED,
                    message=bad.get(it.index, "not tried: the series was refused"),
                    subject=it.subject, message_id=it.message_id)
        for it in items
    ]
    result.base_reason = "not applied: unsafe patch"
    first = refused[0]
    return StageOutcome(STAGE, "fail", f"refused: patch {first.index}: {first.message}",
                        result, [_finding(i) for i in issues])
