"""The ``consistency`` engine's ``check: charge-pairs``: a charge and its uncharge that no
longer agree.

Every charge API of the kernel's controllers has an uncharge twin that must be handed the
same counter and the same amount (``page_counter_try_charge()`` / ``page_counter_uncharge()``,
``obj_cgroup_charge()`` / ``obj_cgroup_uncharge()``, ``mem_cgroup_charge_skmem()`` /
``mem_cgroup_uncharge_skmem()``, ``hugetlb_cgroup_charge_cgroup()`` /
``hugetlb_cgroup_uncharge_cgroup()``, ``misc_cg_try_charge()`` / ``misc_cg_uncharge()``,
``pids_charge()`` / ``pids_uncharge()``). The twin's name is the charge's with ``charge``
(or ``try_charge``) made ``uncharge``; only pairs whose both halves the file calls count.
A reviewer checks two things when a patch touches one half:

* **amount or target changed on one side**: the patch rewrites an argument of one half
  (``obj_cgroup_charge(objcg, gfp, size)`` -> ``..., obj_full_size(s))``) and a call of the
  other half in the same file still passes the old expression: the counter drifts by the
  difference on every object, up (leak of charge) or down (underflow, a cgroup below what
  it holds);
* **one half removed**: a function that charged and uncharged before the patch keeps only
  one of them (an error path that uncharges what is no longer charged, a charge whose
  undo went away), while nothing the patch adds charges (or uncharges) in its place.

The uncharge against current's memcg instead of the charged one is rule uncharge-current.
"""

from __future__ import annotations

import re
from typing import Any

from reviewbot.diff import Hunk
from reviewbot.engine.types import FileContext, PatchContext, RawFinding
from reviewbot.facts.extract import split_top

__all__ = ["run_charge_pairs"]

# A call whose name says it charges or uncharges (`__memcg_kmem_charge_page`).
_CHARGE_CALL = re.compile(r"\b([A-Za-z_]\w*?charge\w*)\s*\(")
_GFP_ARG = re.compile(r"\bGFP_|\bgfp\w*$|__GFP_")
# How far a call's arguments are read (one statement).
_MAX_ARGS = 300


def _partners(name: str) -> tuple[str, ...]:
    """The other half's possible names."""
    if "uncharge" in name:
        return name.replace("uncharge", "charge", 1), name.replace("uncharge", "try_charge", 1)
    if "try_charge" in name:
        return (name.replace("try_charge", "uncharge", 1),)
    return (name.replace("charge", "uncharge", 1),)


def _calls(text: str) -> list[tuple[str, list[str]]]:
    """(name, arguments) of every charge-family call on a line."""
    out = []
    for m in _CHARGE_CALL.finditer(text):
        depth, end = 1, m.end()
        limit = min(len(text), m.end() + _MAX_ARGS)
        while end < limit and depth:
            depth += text[end] == "("
            depth -= text[end] == ")"
            end += 1
        if depth:
            continue  # the call goes on on the next line: its arguments are not all here
        out.append((m.group(1), [" ".join(a.split()) for a in split_top(text[m.end() : end - 1])]))
    return out


def _norm(text: str) -> str:
    return "".join(text.split())


_TOKEN = re.compile(r"\w+|\S")


def _cores(old: str, new: str) -> tuple[str, str]:
    """What an argument's rewrite changed, without the tokens both ends keep:
    ``objects * obj_full_size(s)`` -> ``objects * s->size`` gives ``obj_full_size(s)`` and
    ``s->size`` (the twin uncharges one object: ``obj_full_size(s)``). When the rewrite
    only adds (``size`` -> ``size + extra``) the old core is the whole old argument."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    j = 0
    while j < min(len(a), len(b)) - i and a[-1 - j] == b[-1 - j]:
        j += 1
    core_a, core_b = "".join(a[i : len(a) - j]), "".join(b[i : len(b) - j])
    if not core_a or not re.search(r"\w", core_a):
        return "".join(a), "".join(b)
    return core_a, core_b


def _passes(arg: str, core: str) -> bool:
    """Whether an argument passes an expression: a number only as the whole argument (a
    twin passing `1 << order` does not pass `1`), anything else as a part of it."""
    if re.fullmatch(r"\d+[uUlL]*", core):
        return arg == core
    return core in arg


def run_charge_pairs(params: dict[str, Any], ctx: PatchContext,
                     applies: Any) -> list[tuple[FileContext, RawFinding]]:

    out: list[tuple[FileContext, RawFinding]] = []
    for fc in ctx.files:
        if not applies(fc.path) or fc.diff.is_binary:
            continue
        touched = [h for h in fc.diff.hunks if any(ln.kind != " " and "charge" in ln.text for ln in h.lines)]
        if not touched:
            continue
        # Only a hunk that removes and adds a call of the same name can change an amount:
        # the rest of the file (thousands of lines when rebuilt) is read only then.
        rewritten = [h for h in touched if _rewrites_a_call(h)]
        if rewritten:
            added = {ln.new_lineno for h in fc.diff.hunks for ln in h.lines if ln.kind == "+"}
            # Calls of the file after the patch that the patch did not write.
            kept = [(line, name, args) for line, text in fc.post_lines_with("charge")
                    if line not in added for name, args in _calls(text)]
            for hunk in rewritten:
                out.extend((fc, raw) for raw in _amount_changed(hunk, kept))
        out.extend((fc, raw) for raw in _half_removed(fc, ctx))
    return out


def _rewrites_a_call(hunk: Hunk) -> bool:
    """Whether a charge-pair call name is both removed and added by the hunk."""
    removed = {name for ln in hunk.lines if ln.kind == "-" and "charge" in ln.text
               for name, _ in _calls(ln.text)}
    return bool(removed) and any(name in removed for ln in hunk.lines if ln.kind == "+" and "charge" in ln.text
                                 for name, _ in _calls(ln.text))


def _amount_changed(hunk: Hunk, kept: list[tuple[int, str, list[str]]]) -> list[RawFinding]:
    """A call of one half whose argument the hunk rewrites, while a call of the other half
    that the patch leaves still passes the old expression (and none the new one)."""
    removed = [(name, args) for ln in hunk.lines if ln.kind == "-" for name, args in _calls(ln.text)]
    added = [(ln.new_lineno, name, args) for ln in hunk.lines if ln.kind == "+" and ln.new_lineno
             for name, args in _calls(ln.text)]
    out = []
    for line, name, new_args in added:
        old_args = next((a for n, a in removed if n == name and len(a) == len(new_args)), None)
        if old_args is None:
            continue
        changed = [(o, n) for o, n in zip(old_args, new_args, strict=True)
                   if _norm(o) != _norm(n) and not _GFP_ARG.search(o)]
        if len(changed) != 1:
            continue  # a rewrite of the whole call is a different call, not a new amount
        old, new = changed[0]
        old_core, new_core = _cores(old, new)
        if not re.search(r"[A-Za-z_]\w", old_core):
            continue  # `1` -> `2` in one place says nothing about a twin passing `1`
        partners = _partners(name)
        others = [(pl, pn, list(map(_norm, pa))) for pl, pn, pa in kept if pn in partners]
        # A twin that already passes the new expression (and not the old one in it).
        if not others or any(_passes(arg, new_core) and old_core not in arg for _, _, pa in others for arg in pa):
            continue
        stale = next(((pl, pn) for pl, pn, pa in others if any(old_core in arg for arg in pa)), None)
        if stale is None:
            continue
        detail = (f"line {line} now passes `{new[:60]}` to {name}() where it passed `{old[:60]}`, but "
                  f"{stale[1]}() at line {stale[0]} still passes `{old[:60]}`: the two halves of the "
                  f"charge no longer agree")
        out.append(RawFinding(line=line, function=None, captures={"detail": detail, "call": name},
                              evidence=(line, stale[0])))
    return out


def _half_removed(fc: FileContext, ctx: PatchContext) -> list[RawFinding]:
    """A touched function that called both halves before the patch and only one after,
    when the patch removes the other and adds nothing that charges (or uncharges)."""
    # (Names only: a call whose arguments go on on the next line counts here.)
    removed = {m.group(1) for h in fc.diff.hunks for ln in h.lines if ln.kind == "-"
               for m in _CHARGE_CALL.finditer(ln.text)}
    if not removed:
        return []
    added_text = "\n".join(t for _, t in ctx.series_added) or "\n".join(
        ln.text for h in fc.diff.hunks for ln in h.lines if ln.kind == "+")
    out = []
    for view in fc.post_views:
        post = "\n".join(view.row_text(ln) for ln in view.lines())
        if not any(n in post or any(p in post for p in _partners(n)) for n in removed):
            continue
        base = fc.base_named(view.name)
        if len(base) != 1 or base[0].partial or view.partial:
            continue  # only whole functions tell that a call is gone
        before = {m.group(1) for ln in base[0].lines() for m in _CHARGE_CALL.finditer(base[0].row_text(ln))}
        after = {m.group(1) for ln in view.lines() for m in _CHARGE_CALL.finditer(view.row_text(ln))}
        for name in sorted(removed & before - after):
            twins = [p for p in _partners(name) if p in before and p in after]
            # Something else the series adds that charges or uncharges (a helper that
            # now makes the call) stands in for the removed half.
            side = "uncharge" if "uncharge" in name else "charge"
            if not twins or any(side == ("uncharge" if "uncharge" in m.group(1) else "charge")
                                for m in _CHARGE_CALL.finditer(added_text)):
                continue
            at = next((ln for ln in view.lines() if f"{twins[0]}(" in view.row_text(ln)), None)
            if at is None:
                continue
            gone = ("the charge it gives back is no longer made" if side == "charge"
                    else "nothing gives its charge back any more")
            detail = (f"the patch removes {name}() from {view.name}(), but {twins[0]}() at line {at} "
                      f"is still there: {gone}, so the counter moves one way only")
            out.append(RawFinding(line=at, function=view.name, captures={"detail": detail, "call": name},
                                  evidence=(at,)))
    return out
