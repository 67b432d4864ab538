"""Writes of a field outside the lock the rest of the tree writes it under (the
``field-unlocked`` check of the context walk, :mod:`context`).

The facts (reviewbot/facts/fieldlocks.py) record, for struct fields that the base tree
writes under one lock in nearly every function that writes them, which lock that is:
``css_set->nr_tasks`` under ``css_set_lock``, ``cpuset->effective_mems`` under
``callback_lock``, a per-object lock of the same object (``request_queue->rpm_status``
under ``request_queue->queue_lock``). A write the patch adds on a path where that lock is
not held, by this function or by its caller as far as the entry context shows
(engine/entryctx.py), races with every one of those writers: a lost update, or a reader
under the lock that sees a half-made state.

Conservative on purpose: only plain writes (``x->f = v``, ``x->f += v``, ``x->f++``; a
``WRITE_ONCE()`` or an atomic is a deliberate lockless access), only through a pointer
whose struct type the function declares, never in constructors and destructors or to an
object the function allocated (nobody else sees it yet), never in a ``*_locked``
function (its name says the caller holds the lock), nor in one that asserts the lock
anywhere or releases it before taking it (its caller's). A function that takes no lock
at all is judged too: for a field that is a fact, the tree's writers take the lock
themselves or assert it (a helper that writes it under its caller's lock without saying
so would have broken the majority), so a new one should say so with
``lockdep_assert_held()``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tree_sitter import Node

from reviewbot.engine.cfunc import node_text
from reviewbot.engine.cnodes import view_text
from reviewbot.engine.refstate import State
from reviewbot.facts.fieldlocks import (
    LIST_CHANGE,
    LIST_PREFIX,
    LIST_WALK,
    UNPUBLISHED,
    WRITE,
    list_args,
    list_uses,
    object_key,
    private_objects,
    var_types,
)
from reviewbot.facts.tables import Facts

if TYPE_CHECKING:
    from reviewbot.engine.context import ContextAnalysis

__all__ = ["fact_fields_written", "function_types", "unlocked_lists", "unlocked_writes"]

_CALLER_HOLDS = re.compile(r"_locked$|_nolock$|^__\w+_locked")


def function_types(a: ContextAnalysis) -> dict[str, str]:
    """Pointer variable -> struct type of the function (parameters and locals), once."""
    found: dict[str, str] | None = a.view.memo.get("fieldlock-types")
    if found is None:
        found = a.view.memo["fieldlock-types"] = var_types(view_text(a.view))
    return found


def _exempt(a: ContextAnalysis) -> set[str] | None:
    """None when the function is not judged at all; else the objects it made itself."""
    found = a.view.memo.get("fieldlock-private")
    if found is None:
        name = a.view.name
        judged = not UNPUBLISHED.search(name) and not _CALLER_HOLDS.search(name)
        found = a.view.memo["fieldlock-private"] = (judged, private_objects(view_text(a.view)))
    judged, private = found
    return private if judged else None


_LOCK_LINE = re.compile(r"\b\w*(?:lock|unlock|down_\w+|up_\w+|guard)\w*\s*\(")


def _locking_changed(a: ContextAnalysis) -> bool:
    """Whether the patch adds a lock or unlock line to the function: then an unchanged
    write may have left its section (one the base also made unlocked is pre-existing,
    found by comparing with the base function)."""
    found = a.view.memo.get("fieldlock-relocked")
    if found is None:
        added = [ln for ln in a.view.added if ln in a.view.line_set()]
        found = a.view.memo["fieldlock-relocked"] = any(
            _LOCK_LINE.search(a.view.row_text(ln)) for ln in added)
    return bool(found)


_ASSERTED = re.compile(r"\b(?:lockdep_assert_held\w*|__must_hold)\s*\(\s*&?\s*([\w>.\-]+)\s*\)")


def _asserted(a: ContextAnalysis, types: dict[str, str]) -> set[str]:
    """Locks the function asserts or declares held anywhere (its entry context keeps only
    those whose kind its file shows; for a write any assertion is the caller's word)."""
    found: set[str] | None = a.view.memo.get("fieldlock-asserted")
    if found is None:
        found = set()
        for m in _ASSERTED.finditer(view_text(a.view)):
            found.add(m.group(1))
            key = object_key(m.group(1), types)
            if key is not None:
                found.add(key)
        a.view.memo["fieldlock-asserted"] = found
    return found


def _borrowed(a: ContextAnalysis, types: dict[str, str]) -> set[str]:
    """Locks whose first lock call in the function is a release: the caller's, held on
    entry (neigh_invalidate() drops and retakes its caller's neigh->lock)."""
    found: set[str] | None = a.view.memo.get("fieldlock-borrowed")
    if found is None:
        first: dict[str, str] = {}
        for call in a.calls_of(a.view.node):
            lock = a.k.lock_for(a.name_of(call))
            if lock is not None and not lock[0].keyless:
                first.setdefault(a._arg_key(call, 0), lock[1])
        found = set()
        for key, role in first.items():
            if role == "release":
                found |= {key, object_key(key, types) or key}
        a.view.memo["fieldlock-borrowed"] = found
    return found


def _holds(a: ContextAnalysis, state: State, lock: str, types: dict[str, str]) -> bool:
    """Whether ``lock`` (a global's name, or ``type->path``) is held on this path; a held
    lock whose root's type is unknown counts when its path ends the same way."""
    if lock in _asserted(a, types) or lock in _borrowed(a, types):
        return True
    tail = lock[lock.find("->"):] if "->" in lock else None
    for h in state.held:
        if not h.key:
            continue
        if h.key == lock or object_key(h.key, types) == lock:
            return True
        if tail is not None and h.key.endswith(tail) and object_key(h.key, types) is None:
            return True
    return False


def unlocked_writes(a: ContextAnalysis, ast: Node, state: State) -> None:
    """Report each write of ``ast`` to a field the tree writes under a lock not held here."""
    text = node_text(ast)
    if "=" not in text and "++" not in text and "--" not in text:
        return
    private = _exempt(a)
    if private is None:
        return
    first = a.line(ast)
    if first is None:
        return
    types = function_types(a)
    for m in WRITE.finditer(text):
        root = m.group(1)
        if root in private:
            continue
        field = object_key(m.group(1) + m.group(2), types)
        if field is None or "->" not in field:
            continue
        fact = a.facts.field_lock(field)
        if not fact or _holds(a, state, fact[0], types):
            continue
        line = first + text.count("\n", 0, m.start())
        if not a.relevant(line, line) and not _locking_changed(a):
            continue
        lock, held, total, *examples = fact
        shown = ", ".join(f"{e}()" for e in examples)
        expr = m.group(1) + m.group(2)
        detail = (f"line {line} writes {expr} without {lock}, which {held} of the {total} "
                  f"writes of {field} in the kernel tree hold ({shown})")
        a.hits.setdefault(("field-unlocked", line, field),
                          (line, {"detail": detail, "call": lock, "field": field}, (line,)))


def unlocked_lists(a: ContextAnalysis, ast: Node, state: State, walk: bool) -> None:
    """Report a change (``list_add()``, ``list_del()``, ...) or, for ``walk``, the walk of
    ``ast`` (a ``list_for_each_entry()``) of a list the tree links, unlinks and walks under
    a lock not held here: the same judgement as a write of a field."""
    if "list_" not in node_text(ast):
        return
    private = _exempt(a)
    if private is None:
        return
    if walk:
        calls = [ast] if LIST_WALK.match(a.name_of(ast) + "(") else []
    else:
        calls = [c for c in a.calls_of(ast) if LIST_CHANGE.match(a.name_of(c) + "(")]
    if not calls:
        return
    types = function_types(a)
    for call in calls:
        line = a.line(call)
        if line is None:
            continue
        for expr in list_args(node_text(x) for x in a.args_of(call)):
            root = re.match(r"\w+", expr)
            key = object_key(expr, types)
            if root is None or root.group(0) in private or key is None or "->" not in key:
                continue
            fact = a.facts.field_lock(LIST_PREFIX + key)
            if not fact or _holds(a, state, fact[0], types):
                continue
            if not a.relevant(line, line) and not _locking_changed(a):
                continue
            lock, held, total, *examples = fact
            shown = ", ".join(f"{e}()" for e in examples)
            what = "walks" if walk else f"{a.name_of(call)}() changes"
            detail = (f"line {line} {what} the list {expr} without {lock}, which {held} of the "
                      f"{total} walks and changes of {key} in the kernel tree hold ({shown})")
            a.hits.setdefault(("field-unlocked", line, LIST_PREFIX + key),
                              (line, {"detail": detail, "call": lock, "field": key}, (line,)))


def fact_fields_written(text: str, facts: Facts) -> bool:
    """Whether a function's text writes a field the facts know the lock of (a cheap test
    before walking a function that takes no lock)."""
    writes = [m.group(1) + m.group(2) for m in WRITE.finditer(text)] if "->" in text else []
    lists = [expr for _, _, expr in list_uses(text)] if "->" in text else []
    if not writes and not lists:
        return False
    types = var_types(text)  # (only for functions that write through a pointer)
    return any((key := object_key(w, types)) is not None and "->" in key and bool(facts.field_lock(key))
               for w in writes) or \
        any((key := object_key(w, types)) is not None and "->" in key
            and bool(facts.field_lock(LIST_PREFIX + key)) for w in lists)
