"""Functions that hand out a reference: the refcount engine's view across calls.

A caller of ``charge_target()``, which is ``return get_mem_cgroup_from_mm(mm);``, owns a
css reference as if it had made the lookup itself. Such helpers are found among:

* the functions the patch touches (always), and
* with a tree, the other functions of the touched files that a touched function calls,
  directly or through up to :data:`MAX_DEPTH` calls: a patch that adds a call to an
  existing ``get_mem_cgroup_from_objcg()``-like static helper and forgets the put is the
  common shape of the bug.

A helper of a helper counts (``charge_target()`` returning ``lookup_memcg()``), found by
iterating to a fixpoint; the reported origin is always the root acquire, so the message
names the call a reviewer would grep for.
"""

from __future__ import annotations

from typing import Any

from reviewbot.engine.cfunc import FunctionView
from reviewbot.engine.cnodes import view_callees, view_text, view_words
from reviewbot.engine.refcount import Analysis
from reviewbot.engine.refspec import config_for, finds_call, with_helpers

__all__ = ["MAX_DEPTH", "reference_helpers"]

# Calls followed from a touched function into the rest of its file, and rounds of the
# helper-of-a-helper fixpoint. Kernel reference helpers are shallow (two levels in
# mm/memcontrol.c at most); the bound keeps a large file from costing a whole-file walk.
MAX_DEPTH = 3


def reference_helpers(
    params: dict[str, Any],
    touched: list[FunctionView],
    untouched: list[FunctionView] | tuple[FunctionView, ...] = (),
) -> dict[str, tuple[str, str]]:
    """Helpers that return a reference of one of the rule's pairs: name -> (pair, the root
    call the reference came from). ``untouched`` are the other functions of the touched
    files (tree mode only)."""
    config, needle = config_for(params)
    pool: dict[str, FunctionView] = {}
    for view in (*touched, *untouched):
        pool.setdefault(view.name, view)
    if len(pool) < 2:
        return {}  # a function is not its own helper
    # Only a function reachable from a touched one can change a verdict.
    reachable: set[str] = set()
    frontier = list(touched)
    for _ in range(MAX_DEPTH):
        nxt = []
        for view in frontier:
            # Names followed by "(": calls, plus keywords and function-like macros, which
            # the pool lookup drops (a regex over the text costs far less than a tree walk).
            for name in view_callees(view):
                if name in pool and name not in reachable and name != view.name:
                    reachable.add(name)
                    nxt.append(pool[name])
        frontier = nxt
        if not frontier:
            break
    # A function already named by the rule (get_mem_cgroup_from_mm() is defined in
    # mm/memcontrol.c) keeps its own spec.
    named = [s.call for p in config.pairs for s in p.acquire]
    candidates = sorted(n for n in reachable if not any(r.match(n) for r in named))
    texts = {n: view_text(pool[n]) for n in candidates}
    found: dict[str, tuple[str, str]] = {}
    for _ in range(MAX_DEPTH):
        _, round_needle = with_helpers(config, needle, found)
        grew = False
        for name in candidates:
            text = texts[name]
            # Most functions make no call of a pair: the analysis is the expensive part.
            if name in found or "return" not in text or \
                    not finds_call(round_needle, text, view_words(pool[name])):
                continue
            own, _ = with_helpers(config, needle, {k: v for k, v in found.items() if k != name})
            analysis = Analysis(own, pool[name])
            analysis.run()
            for pair, origin in sorted(analysis.returned.items()):
                root = found[origin][1] if origin in found else origin
                found.setdefault(name, (pair, root))
                grew = True
        if not grew:
            break
    return found
