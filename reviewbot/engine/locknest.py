"""Two lock-ordering checks of the context walk (:mod:`context`): a lock taken again while
held (``double-lock``, a self-deadlock), and two global locks taken in the opposite order
of the one the base follows (``lock-order``, the ABBA deadlock lockdep reports as a
possible circular locking dependency)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tree_sitter import Node

from reviewbot.engine.entryctx import entry_reason
from reviewbot.engine.fieldlock import function_types
from reviewbot.engine.lockconfig import bare_name
from reviewbot.engine.refstate import Held, State
from reviewbot.facts.fieldlocks import lock_class, object_key
from reviewbot.facts.knowledge import LockSpec

if TYPE_CHECKING:
    from reviewbot.engine.context import ContextAnalysis

__all__ = ["_at", "_outer", "_shown", "double_lock", "lock_order"]


def _shown(held: Held) -> str:
    """``spin_lock_irq() on css_set_lock`` (a key is the object, ``&`` dropped)."""
    return f"{bare_name(held.call)}()" + (f" on {held.key}" if held.key else "")


def _at(held: Held, taken: str = "") -> str:
    """``spin_lock_irq() on css_set_lock [taken] at line 12``, or for what the function is
    entered holding, where that comes from (engine/entryctx.py)."""
    reason = entry_reason(held)
    if reason is not None:
        return reason
    return f"{_shown(held)} {taken}at line {held.line}"


def _outer(held: Held) -> str:
    return "(entry)" if entry_reason(held) is not None else bare_name(held.call)


def double_lock(a: ContextAnalysis, call: Node, name: str, found: tuple[LockSpec, str] | None,
                state: State) -> None:
    """A lock taken while already held, directly or through a called function (facts)."""
    if found is not None:
        spec, role = found
        if role != "acquire" or spec.keyless or spec.conditional:
            return
        key = a._arg_key(call, 0)
        for h in state.held:
            held = a.spec_of(h)
            if h.key != key or held.kind != spec.kind:
                continue
            what = "an rw semaphore" if spec.kind == "rwsem" else "an rwlock"
            if not held.shared and not spec.shared:
                detail = "takes a lock already held"
            elif held.shared and spec.shared:
                if spec.kind != "rwsem":
                    continue  # rwlock_t readers nest (qrwlock lets a reader in past a writer)
                # A waiting writer stops new readers (rwsem, and percpu_rw_semaphore's
                # readers block once percpu_down_write() starts): lockdep's "possible
                # recursive locking".
                detail = ("takes for reading again an rw semaphore it holds for reading: a "
                          "writer that queues between the two blocks the second reader")
            elif not spec.shared:
                detail = f"takes for writing {what} it holds for reading"
            else:
                detail = f"takes for reading {what} it holds for writing"
            a.hit("double-lock", call, h, {
                "detail": f"{name}({key}) at line {a.line(call)} {detail} ({_at(h)}): self-deadlock",
                "call": name, "outer": _outer(h)})
        return
    for lock, via in a.locks_taken_by(name).items():
        for h in state.held:
            if h.key == lock and not a.spec_of(h).shared:
                shown = " -> ".join(f"{c}()" for c in via)
                a.hit("double-lock", call, h, {
                    "detail": f"{name}() at line {a.line(call)} takes {lock} ({shown}), "
                              f"already held ({_at(h)}): self-deadlock",
                    "call": name, "outer": _outer(h)})


def lock_order(a: ContextAnalysis, call: Node, name: str, found: tuple[LockSpec, str] | None,
               state: State) -> None:
    """Taking B while holding A where the base takes A while holding B: the ABBA
    deadlock lockdep reports as a possible circular locking dependency."""
    if found is not None:
        spec, role = found
        if role != "acquire" or spec.conditional:
            return
        inner = {spec.lock: [name]} if spec.keyless and spec.lock else \
            ({} if spec.keyless else {a._arg_key(call, 0): [name]})
    else:
        inner = a.locks_taken_by(name)
    for lock, via in inner.items():
        for h in state.held:
            outer = h.key or a.kinds[h.pair].lock
            if not outer or outer == lock or outer.startswith("$") or lock.startswith("$"):
                continue
            found_order = _order(a, outer, lock)
            if found_order is None:
                continue
            example, outer_class, inner_class = found_order
            shown = " -> ".join(f"{c}()" for c in via)
            named = "" if (outer_class, inner_class) == (outer, lock) else \
                f" (the lock classes {outer_class} and {inner_class})"
            a.hit("lock-order", call, h, {
                "detail": f"{shown} at line {a.line(call)} takes {lock} while {outer} is held "
                          f"(since line {h.line}), but {example}() takes {outer_class} while holding "
                          f"{inner_class}{named}: a lock order inversion (ABBA deadlock)",
                "call": name, "outer": outer})


def _order(a: ContextAnalysis, outer: str, lock: str) -> tuple[str, str, str] | None:
    """(example, outer's class, inner's class) when the base nests ``outer`` inside
    ``lock`` and never the other way: by name for global locks, else by lock class, the
    struct type and field of an object's lock (``request_queue->queue_lock`` for
    ``&blkg->q->queue_lock``), as lockdep keys them."""
    example = a.facts.nested_in(lock, outer)
    if example is not None:
        return None if a.facts.nested_in(outer, lock) else (example, outer, lock)
    if "->" not in outer and "->" not in lock and "." not in outer and "." not in lock:
        return None
    types = function_types(a)
    outer_key, inner_key = object_key(outer, types), object_key(lock, types)
    if outer_key is None or inner_key is None:
        return None
    outer_class, inner_class = lock_class(outer_key, a.facts.field_type), lock_class(inner_key, a.facts.field_type)
    if outer_class == inner_class:
        return None
    example = a.facts.nested_in(inner_class, outer_class)
    if example is None or a.facts.nested_in(outer_class, inner_class):
        return None  # no known order, or the base nests them both ways
    return example, outer_class, inner_class
