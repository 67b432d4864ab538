"""The ``context`` engine's entry point: one rule's findings on one function.

The walk (:class:`~reviewbot.engine.context.ContextAnalysis`) answers every check at once
and is kept in the patch's memo, so the other context rules reuse it; ``stale-snapshot``
needs no walk (:mod:`reviewbot.engine.snapshot`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

from tree_sitter import Node

from reviewbot.engine.anchor import MEMO_KEY as ANCHOR_KEY
from reviewbot.engine.anchor import Anchor
from reviewbot.engine.anchorwalk import held_at
from reviewbot.engine.cfunc import LOCK_MARKER, FunctionView, node_text
from reviewbot.engine.cnodes import view_callees, view_text, view_words
from reviewbot.engine.context import (
    CHECKS,
    ContextAnalysis,
)
from reviewbot.engine.entryctx import entry_hint
from reviewbot.engine.errcode import missing_error_codes
from reviewbot.engine.fieldlock import fact_fields_written
from reviewbot.engine.lockconfig import LOCK_HELPERS, LOCK_WORDS, bare_name, lock_config
from reviewbot.engine.lockremoved import lock_removed_findings
from reviewbot.engine.lockscope import shrunk_sections
from reviewbot.engine.preemptneed import preempt_needed, worth_a_look
from reviewbot.engine.rcuremoved import rcu_removed_findings
from reviewbot.engine.refcount import Event
from reviewbot.engine.refspec import Config, finds_call
from reviewbot.engine.refstate import Held
from reviewbot.engine.snapshot import stale_snapshots
from reviewbot.engine.types import RawFinding
from reviewbot.engine.uses import handed_to_caller
from reviewbot.facts.knowledge import Knowledge, LockSpec, load_knowledge
from reviewbot.facts.locksummary import OTHER_KEY
from reviewbot.facts.tables import EMPTY, Facts


def run_context(params: dict[str, Any], view: FunctionView, facts: Facts | None = None,
                knowledge: Knowledge | None = None,
                memo: dict[str, object] | None = None,
                base: Callable[[], list[FunctionView]] | None = None) -> list[RawFinding]:
    """One rule's findings on one function. The walk itself answers every check at once
    and is kept in ``memo`` (the patch's), so the other context rules reuse it. ``base``
    gives the function before the patch when the patch removes a lock call from its file
    (the ``lock-not-held`` check then also looks for a lock the patch took away)."""
    k = knowledge or load_knowledge()
    check = params.get("check", "sleep-in-atomic")
    if params.get("not-functions") and re.search(params["not-functions"], view.name):
        return []
    facts = facts or EMPTY
    if check == "lock-not-held" and base is not None and not view.partial:
        # (A partial view shows a hunk, not where else the function locks.)
        removed = lock_removed_findings(view, facts, k, base, lambda v: _taken(v, facts, k))
        if removed:
            return removed + run_context(params, view, facts, k, memo)
    if check == "rcu-unprotected" and base is not None and not view.partial:
        gone = rcu_removed_findings(view, facts, base, lambda v: _taken_kinds(v, facts, k))
        if gone:
            return gone + run_context(params, view, facts, k, memo)
    if check == "scope-shrunk":
        # Only with the base function, and only when the patch removes a lock line.
        return shrunk_sections(view, facts, k, base) if base is not None and not view.partial else []
    if check == "stale-snapshot":
        return stale_snapshots(view, k)  # line order, no path walk (engine/snapshot.py)
    if check == "error-code":
        return missing_error_codes(view)  # its own dataflow (engine/errcode.py)
    if check == "preempt-needed" and not worth_a_look(view, facts, view_callees(view)):
        return []
    text = view_text(view)
    # Every lock and section call has one of these in its name: a substring test spares
    # most functions the regex. (Once per function: each of the context rules asks.)
    cheap: bool | None = view.memo.get("lock-words")
    if cheap is None:
        cheap = view.memo["lock-words"] = any(word in text for word in LOCK_WORDS)
    if check in ("lock-not-held", "rcu-unprotected") and not cheap:
        return []  # the function takes no lock itself: its callers hold what it needs
    if check == "imbalance":
        body = view.node.child_by_field_name("body")
        header = text[: body.start_byte - view.node.start_byte] if body is not None else text
        if LOCK_MARKER.search(header) or LOCK_HELPERS.search(view.name):
            return []  # __acquires()/__releases(), or a lock helper: the imbalance is the job
    key = f"context:{id(view)}"
    walked = memo.get(key) if memo is not None else None
    if not isinstance(walked, tuple):
        walked = _walk(view, facts, k, cheap, text)
        if memo is not None:
            memo[key] = walked
    analysis, events = walked
    if check == "preempt-needed":
        if analysis is None:  # nothing is held anywhere in it: every call is unpinned
            whole = ContextAnalysis({"checks": ["preempt-needed"]}, view, facts, k)
            return preempt_needed(whole, [(c, bare_name(whole.name_of(c)))
                                          for c in whole.calls_of(view.node)])
        return preempt_needed(analysis, list(analysis.unpinned.values()))
    if analysis is None and check == "field-unlocked":
        return lockless_writes(view, facts, k)
    if analysis is None:
        return []
    if check == "imbalance":
        wanted = frozenset(params.get("kinds") or ())
        found = [f for ev in sorted(events, key=lambda e: (e.line or 0, e.exit_line or 0, e.key))
                 if not wanted or analysis.kinds[ev.pair].kind in wanted
                 for f in _imbalance_finding(analysis, ev, view)]
        # Unlocks that do not match the lock held (engine/lockmatch.py).
        return found + [RawFinding(line, view.name, captures, evidence)
                        for (c, _, _), (line, captures, evidence) in sorted(analysis.hits.items())
                        if c == "imbalance" and (not wanted or captures["lock_kind"] in wanted)]
    longest = int(params.get("max-chain", 3))
    return [RawFinding(line, view.name, captures, tuple(x for x in evidence if x))
            for (c, _, _), (line, captures, evidence) in sorted(analysis.hits.items())
            if c == check and int(captures.get("depth", 0)) <= longest]


def _taken(view: FunctionView, facts: Facts, k: Knowledge) -> dict[str, int]:
    """The locks a function takes itself (key -> first line), directly or by a helper:
    every line of it, also those a rebuilt view has from the base (the comparison is with
    the base function, which counts them all)."""
    return _taken_kinds(view, facts, k)[0]


def _taken_kinds(view: FunctionView, facts: Facts, k: Knowledge) -> tuple[dict[str, int], set[str]]:
    """:func:`_taken`, and the kinds of what the function takes ("rcu", "spinlock")."""
    whole = dataclasses.replace(view, shown=frozenset()) if view.shown else view
    a = ContextAnalysis({"checks": ["lock-not-held"]}, whole, facts, k)
    return a.taken, a.taken_kinds


def _walk(view: FunctionView, facts: Facts, k: Knowledge, cheap: bool, text: str
          ) -> tuple[ContextAnalysis | None, list[Event]]:
    config, needle, _ = lock_config(k)
    anchor: Anchor | None = view.memo.get(ANCHOR_KEY)
    if anchor is not None and anchor.held is None:
        anchor.held = held_at(anchor, facts, k)  # (read by the walk as its entry context)
    if "guard" not in text and not (cheap and _acquires(config, needle, text, view_words(view))) \
            and not any(facts.locks_kept(n) or facts.locks_kept_if(n) for n in view_callees(view)) \
            and not k.nonpreemptible.fullmatch(view.name) and ANCHOR_KEY not in view.memo \
            and not entry_hint(view, text, facts, k):
        return None, []  # nothing is ever held here (and the function is not atomic itself)
    analysis = ContextAnalysis({"checks": CHECKS}, view, facts, k)
    return analysis, analysis.run()


def _acquires(config: Config, needle: re.Pattern[str], text: str, words: frozenset[str]) -> bool:
    """Whether the function calls a lock or section acquire of kernel.yaml (trylocks too).

    Only an acquire (or a helper the facts say keeps a lock, a guard, an entry context:
    the other tests of _walk()) puts anything in a path state. A function that only
    releases (a hunk of exit_mm() showing its up_read(), or only an rcu_read_unlock())
    never holds anything: no check of the walk can fire but field-unlocked, which
    lockless_writes() answers the same way (its walk starts and stays empty too), and a
    release of what is not held is no double release (State.released only records what
    a path held). Such walks were a sixth of the context walks of the real corpus."""
    return finds_call(needle, text, words) and any(m.acquire for w in words for m in config.matching(w))


def _partly_known_call(analysis: ContextAnalysis, held: Held, end: int | None) -> bool:
    """A call between the acquire and the exit that may release the lock unseen: a
    function the patch changes but shows only in part (split_huge_page_to_list() hands
    its interrupt-off section to __split_huge_page(), whose new body the hunks show in
    pieces), or, for a lock of an object, one that releases a lock its callers cannot
    name (__split_huge_page() unlocks the page cache's xa_lock through its own local)."""
    unnamed = bool(held.key) and not re.fullmatch(r"\w+", held.key)
    if not analysis.facts.partly and not unnamed:
        return False
    last = end if end is not None else max(analysis.view.lines(), default=held.line)
    for call in analysis.calls_of(analysis.view.node):
        line = analysis.line(call)
        if line is None or not held.line < line <= last:
            continue
        name = analysis.name_of(call)
        if analysis.facts.shown_in_part(name) or (unnamed and OTHER_KEY in analysis.facts.locks_released(name)):
            return True
    return False


def _imbalance_finding(analysis: ContextAnalysis, ev: Event, view: FunctionView) -> list[RawFinding]:
    if (ev.key, ev.pair) in analysis.borrowed:
        return []  # the caller's lock, dropped and retaken here
    if ev.kind == "leak" and ev.held is not None and ev.held.line == ev.exit_line:
        return []  # `return spin_trylock(&l);`: the lock is handed to the caller
    if ev.kind == "leak" and handed_to_caller(analysis, ev.key, ev.pair, ev.exit_line):
        return []
    if ev.kind == "leak" and ev.held is not None and _partly_known_call(analysis, ev.held, ev.exit_line):
        return []  # a function the patch changes out of sight may release it
    spec = analysis.kinds[ev.pair]
    if spec.kind == "scope" and ev.kind == "leak" and ev.held is not None \
            and _same_guard(analysis, ev.held.line, spec):
        return []  # `if (c) old = set_active_memcg(m); ... if (c) set_active_memcg(old);`
    what = f"{bare_name(ev.held.call) if ev.held else spec.acquire.pattern}({ev.key})"
    scope = spec.kind == "scope"  # a task-state save (set_active_memcg()), not a lock
    if scope:
        what = f"{bare_name(ev.held.call)}()" if ev.held else f"{spec.acquire.pattern}()"
    if ev.kind == "leak" and ev.held is not None:
        where = f"returns at line {ev.exit_line}" if ev.exit_line else "falls off its end"
        via = f" (reached by {ev.via})" if ev.via else ""
        detail = (f"{what} at line {ev.held.line} is not undone when {view.name}() {where}{via}: "
                  f"the task goes on in the state it set" if scope else
                  f"{what} taken at line {ev.held.line} is still held when {view.name}() {where}{via}")
        evidence = tuple(x for x in (ev.held.line, ev.exit_line) if x)
        line: int | None = ev.exit_line or ev.held.line
    else:
        detail = (f"{spec.release.pattern}() at line {ev.line} restores a state a second time"
                  if scope else f"{ev.key or spec.kind} is released a second time at line {ev.line}")
        evidence = (ev.line,) if ev.line else ()
        line = ev.line
    return [RawFinding(line, view.name, {"detail": detail, "kind": ev.kind}, evidence)]


def _guard_of(node: Node) -> str | None:
    """The condition text of the innermost `if` whose then-branch holds ``node``."""
    child, parent = node, node.parent
    while parent is not None and parent.type != "function_definition":
        if parent.type == "if_statement" and parent.child_by_field_name("consequence") == child:
            cond = parent.child_by_field_name("condition")
            # Compared by their letters and digits: a function rebuilt on the nearest base
            # mixes the patch's lines with the base's, which may spell the same test
            # another way (2020's loop_handle_cmd() tests `cmd->memcg_css`, 6.1's a local
            # `cmd_memcg_css`), and the walk then no longer pairs the two branches.
            return re.sub(r"[^A-Za-z0-9]+", "", node_text(cond)) if cond is not None else None
        child, parent = parent, parent.parent
    return None


def _same_guard(a: ContextAnalysis, line: int, spec: LockSpec) -> bool:
    """Whether the save at ``line`` and a restore of the same pair sit under the same
    condition: the walk does not correlate branches, and a state saved only when the
    condition holds is restored under it."""
    guards: dict[str, set[str | None]] = {"acquire": set(), "release": set()}
    for call in a.calls_of(a.view.node):
        name = bare_name(a.name_of(call))
        # (set_active_memcg() is both: the call at `line` saves, any other restores.)
        if a.line(call) == line and spec.acquire.fullmatch(name):
            guards["acquire"].add(_guard_of(call))
        elif spec.release.fullmatch(name):
            guards["release"].add(_guard_of(call))
    return any(g is not None and g in guards["release"] for g in guards["acquire"])


def lockless_writes(view: FunctionView, facts: Facts, k: Knowledge) -> list[RawFinding]:
    """The field-unlocked check on a function that takes no lock at all (the shared walk
    skips those): walked only when it writes a field the facts know the lock of, for its
    entry context (engine/fieldlock.py)."""
    if not fact_fields_written(view_text(view), facts):
        return []
    a = ContextAnalysis({"checks": ["field-unlocked"]}, view, facts, k)
    a.run()
    return [RawFinding(line, view.name, captures, evidence)
            for (c, _, _), (line, captures, evidence) in sorted(a.hits.items()) if c == "field-unlocked"]
