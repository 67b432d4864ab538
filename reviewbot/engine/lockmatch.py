"""Unlock calls that do not match the lock held (the ``imbalance`` check of the context
walk, :mod:`context`).

Two mistakes a reviewer catches by eye and a balanced-pairs count does not:

* the flavour: ``spin_lock()`` released by ``spin_unlock_irq()`` (interrupts enabled that
  were never disabled here, or left disabled for the caller), ``spin_lock_irqsave()`` by
  ``spin_unlock_irq()``, ``read_lock()`` by ``write_unlock()``, ``down_read()`` by
  ``up_write()`` - Documentation/locking/locktypes.rst pairs each lock call with its
  unlock;
* the object: ``spin_lock(&a); ... spin_unlock(&b);`` in a function that never takes b
  and never releases a: a lock left held and someone else's lock released.

Both are judged only for a lock taken by an unconditional lock primitive (a helper such as
double_lock_irq() disables interrupts once for two locks; a trylock's result may be kept
in a pointer). The first kind is left alone where the function splits the interrupt part
out on purpose (``spin_unlock(&l); local_irq_restore(flags);``, or
``local_irq_save(flags); spin_lock(&l); ... spin_unlock_irqrestore(&l, flags);``) or
downgrades a writer to a reader (``down_write(); downgrade_write(); up_read();``); the
second where the unlocked lock is named by a local or parameter (a pointer to some lock).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from reviewbot.engine.cfunc import node_text
from reviewbot.engine.lockconfig import bare_name
from reviewbot.engine.refstate import Held, State
from reviewbot.facts.knowledge import LockSpec

if TYPE_CHECKING:
    from reviewbot.engine.context import ContextAnalysis

__all__ = ["mismatched_releases"]

# A function that opens or closes the interrupt (or bottom-half) part by itself.
_SPLIT_IRQ = re.compile(r"\blocal_irq_(save|restore|disable|enable)\s*\(")
_SPLIT_BH = re.compile(r"\blocal_bh_(disable|enable)\s*\(")
# A write lock turned into a read lock in place (rwsem, mmap_lock).
_DOWNGRADE = re.compile(r"\b\w*downgrade\w*\s*\(")


def _flavour(spec: LockSpec) -> str:
    """What a reader calls the variant: irq, irqsave, bh, read, write or plain."""
    if spec.irq:
        return "irqsave" if spec.irq == "save" else "irq"
    if spec.bh:
        return "bh"
    if spec.shared:
        return "read"
    return "write" if spec.kind in ("rwlock", "rwsem") else "plain"


def mismatched_releases(a: ContextAnalysis, state: State, ops: list[tuple[str, Any]]
                        ) -> list[tuple[str, Any]]:
    """``ops`` with each mismatched unlock reported (a hit of the ``imbalance`` check) and
    turned into the release of the lock it was meant for, so that the walk does not also
    report that lock as leaked."""
    groups: dict[tuple[str, int], set[str]] = {}
    for kind, arg in ops:
        if kind == "release":
            key, pair, line = arg
            groups.setdefault((key, line or 0), set()).add(pair)
    held = {(h.key, h.pair) for h in state.held}
    if all(any((key, p) in held for p in pairs) or not any(h.key == key for h in state.held)
           and (not key or key in a.taken) for (key, _), pairs in groups.items()):
        return ops  # every unlock matches what is held, or names a lock taken here (the walk's)
    out: list[tuple[str, Any]] = []
    extra: list[tuple[str, Any]] = []
    fixed: dict[tuple[str, int], str] = {}
    for (key, line), pairs in groups.items():
        if any(h.key == key and h.pair in pairs for h in state.held):
            continue  # the unlock matches what is held
        kinds = {a.kinds[p].kind for p in pairs} - {"scope"}  # task-state saves: no variants
        same = [h for h in state.held if h.key == key and a.kinds[h.pair].kind in kinds
                and _plain_acquire(a, h)]
        if same:
            h = same[-1]
            released = a.kinds[min(pairs)]
            if _split_on_purpose(a, a.kinds[h.pair], released):
                extra.extend(_section_closed(a, state, a.kinds[h.pair], released, line))
            else:
                _report(a, h, line, f"{_call_at(a, line)} at line {line} releases {_what(h)}, "
                        f"taken by {h.call}() at line {h.line}, with the {_flavour(released)} "
                        f"variant instead of the {_flavour(a.kinds[h.pair])} one "
                        f"({_consequence(a.kinds[h.pair], released)})")
            fixed[(key, line)] = h.pair
            continue
        if key and key not in a.taken:
            _other_lock(a, state, key, line, kinds)
    for kind, arg in ops:
        if kind == "release" and (arg[0], arg[2] or 0) in fixed:
            pair = fixed.pop((arg[0], arg[2] or 0), None)
            if pair is not None:
                out.append(("release", (arg[0], pair, arg[2])))
            continue
        out.append((kind, arg))
    return out + extra


def _section_closed(a: ContextAnalysis, state: State, held: LockSpec, released: LockSpec,
                    line: int) -> list[tuple[str, Any]]:
    """``local_irq_save(flags); spin_lock(&l); ... spin_unlock_irqrestore(&l, flags);``:
    the unlock also closes the interrupt (or bottom-half) section opened apart."""
    kind = "irq" if released.irq and not held.irq else "bh" if released.bh and not held.bh else ""
    section = next((h for h in reversed(state.held) if not h.key and a.kinds[h.pair].kind == kind), None)
    return [("release", ("", section.pair, line))] if kind and section is not None else []


def _other_lock(a: ContextAnalysis, state: State, key: str, line: int, kinds: set[str]) -> None:
    """``spin_lock(&a); ... spin_unlock(&b);``: b is never taken here, a never released."""
    if re.fullmatch(r"\w+", key) and (a.is_local(key) or _is_parameter(a, key)):
        return  # a pointer to some lock (`m1 = &d->mutex; ... mutex_unlock(m1)`)
    for h in state.held:
        if not h.key or h.key == key or a.kinds[h.pair].kind not in kinds or not _plain_acquire(a, h):
            continue
        if any(k == h.key for k, _ in a.released_keys) or h.key in a.helper_released:
            continue  # the function releases a elsewhere: b is its caller's lock
        if _last_name(h.key) == _last_name(key):
            continue  # hand-over-hand (`spin_lock(&next->lock); spin_unlock(&prev->lock);`)
        _report(a, h, line, f"{_call_at(a, line)} at line {line} releases {key}, which "
                f"{a.view.name}() never takes (the wrong lock?), while {_what(h)} taken by "
                f"{h.call}() at line {h.line} is never released")
        return


def _plain_acquire(a: ContextAnalysis, h: Held) -> bool:
    """Taken by an unconditional lock primitive of kernel.yaml: a helper's flavour
    (double_lock_irq() disables interrupts once for two locks) and a trylock's are not
    what the call shows."""
    found = a.k.lock_for(bare_name(h.call))
    return found is not None and not found[0].conditional


def _is_parameter(a: ContextAnalysis, name: str) -> bool:
    declarator = a.view.node.child_by_field_name("declarator")
    text = node_text(declarator) if declarator is not None else ""
    return re.search(rf"\b{re.escape(name)}\b", text) is not None


def _split_on_purpose(a: ContextAnalysis, held: LockSpec, released: LockSpec) -> bool:
    text = a.view.node.text.decode("utf-8", "replace") if a.view.node.text else ""
    if bool(held.irq) != bool(released.irq) and _SPLIT_IRQ.search(text):
        return True
    if held.shared != released.shared and _DOWNGRADE.search(text):
        return True  # down_write(); downgrade_write(); up_read(): the writer became a reader
    return bool(held.bh) != bool(released.bh) and bool(_SPLIT_BH.search(text))


def _consequence(held: LockSpec, released: LockSpec) -> str:
    if held.shared != released.shared:
        return "a read-held lock released as a writer (or the reverse) corrupts its count"
    if held.irq == "save" and released.irq == "off":
        return "interrupts are enabled even when the caller had them disabled"
    if released.irq and not held.irq:
        return "interrupts are enabled that this function never disabled"
    if held.irq and not released.irq:
        return "interrupts stay disabled after the unlock"
    if held.bh != released.bh:
        return "bottom halves are left in the wrong state"
    return "the unlock does not undo what the lock did"


def _what(h: Held) -> str:
    return h.key or "the section"


def _call_at(a: ContextAnalysis, line: int) -> str:
    text = a.view.row_text(line)
    m = re.search(r"\b(\w+)\s*\(", text)
    return f"{m.group(1)}()" if m else "the unlock"


def _last_name(key: str) -> str:
    return re.split(r"->|\.", key)[-1]


def _report(a: ContextAnalysis, h: Held, line: int, detail: str) -> None:
    if a.relevant(h.line, line):
        a.hits.setdefault(("imbalance", line, "mismatch"),
                          (line, {"detail": detail, "call": "mismatch", "kind": "mismatch",
                                  "lock_kind": a.kinds[h.pair].kind},
                           (h.line, line)))
