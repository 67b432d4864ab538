"""Functions that return holding a lock only when they succeed (a conditional acquire by
a helper): ``cgroup_kn_lock_live()`` returns the cgroup with cgroup_mutex held, or NULL
without it; ``refcount_dec_and_lock()`` returns true holding the lock.

The line-order lock summaries (facts/derive.py) cannot tell such a helper from one that
sometimes forgets to unlock: which lock is held depends on the path. So the candidates,
non-void functions that return a failure value (``NULL``, ``false``, ``-E...``,
``ERR_PTR()``) and release a lock somewhere, are walked with the context engine itself
(every path, helpers of the tree included, the base's lock facts in hand): a lock that is
held at every successful return and at no failing one is the caller's on success. The
caller's walk then holds it only on the branch where the result says it succeeded
(engine/condlock.py), so a missing unlock on an error path after success is an imbalance,
and an unlock on the failure branch is not needed.

Polarity: ``zero`` when every successful return is ``return 0;`` (held when the result is
0, as mutex_lock_interruptible()), else ``nonzero`` (a true or non-NULL result holds it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from reviewbot.engine.cfunc import FunctionView, views_from_text
from reviewbot.engine.context import ContextAnalysis
from reviewbot.engine.lockconfig import lock_config
from reviewbot.facts.extract import definitions
from reviewbot.facts.knowledge import Knowledge
from reviewbot.facts.locksummary import _rooted
from reviewbot.facts.tables import Facts

__all__ = ["conditional_keeps"]

log = logging.getLogger(__name__)


def conditional_keeps(candidates: Iterable[tuple[str, str, str]], facts: Facts, k: Knowledge
                      ) -> dict[str, dict[str, list[str]]]:
    """name -> lock key (global or ``$N->field``) -> [polarity, acquiring primitive] of the
    candidates (name, path, function text) that hold a lock exactly when they succeed."""
    _, _, kinds = lock_config(k)
    primitive = {pair: str(spec.raw["acquire"]).split("|")[0] for pair, spec in kinds.items()}
    out: dict[str, dict[str, list[str]]] = {}
    for name, path, text in candidates:
        try:
            found = _conditional(name, path, text, facts, k, primitive)
        except (RecursionError, ValueError) as exc:  # a body tree-sitter cannot read
            log.debug("conditional locks of %s: %s", name, exc)
            continue
        if found:
            out.setdefault(name, found)
    return out


def _conditional(name: str, path: str, text: str, facts: Facts, k: Knowledge,
                 primitive: dict[str, str]) -> dict[str, list[str]]:
    views = [v for v in views_from_text(path, text) if v.name == name]
    defs = [d for d in definitions(text, path) if d.name == name]
    if len(views) != 1 or not defs or views[0].parse_errors:
        return {}
    view, params = views[0], defs[0].param_names
    # (An "imbalance" walk records, per return, what each path holds: Analysis.exits.)
    a = ContextAnalysis({"checks": ["imbalance"]}, view, facts, k)
    a.run()
    success = [held for kind, sets in a.exits.values() if kind == "value" for held in sets]
    failure = [held for kind, sets in a.exits.values() if kind == "error" for held in sets]
    if not success or not failure or any(kind == "void" for kind, _ in a.exits.values()):
        return {}
    zero = all(_returns_zero(view, line) for line, (kind, _) in a.exits.items() if kind == "value")
    out: dict[str, list[str]] = {}
    for key, pair in set.intersection(*(set(h) for h in success)):
        spec = a.kinds.get(pair)
        if not key or spec is None or spec.keyless or any((key, pair) in held for held in failure):
            continue
        if any(h.key == key for h in a.entry) or (key, pair) in a.borrowed:
            continue  # the caller's lock, dropped and retaken (irq_wait_for_poll())
        if key in a.locals and key not in params:
            continue  # a local pointer to some lock (`spin_lock(lock)`), not a global
        rooted = _rooted(f"&{key}" if key not in params else key, params) \
            if re.fullmatch(r"[A-Za-z_]\w*", key) else _rooted(key, params)
        if rooted is not None:
            out[rooted] = ["zero" if zero else "nonzero", primitive[pair]]
    return out


def _returns_zero(view: FunctionView, line: int | None) -> bool:
    """Whether the return statement at ``line`` is ``return 0;``."""
    return line is not None and re.fullmatch(r"\s*return\s+0\s*;.*", view.row_text(line)) is not None
