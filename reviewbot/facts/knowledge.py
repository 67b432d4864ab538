"""The kernel knowledge of reviewbot/data/kernel.yaml, typed: sleeping primitives, lock
and atomic-section kinds, and the counted objects with their get/put calls."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import yaml

KNOWLEDGE_FILE = Path(__file__).resolve().parent.parent / "data" / "kernel.yaml"


@dataclass(frozen=True)
class LockSpec:
    acquire: re.Pattern[str]
    release: re.Pattern[str]
    kind: str  # spinlock, raw_spinlock, rwlock, mutex, rwsem, rcu, preempt, irq, bh
    irq: str  # "", "off" or "save"
    bh: bool
    shared: bool  # a reader side: nesting two readers is not a self-deadlock
    conditional: str  # "", "true" (held when non-zero) or "zero" (held when 0)
    keyless: bool
    lock: str  # lockdep name of the global lock a keyless entry takes, if any
    raw: dict[str, Any]

    @property
    def sleeping(self) -> bool:
        return self.kind in ("mutex", "rwsem")


@dataclass(frozen=True)
class Knowledge:
    sleeps: re.Pattern[str]
    blocking_gfp: re.Pattern[str]
    never_sleeps: re.Pattern[str]
    conditional_params: re.Pattern[str]
    debug_paths: re.Pattern[str]
    noreturn: re.Pattern[str]
    locks: tuple[LockSpec, ...]
    atomic_kinds: frozenset[str]
    nonpreemptible: re.Pattern[str]  # functions always run non-preemptible, also on RT
    objects: dict[str, dict[str, Any]]  # name -> {"acquire": [...], "release": [...]}
    guards: dict[str, tuple[str, str]]  # guard class -> (lock call, unlock call)
    digest: str  # changes whenever kernel.yaml changes: part of the facts cache key
    allocators: re.Pattern[str] = re.compile(r"(?!)")  # calls that return new memory
    accounted_gfp: re.Pattern[str] = re.compile(r"(?!)")  # flags that charge it to a memcg
    # allocators without a gfp argument that always allocate with GFP_KERNEL (vmalloc())
    implicit_kernel_gfp: re.Pattern[str] = re.compile(r"(?!)")
    # allocators whose gfp argument is optional (GFP_KERNEL when left out): name pattern
    # and how many arguments come before the flags
    optional_gfp: tuple[tuple[re.Pattern[str], int], ...] = ()
    # Answers of lock_for() by call name (every call of every function asks).
    lock_names: dict[str, tuple[LockSpec, str] | None] = field(default_factory=dict, compare=False,
                                                               hash=False, repr=False)

    def lock_for(self, name: str) -> tuple[LockSpec, str] | None:
        """The lock entry a call acquires or releases: (spec, "acquire"|"release")."""
        if name in self.lock_names:
            return self.lock_names[name]
        found: tuple[LockSpec, str] | None = None
        for spec in self.locks:
            if spec.acquire.fullmatch(name):
                found = spec, "acquire"
                break
            if spec.release.fullmatch(name):
                found = spec, "release"
                break
        if len(self.lock_names) < 100_000:  # bounded: names come from untrusted patches
            self.lock_names[name] = found
        return found

    def is_sleep_primitive(self, name: str) -> bool:
        return bool(self.sleeps.fullmatch(name)) and not self.never_sleeps.fullmatch(name)

    def implied_gfp(self, name: str, args: str) -> bool:
        """Whether ``name(args)`` allocates with GFP_KERNEL without naming any flags:
        ``vzalloc(size)`` is ``__vmalloc(size, GFP_KERNEL | __GFP_ZERO)``, and
        ``kzalloc_obj(*p)`` leaves out its optional flags (``args``: the text between
        the call's parentheses)."""
        if self.implicit_kernel_gfp.fullmatch(name):
            return True
        for pattern, before in self.optional_gfp:
            if pattern.fullmatch(name):
                return _top_level_args(args) <= before
        return False

    def unaccounted(self, allocation: str) -> bool:
        """Whether ``x = call(args)`` allocates, with flags that may block, uncharged."""
        call, _, args = allocation.partition("(")
        name = call.split("= ")[-1].strip()
        if self.implied_gfp(name, args.rpartition(")")[0]):
            return True
        return bool(self.allocators.fullmatch(name)) \
            and self.blocking_gfp.search(args) is not None and self.accounted_gfp.search(args) is None

    def release_calls(self) -> list[tuple[str, re.Pattern[str], int]]:
        """(object, call regex, argument index) of every release in the objects table
        (read only: built once, as every function of every patch asks)."""
        return self._release_calls

    def acquire_calls(self) -> list[tuple[str, re.Pattern[str], int]]:
        """(object, call regex, argument index) of every unconditional acquire of an
        argument in the objects table (a lookup returning its reference, or a tryget, is
        not one a get helper wraps unconditionally). Read only, built once."""
        return self._acquire_calls

    # (cached_property writes the instance's __dict__ directly: a frozen dataclass allows it)
    @cached_property
    def _release_calls(self) -> list[tuple[str, re.Pattern[str], int]]:
        out = []
        for obj, spec in self.objects.items():
            for rel in spec.get("release") or []:
                out.append((obj, re.compile(f"(?:{rel['call']})"), int(rel.get("arg", 0))))
        return out

    @cached_property
    def _acquire_calls(self) -> list[tuple[str, re.Pattern[str], int]]:
        out = []
        for obj, spec in self.objects.items():
            for acq in spec.get("acquire") or []:
                if "arg" in acq and not acq.get("conditional") and not acq.get("returns"):
                    out.append((obj, re.compile(f"(?:{acq['call']})"), int(acq["arg"])))
        return out


def _alternation(items: list[str] | str) -> re.Pattern[str]:
    if isinstance(items, str):
        items = [items]
    return re.compile("(?:" + "|".join(f"(?:{i})" for i in items) + ")")


@lru_cache(maxsize=4)
def load_knowledge(path: Path = KNOWLEDGE_FILE) -> Knowledge:
    text = path.read_bytes()
    raw = yaml.safe_load(text)
    locks = tuple(
        LockSpec(
            acquire=re.compile(f"(?:{e['acquire']})"),
            release=re.compile(f"(?:{e['release']})"),
            kind=str(e["kind"]),
            irq=str(e.get("irq") or ""),
            bh=bool(e.get("bh")),
            shared=bool(e.get("shared")),
            conditional=str(e.get("conditional") or "").lower(),
            keyless=bool(e.get("keyless")),
            lock=str(e.get("lock") or ""),
            raw=dict(e),
        )
        for e in raw["locks"]
    )
    return Knowledge(
        sleeps=_alternation(raw["sleeps"]),
        blocking_gfp=re.compile(r"\b(?:" + raw["blocking-gfp"] + r")\b"),
        never_sleeps=_alternation(raw["never-sleeps"]),
        conditional_params=re.compile(raw["conditional-params"]),
        debug_paths=re.compile(raw["debug-paths"]),
        noreturn=re.compile(f"(?:{raw['noreturn']})"),
        locks=locks,
        atomic_kinds=frozenset(raw["atomic-kinds"]),
        nonpreemptible=re.compile(f"(?:{raw['nonpreemptible']})"),
        objects=dict(raw["objects"]),
        guards={str(k): (str(v[0]), str(v[1])) for k, v in raw["guards"].items()},
        digest=hashlib.sha256(text).hexdigest()[:12],
        allocators=re.compile(f"(?:{raw['allocators']})"),
        accounted_gfp=re.compile(r"\b(?:" + raw["accounted-gfp"] + r")\b"),
        implicit_kernel_gfp=re.compile(f"(?:{raw.get('implicit-kernel-gfp') or '(?!)'})"),
        optional_gfp=tuple((re.compile(str(name)), int(before))
                           for name, before in (raw.get("optional-gfp") or {}).items()),
    )


def _top_level_args(args: str) -> int:
    """How many comma-separated arguments ``args`` holds (nesting respected; 0 when
    empty). A count, not facts.extract.split_top(): extract imports modules that import
    this one."""
    if not args.strip():
        return 0
    depth, count = 0, 1
    for ch in args:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            count += 1
    return count
