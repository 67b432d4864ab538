"""The ``consistency`` engine: a conversion the patch makes in some places and not others.

A patch that makes readers of a field lockless (``READ_ONCE()``, ``rcu_dereference()``)
or marks its writers (``WRITE_ONCE()``, ``rcu_assign_pointer()``) is a conversion of
*every* access that races: a plain store left behind in another function of the file is
a data race (or a torn pointer for RCU readers), and it is exactly what a reviewer checks
with ``git grep``. This engine does that grep over the whole post-image file (from the
tree, or the patch placed on the nearest base; else only what the hunks show):

* a field is *converted* when the patch removes a plain store to it and adds a marked
  store (``WRITE_ONCE(b->pd[i], p)``, ``rcu_assign_pointer()``);
* a *leftover* is a plain store to the same field (``x->pd[i] = v;``) the patch does not
  remove, outside the accessors.

``check: accounting`` (engine/accounting.py) does the same for memory accounting: an
allocation the patch charges to a memcg, and others of the same request it leaves.
``check: charge-pairs`` (engine/chargepairs.py): a charge whose uncharge twin the patch
leaves passing the old amount, or removes one half of.
"""

from __future__ import annotations

import re
from typing import Any

from reviewbot.diff import FileDiff
from reviewbot.engine.accounting import run_accounting
from reviewbot.engine.chargepairs import run_charge_pairs
from reviewbot.engine.types import FileContext, PatchContext, RawFinding

_FIELD = r"(?:->|\.)(\w+)(?:\[[^\]]*\])*"
_MARKED_STORE = re.compile(r"\b(?:WRITE_ONCE|rcu_assign_pointer|RCU_INIT_POINTER|smp_store_release|"
                           r"rcu_replace_pointer)\s*\(")
# Functions that build an object before anyone else can see it.
_INIT = re.compile(r"(^|_)(alloc|init|create|new|setup|prealloc|ctor)(_|$)")


def _marked_fields(text: str, marked: re.Pattern[str]) -> set[str]:
    """Fields accessed inside a marked accessor on one line: ``WRITE_ONCE(b->pd[i], p)``."""
    out = set()
    for m in marked.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += text[i] == "("
            depth -= text[i] == ")"
            i += 1
        first_arg = re.split(r",(?![^()]*\))", text[m.end() : i - 1])[0]
        found = re.findall(_FIELD + r"\s*$", first_arg.strip())
        out.update(found)
    return out


def _plain_store(text: str, field: str, marked: re.Pattern[str]) -> bool:
    if marked.search(text):
        return False
    return re.search(rf"(?:->|\.){re.escape(field)}(?:\[[^\]]*\])*\s*=(?!=)", text) is not None


def run_consistency(params: dict[str, Any], ctx: PatchContext,
                    applies: Any) -> list[tuple[FileContext, RawFinding]]:
    if params.get("check") == "accounting":
        return run_accounting(params, ctx, applies)
    if params.get("check") == "charge-pairs":
        return run_charge_pairs(params, ctx, applies)
    marked = re.compile(rf"\b(?:{params.get('marked') or '(?!)'})\s*\(")
    out: list[tuple[FileContext, RawFinding]] = []
    for fc in ctx.files:
        if not applies(fc.path) or fc.diff.is_binary:
            continue
        converted = _converted(fc.diff, marked)
        if not converted:
            continue
        rows = fc.post_lines()  # post-image only: what the patch removes is not there
        for field, (first, count) in sorted(converted.items()):
            for line, text in rows:
                if not _plain_store(text, field, marked):
                    continue
                function = _function_at(rows, line)
                if function and _INIT.search(function):
                    continue  # the object is not published yet: nobody races with it
                at, code = first.split(": ", 1)
                where = f" in {function}()" if function else ""
                detail = (f"the patch marks accesses of ->{field} ({count} place(s), as in line "
                          f"{at}: `{code[:60]}`), but line {line}{where} still stores it plainly")
                out.append((fc, RawFinding(line=line, function=function,
                                           captures={"detail": detail, "field": field},
                                           evidence=(line,))))
    return out


def _converted(fd: FileDiff, marked: re.Pattern[str]) -> dict[str, tuple[str, int]]:
    """Fields the patch converts to marked accesses: field -> ("line: text", count)."""
    removed_plain: set[str] = set()
    for h in fd.hunks:
        for ln in h.lines:
            if ln.kind == "-" and not marked.search(ln.text):
                removed_plain.update(re.findall(_FIELD + r"\s*=(?!=)", ln.text))
    found: dict[str, tuple[str, int]] = {}
    for h in fd.hunks:
        for ln in h.lines:
            if ln.kind != "+" or not _MARKED_STORE.search(ln.text):
                continue
            for field in _marked_fields(ln.text, _MARKED_STORE):
                # A conversion: a plain store of the field went away in this patch and a
                # marked one came. (Marked reads alone say little: task->mm is read with
                # READ_ONCE() in places and written plainly under task_lock() by design.)
                if field in removed_plain:
                    first, count = found.get(field, (f"{ln.new_lineno}: {ln.text.strip()}", 0))
                    found[field] = (first, count + 1)
    return found


_FUNCTION_HEAD = re.compile(r"^(?:[\w\s\*]*?[\s\*])?([A-Za-z_]\w*)\s*\(")


def _function_at(rows: list[tuple[int, str]], line: int) -> str | None:
    """The function a line is in: the nearest column-0 ``{`` above it, and its signature."""
    index = {ln: i for i, (ln, _) in enumerate(rows)}
    i = index.get(line, 0)
    for j in range(i, -1, -1):
        text = rows[j][1]
        if text.startswith("}"):
            return None
        if text.startswith("{"):
            for k in range(j - 1, max(-1, j - 6), -1):
                m = _FUNCTION_HEAD.match(rows[k][1])
                if m:
                    return m.group(1)
            return None
    return None
