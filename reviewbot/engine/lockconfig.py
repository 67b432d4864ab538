"""kernel.yaml's locks as the pairs of the ``context`` engine's walk (:mod:`context`), built
once per knowledge file: the config, its needle of call names, and which pair a plain lock
call belongs to."""

from __future__ import annotations

import re
from typing import Any

from reviewbot.engine.cfunc import GUARD_PREFIX, UNGUARD_PREFIX
from reviewbot.engine.refspec import Config, _needle
from reviewbot.facts.knowledge import Knowledge, LockSpec

# Every lock and section call has one of these in its name: a substring test spares most
# functions a regex or a walk (engine/contextrun.py, engine/anchor.py).
LOCK_WORDS = ("lock", "rcu_read", "preempt", "irq", "_bh", "down", "_cpu", "guard", "memalloc_",
              "set_active_memcg", "use_mm")

__all__ = ["LOCK_HELPERS", "LOCK_WORDS", "bare_name", "lock_config", "pairs_of_calls"]

# Functions whose job is to take or drop a lock for their caller.
LOCK_HELPERS = re.compile(r"(^|_)(lock|unlock|locked|begin|end|start|stop|enter|exit|get|put|"
                          r"acquire|release|disable|enable|save|restore)(_\w+)?$")


_LOCK_CONFIGS: dict[str, tuple[Config, re.Pattern[str], dict[str, LockSpec]]] = {}


def lock_config(k: Knowledge) -> tuple[Config, re.Pattern[str], dict[str, LockSpec]]:
    """kernel.yaml's locks as refcount pairs (guards included), and pair name -> spec."""
    if k.digest not in _LOCK_CONFIGS:
        _LOCK_CONFIGS[k.digest] = _lock_config(k)
    return _LOCK_CONFIGS[k.digest]


def _lock_config(k: Knowledge) -> tuple[Config, re.Pattern[str], dict[str, LockSpec]]:
    pairs = []
    kinds: dict[str, LockSpec] = {}
    for n, spec in enumerate(k.locks):
        name = f"{spec.kind}#{n}"
        kinds[name] = spec
        cond: Any = {"": False, "true": True, "zero": "zero"}[spec.conditional]
        arg = {} if spec.keyless else {"arg": 0}
        pairs.append({
            "name": name,
            "keyless": spec.keyless,
            "acquire": [{"call": f"(?:{GUARD_PREFIX})?(?:{spec.acquire.pattern})",
                         "conditional": cond, **arg}],
            "release": [{"call": f"(?:{UNGUARD_PREFIX})?(?:{spec.release.pattern})", **arg}],
        })
    config = Config({"pairs": pairs, "transfer": {"store": False, "return": False},
                     "report": ["leak", "double-release"]})
    names = [s.call.pattern[4:-2] for p in config.pairs for s in (*p.acquire, *p.release)]
    config.names = names
    return config, _needle(names), kinds


_PAIRS_OF_CALLS: dict[str, dict[str, str]] = {}


def pairs_of_calls(k: Knowledge) -> dict[str, str]:
    """Plain lock call name -> its pair in lock_config() (read only; one per knowledge)."""
    if k.digest not in _PAIRS_OF_CALLS:
        _, _, kinds = lock_config(k)
        found: dict[str, str] = {}
        for pair_name, spec in kinds.items():
            for prim in _primitive_names(spec):
                found.setdefault(prim, pair_name)
        _PAIRS_OF_CALLS[k.digest] = found
    return _PAIRS_OF_CALLS[k.digest]


def _primitive_names(spec: LockSpec) -> list[str]:
    """The plain call names an acquire regex of kernel.yaml stands for (``a|b`` lists)."""
    return [n for n in str(spec.raw["acquire"]).split("|") if re.fullmatch(r"\w+", n)]


def bare_name(name: str) -> str:
    """A call name without the prefix cfunc gives a scoped guard's lock or unlock call."""
    for prefix in (GUARD_PREFIX, UNGUARD_PREFIX):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name
