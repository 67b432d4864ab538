"""The ``refcount`` engine's entry point: run the path analysis of :mod:`refcount` over
one function and turn its events (leaks, double releases, uses after a release) into
findings a reviewer reads."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from reviewbot.engine.cfunc import LOCK_MARKER, FunctionView
from reviewbot.engine.cnodes import view_callees, view_text, view_words
from reviewbot.engine.consumers import Consumers
from reviewbot.engine.refcount import Analysis, Event
from reviewbot.engine.refspec import Config, config_for, finds_call, with_helpers
from reviewbot.engine.refstate import FAILED
from reviewbot.engine.types import RawFinding
from reviewbot.engine.uses import handed_to_caller, only_local
from reviewbot.facts.tables import Facts

log = logging.getLogger(__name__)


# Rules that name only kernel.yaml objects (refcount-imbalance, memory-leak,
# use-after-release) share one walk per function: the union of what they report.
_SHARED: dict[tuple[str, ...], dict[str, Any]] = {}


def shared_params(params: dict[str, Any]) -> dict[str, Any] | None:
    """The walk a rule can share with others: same objects, default transfers."""
    if params.get("pairs") or params.get("iterators") or not params.get("objects") \
            or params.get("transfer") not in (None, {"store": True, "return": True}):
        return None
    key = tuple(params["objects"])
    if key not in _SHARED:
        _SHARED[key] = {"objects": list(key), "transfer": {"store": True, "return": True},
                        "report": ["leak", "double-release", "use-after-release"]}
    return _SHARED[key]


def run_paths(
    params: dict[str, Any], view: FunctionView, helpers: dict[str, tuple[str, str]] | None = None,
    facts: Facts | None = None, memo: dict[str, object] | None = None,
    partial: Mapping[str, list[Any]] | Consumers | None = None,
) -> list[RawFinding]:
    if params.get("not-functions") and re.search(params["not-functions"], view.name):
        return []
    rule_params, shared = params, shared_params(params)
    if shared is not None:
        key = f"paths:{id(view)}:{id(shared)}"
        if memo is not None and key in memo:
            return _filtered(rule_params, memo[key])  # type: ignore[arg-type]
        found = _run(shared, view, helpers, facts, partial)
        if memo is not None:
            memo[key] = found
        return _filtered(rule_params, found)
    return _filtered(rule_params, _run(params, view, helpers, facts, partial))


def _may_hold(config: Config, view: FunctionView, facts: Facts | None) -> bool:
    """Whether the walk can report anything: a leak, a handoff, a double release all need
    a reference held on some path, which only an acquire (a pair's, an iterator's, or the
    facts' get helper or function returning a reference: call_ops(), cond(), iterate())
    gives; a release of something not held changes nothing but freed memory, remembered
    for a use after it (Analysis.apply())."""
    words = view_words(view)  # (every call name the walk meets is one of these)
    pairs = {p.name for p in config.pairs}
    if any(m.acquire for n in words for m in config.matching(n)) or \
            any(it.macro.match(n) for it in config.iterators for n in words):
        return True
    callees = view_callees(view)  # (the names the facts were asked about above)
    if facts is not None and any(
            facts.returned_ref(n) or any(obj in pairs for obj in facts.acquired_params(n).values())
            for n in callees):
        return True
    if "use-after-release" not in config.report or "memory" not in pairs:
        return False
    return any(m.release and m.pair.name == "memory" for n in words for m in config.matching(n)) or \
        (facts is not None and any("memory" in facts.released_params(n).values() for n in callees))


def _constructor_kept(analysis: Analysis, config: Config, ev: Event) -> bool:
    """Memory from a constructor the tree facts know (alloc_pid(), a ``foo_alloc()``) still
    held at a successful return: such objects are handed on by their own helpers, often
    under a condition the walk cannot correlate (copy_process() links the pid only
    ``if (likely(p->pid))``); the leak worth a report is on an error exit."""
    if ev.kind != "leak" or ev.held is None or ev.pair != "memory" or \
            ev.held.call in config.helpers or any(m.acquire for m in config.matching(ev.held.call)):
        return False
    kind, _ = analysis.exits.get(ev.exit_line, ("void", []))
    return kind != "error"


def _filtered(params: dict[str, Any], found: list[RawFinding]) -> list[RawFinding]:
    kinds = set(params.get("report") or ["leak", "double-release"])
    objects = set(params.get("report-objects") or []) or None
    return [f for f in found if f.captures.get("kind") in kinds
            and (objects is None or f.captures.get("kind") == "use-after-release"
                 or f.captures.get("pair") in objects)]


def _run(
    params: dict[str, Any], view: FunctionView, helpers: dict[str, tuple[str, str]] | None,
    facts: Facts | None, partial: Mapping[str, list[Any]] | Consumers | None = None,
) -> list[RawFinding]:
    config, needle = with_helpers(*config_for(params), {
        name: spec for name, spec in (helpers or {}).items() if name != view.name
    })
    text = view_text(view)
    if not finds_call(needle, text, view_words(view)) and not (facts and any(
            facts.released_params(n) or facts.returned_ref(n) for n in view_callees(view))):
        return []  # no call of any pair (or put or get helper): nothing to track
    if not _may_hold(config, view, facts):
        return []  # calls that only put (what a put helper alone admits): nothing to report
    body = view.node.child_by_field_name("body")
    header = text[: body.start_byte - view.node.start_byte] if body is not None else text
    if LOCK_MARKER.search(header) and any(p.keyless for p in config.pairs):
        return []  # __acquires()/__releases(): the imbalance is the function's contract
    analysis = Analysis(config, view, facts)
    analysis.partial = partial or {}
    events = analysis.run()
    events = [e for e in events if not (
        e.kind == "leak" and e.held is not None and not only_local(analysis, e.key)
        and handed_to_caller(analysis, e.key, e.pair, e.exit_line))
        and not _constructor_kept(analysis, config, e)]
    if analysis.truncated:
        log.warning("%s:%s: path analysis stopped after %d states; findings may be incomplete",
                    view.file, view.name, config.max_states)
    out = [_use_finding(analysis, ev) for ev in sorted(analysis.uses.values(), key=lambda e: (e.line or 0, e.key))
           if _touched(view, analysis.release_line.get(ev.key), ev.line)]
    for (key, at), (held, callee) in sorted(analysis.handoffs.items(), key=lambda kv: kv[0][1] or 0):
        keeps = ", ".join(str(n) for n in callee.keeps_at)
        detail = (f"the {held.pair} reference on `{key}` taken by {held.call}() at line {held.line} is "
                  f"handed to {callee.function}() at line {at}, which stores or drops its "
                  f"`{callee.param}` only on some paths: it returns at line(s) {keeps} still holding it")
        out.append(RawFinding(line=at, function=view.name,
                              captures={"detail": detail, "object": key, "pair": held.pair, "kind": "leak"},
                              evidence=tuple(x for x in (held.line, at) if x)))
    for ev in sorted(events, key=lambda e: (e.line or 0, e.exit_line or 0, e.key)):
        obj = f"`{ev.key}`" if ev.key else ev.pair
        if ev.kind == "leak" and ev.held is not None:
            where = f"returns at line {ev.exit_line}" if ev.exit_line else "falls off its end"
            via = f" (reached by {ev.via})" if ev.via else ""
            origin = config.helpers.get(ev.held.call)
            through = f" (which returns the reference {origin}() gave it)" if origin else ""
            learnt = facts.returned_ref(ev.held.call) if facts is not None and not origin \
                and not any(m.acquire for m in config.matching(ev.held.call)) else []
            if len(learnt) > 1 and learnt[0]:  # a function of the tree: say how it hands one out
                through = f" (which returns a reference: {' -> '.join(f'{c}()' for c in learnt[1:])})"
            detail = (
                f"the {ev.pair} reference on {obj} taken by {ev.held.call}(){through} at line "
                f"{ev.held.line} is still held when {view.name}() {where}{via}"
            )
            evidence = tuple(x for x in (ev.held.line, _via_line(ev.via), ev.exit_line) if x)
            line: int | None = ev.exit_line or ev.held.line
        elif ev.via.startswith(FAILED):
            detail = (
                f"{obj} is released at line {ev.line} on the path where "
                f"{ev.via[len(FAILED):].strip()}: no {ev.pair} reference was taken there, so "
                f"this put drops one that somebody else holds"
            )
            evidence = tuple(x for x in (_via_line(ev.via), ev.line) if x)
            line = ev.line
        else:
            detail = (
                f"{obj} is released a second time at line {ev.line} on a path where its "
                f"{ev.pair} reference was already dropped"
            )
            evidence = tuple(x for x in (_via_line(ev.via), ev.line) if x)
            line = ev.line
        out.append(
            RawFinding(
                line=line,
                function=view.name,
                captures={"detail": detail, "object": ev.key, "pair": ev.pair, "kind": ev.kind},
                evidence=evidence,
            )
        )
    return out


def _use_finding(analysis: Analysis, ev: Event) -> RawFinding:
    released = analysis.release_line.get(ev.key)
    at = f" at line {released}" if released else ""
    detail = (f"`{ev.key}` is {ev.pair} at line {ev.line} after its reference was released{at}: "
              f"the object may already be freed")
    return RawFinding(line=ev.line, function=analysis.view.name,
                      captures={"detail": detail, "object": ev.key, "kind": ev.kind},
                      evidence=tuple(x for x in (released, ev.line) if x))


def _touched(view: FunctionView, first: int | None, last: int | None) -> bool:
    """The patch added the release, the use, or a line between them (on a base view,
    with nothing added, every use counts, for the pre-existing comparison)."""
    if not view.added:
        return True
    lo, hi = min(first or 0, last or 0), max(first or 0, last or 0)
    return any(lo <= ln <= hi for ln in view.added if ln in view.line_set())


def _via_line(via: str) -> int | None:
    m = re.search(r"at line (\d+)$", via)
    return int(m.group(1)) if m else None
