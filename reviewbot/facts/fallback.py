"""A callee the nearest base does not have, judged by an older base that has it.

A series reviewed on its hunks is read on the base its hunks fit best, and its calls are
judged by that base's facts. The bases are snapshots years apart, and a callee may exist
in the author's tree and not in that base: renamed since (``cgroup_rstat_flush()`` became
``css_rstat_flush()``), or not yet added. Without facts the call is unknown: it neither
sleeps nor takes a lock, and a ``cgroup_rstat_flush()`` added under ``rcu_read_lock()``
goes unreported. A reviewer knows what the function did in the tree it was written for.

So a question about a function the nearest base does not define at all goes to the other
bases the series may have been written against, nearest first, and the first that defines
it answers. Bases released after the mail are not asked (they may hold the series itself),
and a function the nearest base does define is never judged elsewhere: its own body there,
even a changed one, is the reference.
"""

from __future__ import annotations

from collections.abc import Callable

from reviewbot.facts.tables import Facts

__all__ = ["Fallback"]


class Fallback(Facts):
    """``primary`` (the nearest base), with ``others`` (loaders of other bases' facts,
    nearest first, called when first needed) for the functions it does not define."""

    def __init__(self, primary: Facts, others: list[Callable[[], Facts | None]]) -> None:
        super().__init__(revision=primary.revision, digest=primary.digest, stats=primary.stats,
                         rcu_fields=primary.rcu_fields, rcu_iters=primary.rcu_iters)
        self.primary = primary
        self._loaders = others
        self._loaded: list[Facts | None] = []
        self._who: dict[str, Facts] = {}

    def _other(self, index: int) -> Facts | None:
        while len(self._loaded) <= index:
            self._loaded.append(self._loaders[len(self._loaded)]())
        return self._loaded[index]

    def _for(self, name: str) -> Facts:
        """The facts that judge ``name``: the nearest base's, unless it lacks the function
        and another base has it."""
        found = self._who.get(name)
        if found is None:
            found = self.primary
            if name and not self.primary.defines(name):
                for index in range(len(self._loaders)):
                    other = self._other(index)
                    if other is not None and other.defines(name):
                        found = other
                        break
            if len(self._who) < 100_000:  # bounded: names come from untrusted patches
                self._who[name] = found
        return found

    def defines(self, name: str) -> bool:
        return self._for(name).defines(name)

    # Questions about one function: asked of the base that has it.
    def sleep_chain(self, name: str, path: str | None = None) -> list[str] | None:
        return self._for(name).sleep_chain(name, path)

    def locks_taken(self, name: str) -> dict[str, list[str]]:
        return self._for(name).locks_taken(name)

    def locks_released(self, name: str) -> dict[str, list[str]]:
        return self._for(name).locks_released(name)

    def locks_kept(self, name: str) -> dict[str, list[str]]:
        return self._for(name).locks_kept(name)

    def locks_kept_if(self, name: str) -> dict[str, list[str]]:
        return self._for(name).locks_kept_if(name)

    def locks_required(self, name: str) -> dict[str, list[str]]:
        return self._for(name).locks_required(name)

    def rcu_need(self, name: str) -> tuple[tuple[str, ...], list[str]] | None:
        return self._for(name).rcu_need(name)

    def opens_rcu(self, name: str) -> bool:
        return self._for(name).opens_rcu(name)

    def released_params(self, name: str) -> dict[int, str]:
        return self._for(name).released_params(name)

    def acquired_params(self, name: str) -> dict[int, str]:
        return self._for(name).acquired_params(name)

    def returned_ref(self, name: str) -> list[str]:
        return self._for(name).returned_ref(name)

    def callback_params(self, name: str) -> dict[str, list[str]]:
        return self._for(name).callback_params(name)

    def callback_context(self, name: str) -> list[str]:
        return self._for(name).callback_context(name)

    def unaccounted_alloc(self, name: str) -> list[str] | None:
        return self._for(name).unaccounted_alloc(name)

    def preempt_need(self, name: str, path: str | None = None) -> list[str] | None:
        return self._for(name).preempt_need(name, path)

    # Conventions of the tree (locks of fields and lists, lock order, ops tables, RCU
    # fields) and what a patch changes: the nearest base's.
    def ops_entry(self, member: str) -> list[str]:
        return self.primary.ops_entry(member)

    def ops_lock(self, member: str) -> dict[str, list[str]]:
        return self.primary.ops_lock(member)

    def ops_sleep(self, member: str) -> list[str] | None:
        return self.primary.ops_sleep(member)

    def field_type(self, owner: str, name: str) -> str | None:
        return self.primary.field_type(owner, name)

    def nested_in(self, outer: str, inner: str) -> str | None:
        return self.primary.nested_in(outer, inner)

    def irq_context_of(self, lock: str) -> list[str] | None:
        return self.primary.irq_context_of(lock)

    def work_functions(self, member: str) -> list[list[str]]:
        return self.primary.work_functions(member)

    def field_lock(self, name: str) -> list[str]:
        return self.primary.field_lock(name)

    def irq_shared_lock(self, lock: str) -> list[str]:
        return self.primary.irq_shared_lock(lock)

    def changed_by_patch(self, name: str) -> bool:
        return self.primary.changed_by_patch(name)

    def shown_in_part(self, name: str) -> bool:
        return self.primary.shown_in_part(name)

    def preempt_table(self) -> dict[str, list[str]]:
        return self.primary.preempt_table()

    def preempt_names(self) -> frozenset[str]:
        return self.primary.preempt_names()

    def slab_cache(self, name: str) -> str:
        return self.primary.slab_cache(name)

    def is_rcu_field(self, name: str) -> bool:
        return self.primary.is_rcu_field(name)

    def rcu_iterator(self, name: str) -> str | None:
        return self.primary.rcu_iterator(name)
