"""A lock shared with interrupt context, taken with that interrupt enabled (the
``irq-unsafe`` check of the context walk, :mod:`context`).

Two sources say a lock is shared with interrupt context. The facts' ``irq_locks``: a
global lock an interrupt handler, hrtimer, timer, tasklet, RCU callback or percpu_ref
release takes (directly or through what it calls). And the tree's majority (facts/fieldlocks.py, ``irq_shared``):
a lock, also a per-object one named by its struct type (``shmem_inode_info->lock``), that
the tree takes with interrupts disabled wherever it takes it in process context; nobody
writes ``spin_lock_irqsave()`` twenty times for a lock interrupts never take. Taking either
with a plain ``spin_lock()`` in process context deadlocks when the interrupt arrives on
the same CPU while it is held (lockdep: "inconsistent lock state").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tree_sitter import Node

from reviewbot.engine.cfunc import node_text
from reviewbot.engine.fieldlock import function_types
from reviewbot.engine.lockconfig import LOCK_HELPERS, bare_name
from reviewbot.engine.refstate import State
from reviewbot.facts.fieldlocks import IRQ_CONTEXT_HEAD, object_key
from reviewbot.facts.knowledge import LockSpec

if TYPE_CHECKING:
    from reviewbot.engine.context import ContextAnalysis

__all__ = ["irq_unsafe"]


def irq_unsafe(a: ContextAnalysis, call: Node, name: str, spec: LockSpec, state: State) -> None:
    """Report ``call`` (an acquire of ``spec``) when it takes an interrupt-shared lock with
    that interrupt enabled."""
    if spec.keyless or spec.kind not in ("spinlock", "raw_spinlock", "rwlock") or spec.irq:
        return
    lock = a._arg_key(call, 0)
    where = a.facts.irq_context_of(lock)
    irq_off = any(a.kinds[h.pair].irq or a.kinds[h.pair].kind == "irq" for h in state.held)
    bh_off = spec.bh or any(a.kinds[h.pair].bh or a.kinds[h.pair].kind == "bh" for h in state.held)
    if not where:
        # Not seen in an interrupt handler, but maybe taken with interrupts disabled
        # wherever the tree takes it. Which interrupt is unknown: bottom halves off is
        # given the benefit of the doubt.
        if not irq_off and not bh_off and not spec.conditional:
            _by_majority(a, call, name, lock)  # (a trylock never spins on it)
        return
    context = where[0]
    if irq_off or (context == "softirq" and bh_off):
        return
    via = " -> ".join(f"{c}()" for c in where[1:])
    fix = "spin_lock_irqsave()" if context == "hardirq" else "spin_lock_bh() (or _irqsave)"
    line = a.line(call) or 0
    detail = (f"{name}() at line {line} takes {lock} with {context}s enabled, but {via} "
              f"takes it in {context} context: use {fix}")
    if a.relevant(line, line):
        a.hits.setdefault(("irq-unsafe", line, name), (line, {"detail": detail, "call": name}, (line,)))


def _by_majority(a: ContextAnalysis, call: Node, name: str, lock: str) -> None:
    """``lock`` taken plainly where the tree disables interrupts around it everywhere
    else (facts/fieldlocks.py)."""
    if IRQ_CONTEXT_HEAD.search(_head(a)):
        return  # an interrupt handler itself: interrupts are off already
    if LOCK_HELPERS.search(a.view.name) or _first_use(a, lock) != "acquire":
        # A lock helper that returns holding it (lock_page_lruvec()), or a function that
        # drops and retakes its caller's lock (dequeue_signal()): the caller chose the
        # interrupt state.
        return
    typed = object_key(lock, function_types(a))
    shared = a.facts.irq_shared_lock(typed or lock)
    if not shared:
        return
    irq_sites, total, *examples = shared
    line = a.line(call) or 0
    shown = ", ".join(f"{e}()" for e in examples)
    detail = (f"{name}() at line {line} takes {lock} with interrupts enabled, but "
              f"{irq_sites} of the {total} places of the kernel tree that take "
              f"{typed or lock} disable interrupts around it ({shown}): it is shared with "
              f"interrupt context; use spin_lock_irqsave() (or _irq)")
    if a.relevant(line, line):
        a.hits.setdefault(("irq-unsafe", line, name), (line, {"detail": detail, "call": name}, (line,)))


def _first_use(a: ContextAnalysis, lock: str) -> str:
    """"acquire" when the function's first call on ``lock`` takes it and a later one
    releases it (its own section); else "release" (its caller's lock) or "" (it returns
    holding it)."""
    roles = []
    for call in a.calls_of(a.view.node):
        found = a.k.lock_for(bare_name(a.name_of(call)))
        if found is not None and not found[0].keyless and a._arg_key(call, 0) == lock:
            roles.append(found[1])
    if not roles or roles[0] == "release":
        return "release"
    return "acquire" if "release" in roles else ""


def _head(a: ContextAnalysis) -> str:
    """The function's signature before its body (storage class, return type)."""
    node = a.view.node
    body = node.child_by_field_name("body")
    text = node_text(node)
    return text[: body.start_byte - node.start_byte] if body is not None else text
