"""The context a static function's callers give it: what every call site in its file holds.

A reviewer reading ``static void css_update_populated(struct cgroup *cgrp)`` knows it runs
under ``css_set_lock``, not because the function asserts it, but because every place that
calls it holds the lock. A ``static`` function of a ``.c`` file can only be called from
that file, so the file shows all of its callers: when each call site holds a lock (taken
by the caller, asserted by the caller with ``lockdep_assert_held()``, or held by the
caller's own callers), the function runs with it held. Taking that lock again there is a
self-deadlock; a call that may sleep is sleeping in atomic context when the lock is a
spinlock; ``spin_lock_irq()`` re-enables interrupts the callers keep off.

Kept precise, because a wrong entry context makes every one of those checks fire:

* only a ``static`` function whose every mention in the file is its definition, a
  prototype, or a call inside a function body the scan reads: a function whose address is
  taken (an ops table, a callback argument) or that a macro calls runs in contexts the
  file does not show, and gets nothing;
* a hold counts only when a plain lock primitive (no trylock) starts a statement and is
  neither released nor left (a line indented less than the lock call closes its block)
  before the call; a lock released on any earlier line counts as released, whatever path
  the release is on: the scan errs towards "not held";
* the context is the intersection over all call sites, and over the callers' own
  contexts (a fixpoint over the file's call graph; recursion alone gives nothing).

Computed from the file as the view shows it (the patch's post-image, or the base), so a
patch that adds an unlocked caller changes the context it is judged in.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from reviewbot.engine.refspec import normalize
from reviewbot.facts.extract import CALL, args_at, blank_comments, function_bodies
from reviewbot.facts.heldlines import calls_with_holds
from reviewbot.facts.knowledge import Knowledge
from reviewbot.facts.opscontext import ASSERTED, meet, site_key
from reviewbot.facts.opsfacts import OpsScan

__all__ = ["ASSERTED", "PARAM", "CallerContext", "caller_context", "is_global", "members_of"]

PARAM = "@"  # a key "@0->lru_lock": that field of the callee's first parameter
_MAX_TEXT = 3_000_000  # characters: a bound on the scan (memcontrol.c is 250k)
_MAX_ROUNDS = 8
_ASSERT = re.compile(r"^\tlockdep_assert_held(?:_write|_read|_once)?\s*\(\s*([^;]*?)\s*\)\s*;", re.MULTILINE)
_IDENT = re.compile(r"(?<![\w])[A-Za-z_]\w*")
# A body without any of these takes no lock a call site could hold (kernel.yaml's lock
# primitives all have one in their name: spin_lock, mutex_lock, down_read, rcu_read_lock,
# local_irq_disable, preempt_disable, ...; a helper that keeps a lock is not followed).
_LOCKISH = re.compile(r"lock|down_|irq|preempt|_bh|get_cpu|seqcount")
_GLOBAL = re.compile(r"&?\s*[A-Za-z_]\w*")
# Callee -> its call sites: (caller index, line, items held, keys released before).
_Sites = dict[str, list[tuple[int, int, frozenset[str], frozenset[str]]]]
# Files scanned, keyed by the identity of their line list (kept alive by the entry).
_CACHE: dict[int, tuple[list[str], dict[str, CallerContext]]] = {}
_CACHE_SIZE = 16


@dataclass(frozen=True)
class CallerContext:
    """What every caller holds: items ``"call key"`` (``"spin_lock_irq css_set_lock"``,
    ``"rcu_read_lock "``, ``"@assert cgroup_mutex"``) with the first caller and line, and
    how many call sites there are."""

    items: tuple[str, ...]
    caller: str
    line: int
    sites: int


def is_global(key: str) -> bool:
    """A lock named by a plain identifier (``&cgroup_mutex``): the same object in every
    function, where ``&memcg->move_lock`` is the caller's expression."""
    return bool(_GLOBAL.fullmatch(key))


def caller_context(text_lines: list[str], k: Knowledge) -> dict[str, CallerContext]:
    """Static function name -> what all of its callers in the file hold (only those with
    something held)."""
    hit = _CACHE.get(id(text_lines))
    if hit is not None and hit[0] is text_lines:
        return hit[1]
    text = "\n".join(text_lines)
    found = _scan(text, k) if len(text) <= _MAX_TEXT else {}
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[id(text_lines)] = (text_lines, found)
    return found


_MEMBERS: dict[int, tuple[list[str], dict[str, list[str]]]] = {}
# `percpu_ref_init(&css->refcnt, css_release, 0, GFP_KERNEL)` stores a function as a
# percpu_ref's release callback, as an initializer stores it in an ops member.
PERCPU_RELEASE = "percpu_ref.release"
_PERCPU_RELEASE = re.compile(r"\bpercpu_ref_init\s*\(\s*[^,;]+,\s*(\w+)\s*,")


def members_of(text_lines: list[str]) -> dict[str, list[str]]:
    """Function -> the ops members ("cgroup_subsys.css_offline") the file's designated
    initializers store it in (``.css_offline = cpuset_css_offline``)."""
    hit = _MEMBERS.get(id(text_lines))
    if hit is not None and hit[0] is text_lines:
        return hit[1]
    text = "\n".join(text_lines)
    out: dict[str, list[str]] = {}
    if len(text) <= _MAX_TEXT and "= {" in text:
        scan = OpsScan()
        scan.add_initializers("\n" + text, "")
        for member, impls in scan.inits.items():
            for fn, _ in impls:
                out.setdefault(fn, []).append(member)
    if len(text) <= _MAX_TEXT and "percpu_ref_init" in text:
        for fn in _PERCPU_RELEASE.findall(text):
            out.setdefault(fn, []).append(PERCPU_RELEASE)
    if len(_MEMBERS) >= _CACHE_SIZE:
        _MEMBERS.pop(next(iter(_MEMBERS)))
    _MEMBERS[id(text_lines)] = (text_lines, out)
    return out


@dataclass
class _Function:
    name: str
    static: bool
    start: int  # offset of the body in the text
    end: int
    first_line: int  # 1-based line of the body's first character
    asserted: frozenset[str]


def _scan(raw: str, k: Knowledge) -> dict[str, CallerContext]:
    text = blank_comments(raw)
    functions: list[_Function] = []
    line, counted = 1, 0
    for name, static, start, body in function_bodies(text, params=False):
        line += text.count("\n", counted, start)  # (bodies come in order)
        counted = start
        asserted = frozenset(f"{ASSERTED} {normalize(m.group(1))}" for m in _ASSERT.finditer(body)) \
            if "lockdep_assert_held" in body else frozenset()
        functions.append(_Function(name, static, start, start + len(body), line, asserted))
    statics = {f.name for f in functions if f.static}
    if not statics:
        return {}
    # Call sites of the static functions: (caller index, line, held items, released keys).
    sites: _Sites = {}
    for index, f in enumerate(functions):
        for callee, line, held, released in _calls_held(text, f, statics, k):
            sites.setdefault(callee, []).append((index, line, held, released))
    closed = _closed(text, functions, sites)
    entry: dict[str, frozenset[str] | None] = {name: None for name in closed}
    for _ in range(_MAX_ROUNDS):
        changed = False
        for name in closed:
            got: frozenset[str] | None = None
            for index, _, held, released in sites[name]:
                caller = functions[index]
                outer = entry.get(caller.name) if caller.name in closed else frozenset()
                if outer is None:
                    continue  # not known yet (or only recursion): no constraint
                # The caller's own entry context, unless it dropped that lock before the call.
                here = held | {i for i in caller.asserted | outer if site_key(i, k) not in released}
                got = here if got is None else meet(got, here, k)
            if got != entry[name]:
                entry[name], changed = got, True
        if not changed:
            break
    out = {}
    for name, items in entry.items():
        if items:
            index, line, _, _ = sites[name][0]
            out[name] = CallerContext(tuple(sorted(items)), functions[index].name, line, len(sites[name]))
    return out


def _calls_held(text: str, f: _Function, statics: set[str], k: Knowledge
                ) -> list[tuple[str, int, frozenset[str], frozenset[str]]]:
    """Calls of static functions in one body, with the locks held around each and the
    locks released on some line before it."""
    out: list[tuple[str, int, frozenset[str], frozenset[str]]] = []
    body = text[f.start:f.end]
    if not _LOCKISH.search(body):
        # Nothing is taken here (most bodies): every call site holds nothing.
        at, counted = f.first_line, 0
        for m in CALL.finditer(body):
            if m.group(1) in statics and not body[max(0, m.start() - 2):m.start()].endswith(("->", ".")):
                at += body.count("\n", counted, m.start())
                counted = m.start()
                out.append((m.group(1), at, frozenset(), frozenset()))
        return out
    for site in calls_with_holds(body, k):
        if site.name in statics and not site.through_pointer:
            args = args_at(site.line, site.match.end())
            out.append((site.name, f.first_line + site.row,
                        frozenset(f"{h.call} {_in_callee(h.key, args)}" for h in site.held), site.released))
    return out


def _closed(text: str, functions: list[_Function], sites: _Sites) -> set[str]:
    """The static functions with call sites whose every mention is accounted for: the
    definition, a prototype, or a call the scan read. Anything else (the name in an
    initializer, as an argument, in a macro) means callers the file does not show."""
    starts = [f.start for f in functions]
    ends = [f.end for f in functions]
    calls: dict[str, int] = {}
    escaped: set[str] = set()
    for m in _IDENT.finditer(text):
        name = m.group()
        if name not in sites or name in escaped:
            continue
        at = bisect.bisect_right(starts, m.start()) - 1
        inside = at >= 0 and m.start() < ends[at]
        call = text.startswith("(", m.end()) or text[m.end():m.end() + 8].lstrip().startswith("(")
        if inside and call and text[max(0, m.start() - 2):m.start()].rstrip()[-1:] not in ("&", ">", "."):
            calls[name] = calls.get(name, 0) + 1
            continue
        line_start = text.rfind("\n", 0, m.start()) + 1
        if not inside and call and text[line_start:line_start + 1].strip() \
                and not text.startswith("#", line_start) and not text.endswith("\\\n", 0, line_start):
            continue  # the definition or a prototype (kernel style: from column 0)
        escaped.add(name)
    return {name for name in sites if name not in escaped and calls.get(name) == len(sites[name])}


def _in_callee(key: str, args: list[str]) -> str:
    """A caller's lock in the callee's terms: ``&lruvec->lru_lock`` held around
    ``move_folios_to_lru(lruvec, &list)`` is ``@0->lru_lock``, the same field of the
    callee's first parameter. A global lock keeps its name; any other expression stays the
    caller's (``&khd->lock`` where ``khd`` is not passed: held, but no lock of the callee)."""
    if not key or is_global(key):
        return key
    m = re.match(r"&?\s*([A-Za-z_]\w*)(.*)$", key)
    if m is None or not m.group(2):
        return key
    for index, arg in enumerate(args):
        if normalize(arg) == m.group(1):
            return f"{PARAM}{index}{m.group(2)}"
    return key
