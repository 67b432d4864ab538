"""How the kernel states a function's locking contract: "my caller holds X".

``lockdep_assert_held(&X)`` is the common form (Documentation/locking/lockdep-design.rst);
the tree also says it with ``lockdep_assert_cpus_held()`` (the CPU hotplug lock that
``cpus_read_lock()`` takes), ``percpu_rwsem_assert_held()``, and conditions that name one
lock (RCU/rcu_dereference.rst: ``rcu_dereference_protected(p, lockdep_is_held(&X))``;
``lockdep_assert(lockdep_is_held(&X))``; ``WARN_ON(!mutex_is_locked(&X))``). The facts
(derive.direct_requires) turn each into a required lock; lock-not-held then checks the
callers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_ASSERT_HELD = re.compile(r"^(?:lockdep_assert_held(?:_write|_read|_once)?|percpu_rwsem_assert_held)$")
# Other ways the kernel states "my caller holds X" (Documentation/locking/lockdep-design.rst,
# RCU/rcu_dereference.rst): lockdep_assert_cpus_held() for the CPU hotplug lock, and a
# condition naming one lock: rcu_dereference_protected(p, lockdep_is_held(&X)),
# lockdep_assert(lockdep_is_held(&X)), WARN_ON(!mutex_is_locked(&X)). A condition with
# `||` accepts either of two contexts and requires neither.
_ASSERT_GLOBAL = {"lockdep_assert_cpus_held": "cpu_hotplug_lock"}
_CONDITION_CALLS = re.compile(
    r"^(?:rcu_dereference_protected|rcu_replace_pointer|lockdep_assert(?:_once)?|"
    r"WARN_ON(?:_ONCE)?|BUG_ON|VM_BUG_ON|VM_WARN_ON(?:_ONCE)?)$")
_HELD_TEST = re.compile(
    r"^(!)?\s*(?:lockdep_is_held(?:_type)?|mutex_is_locked|spin_is_locked|rwsem_is_locked|"
    r"raw_spin_is_locked)\s*\((&?[^(),]+)\)\s*$")


def asserted_lock(name: str, args: Sequence[str]) -> tuple[str, bool] | None:
    """What a call asserts its function's caller holds: (the lock's argument text, False),
    or (a global lock's lockdep name, True); None for any other call."""
    if _ASSERT_HELD.match(name):
        return (args[0], False) if args else None
    if name in _ASSERT_GLOBAL:
        return _ASSERT_GLOBAL[name], True
    held = _condition_lock(name, args)
    return (held, False) if held is not None else None


def _condition_lock(call_name: str, args: Sequence[str]) -> str | None:
    """The lock a condition-taking call requires held (its argument text), else None."""
    if not args or not _CONDITION_CALLS.match(call_name):
        return None
    cond = args[-1].strip()
    if "||" in cond:
        return None
    m = _HELD_TEST.match(cond)
    if m is None:
        return None
    # WARN_ON()/BUG_ON() fire when their condition holds: `!is_locked(X)` asserts X held;
    # the rcu/lockdep forms state the condition that must hold.
    warns = call_name.startswith(("WARN", "BUG", "VM_"))
    if warns != bool(m.group(1)):
        return None
    return m.group(2)
