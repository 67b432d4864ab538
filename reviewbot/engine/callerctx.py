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
from collections.abc import Callable
from dataclasses import dataclass

from reviewbot.engine.refspec import normalize
from reviewbot.facts.extract import CALL, args_at, blank_comments, function_bodies
from reviewbot.facts.heldlines import calls_with_holds
from reviewbot.facts.knowledge import Knowledge
from reviewbot.facts.opscontext import ASSERTED, meet, site_key
from reviewbot.facts.opsfacts import OpsScan

__all__ = ["ASSERTED", "PARAM", "CallerContext", "caller_context", "caller_context_of", "is_global", "members_of"]

PARAM = "@"  # a key "@0->lru_lock": that field of the callee's first parameter
_MAX_TEXT = 3_000_000  # characters: a bound on the scan (memcontrol.c is 250k)
_MAX_ROUNDS = 8
_ASSERT = re.compile(r"^\tlockdep_assert_held(?:_write|_read|_once)?\s*\(\s*([^;]*?)\s*\)\s*;", re.MULTILINE)
_WORD = re.compile(r"\w")
# A body without any of these takes no lock a call site could hold (kernel.yaml's lock
# primitives all have one in their name: spin_lock, mutex_lock, down_read, rcu_read_lock,
# local_irq_disable, preempt_disable, ...; a helper that keeps a lock is not followed).
_LOCKISH = re.compile(r"lock|down_|irq|preempt|_bh|get_cpu|seqcount")
_GLOBAL = re.compile(r"&?\s*[A-Za-z_]\w*")
# Callee -> its call sites: (caller index, line, items held, keys released before).
_Sites = dict[str, list[tuple[int, int, frozenset[str], frozenset[str]]]]
# Files scanned, keyed by the identity of their line list (kept alive by the entry).
_CACHE: dict[int, tuple[list[str], _FileIndex]] = {}
_CACHE_SIZE = 32  # (a scan reads a post-image and a base per touched file)


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
    index = _index(text_lines, k)
    index.solve(set(index.statics), every_body=True)
    return {name: found for name in sorted(index.statics)
            if (found := index.context_of(name)) is not None}


def caller_context_of(text_lines: list[str], k: Knowledge, name: str) -> CallerContext | None:
    """What every caller of one static function of the file holds, or None: the same as
    ``caller_context(...).get(name)``, reading only the callers it goes back through (a
    rules run asks for a few functions of files of thousands of lines)."""
    return _index(text_lines, k).context_of(name)


def _index(text_lines: list[str], k: Knowledge) -> _FileIndex:
    hit = _CACHE.get(id(text_lines))
    if hit is not None and hit[0] is text_lines:
        return hit[1]
    text, stretches = _source(text_lines)
    found = _FileIndex(text if len(text) <= _MAX_TEXT else "", k, stretches)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[id(text_lines)] = (text_lines, found)
    return found


_MEMBERS: dict[int, tuple[list[str], dict[str, list[str]]]] = {}
# `percpu_ref_init(&css->refcnt, css_release, 0, GFP_KERNEL)` stores a function as a
# percpu_ref's release callback, as an initializer stores it in an ops member.
PERCPU_RELEASE = "percpu_ref.release"
# (A literal first: the regex engine then skips to each occurrence.)
_PERCPU_RELEASE = re.compile(r"percpu_ref_init\s*\(\s*[^,;]+,\s*(\w+)\s*,")


def members_of(text_lines: list[str]) -> dict[str, list[str]]:
    """Function -> the ops members ("cgroup_subsys.css_offline") the file's designated
    initializers store it in (``.css_offline = cpuset_css_offline``)."""
    hit = _MEMBERS.get(id(text_lines))
    if hit is not None and hit[0] is text_lines:
        return hit[1]
    text, stretches = _source(text_lines)
    out: dict[str, list[str]] = {}
    if len(text) <= _MAX_TEXT and "= {" in text:
        for fn, member in _initializers(stretches):
            out.setdefault(fn, []).append(member)
    if len(text) <= _MAX_TEXT and "percpu_ref_init" in text:
        for m in _PERCPU_RELEASE.finditer(text):
            if not m.start() or not _WORD.match(text, m.start() - 1):
                out.setdefault(m.group(1), []).append(PERCPU_RELEASE)
    if len(_MEMBERS) >= _CACHE_SIZE:
        _MEMBERS.pop(next(iter(_MEMBERS)))
    _MEMBERS[id(text_lines)] = (text_lines, out)
    return out


_SOURCES: dict[int, tuple[list[str], str, list[tuple[int, str]]]] = {}


def _source(text_lines: list[str]) -> tuple[str, list[tuple[int, str]]]:
    """A file's text and its stretches (:func:`_stretches`), once per line list: both the
    ops members and the callers' contexts read them."""
    hit = _SOURCES.get(id(text_lines))
    if hit is not None and hit[0] is text_lines:
        return hit[1], hit[2]
    text = "\n".join(text_lines)
    stretches = _stretches(text) if len(text) <= _MAX_TEXT else []
    if len(_SOURCES) >= _CACHE_SIZE:
        _SOURCES.pop(next(iter(_SOURCES)))
    _SOURCES[id(text_lines)] = (text_lines, text, stretches)
    return text, stretches


_INITS: dict[str, list[tuple[str, str]]] = {}  # stretch -> (function, member), as _STRETCHES


def _initializers(stretches: list[tuple[int, str]]) -> list[tuple[str, str]]:
    """(function, "struct.member") of the designated initializers of a source (one with
    a `= {` somewhere: OpsScan.add_initializers()'s quick test is the caller's), read
    stretch by stretch (an initializer ends with its "};" line, as a body with its "}"):
    a post-image shares all but a few stretches with its base file."""
    out: list[tuple[str, str]] = []
    for _, stretch in stretches:
        found = _INITS.get(stretch)
        if found is None:
            scan = OpsScan()
            scan.scan_initializers("\n" + stretch, "")
            found = [(fn, member) for member, impls in scan.inits.items() for fn, _ in impls]
            if len(_INITS) >= 50_000:
                _INITS.clear()
            _INITS[stretch] = found
        out.extend(found)
    return out


def _stretches(text: str) -> list[tuple[int, str]]:
    """(offset, stretch) of the text cut after each line that starts with ``}``."""
    out: list[tuple[int, str]] = []
    pos, size = 0, len(text)
    while pos < size:
        close = text.find("\n}", pos)
        newline = text.find("\n", close + 2) if close >= 0 else -1
        end = size if newline < 0 else newline + 1
        out.append((pos, text[pos:end]))
        pos = end
    return out


@dataclass
class _Function:
    name: str
    static: bool
    start: int  # offset of the body in the text
    end: int
    first_line: int  # 1-based line of the body's first character
    asserted: frozenset[str]


_MAX_CALLERS = 200  # functions followed back from one callee (a file has a few thousand)


class _FileIndex:
    """A file's function bodies, found once; the caller contexts asked of it, each worked
    out over the callers (and their callers) of that function only."""

    def __init__(self, raw: str, k: Knowledge, stretches: list[tuple[int, str]] | None = None) -> None:
        self.k = k
        self.text, self.functions = _read_source(raw, stretches) if raw else ("", [])
        self.statics = {f.name for f in self.functions if f.static}
        self._starts = [f.start for f in self.functions]
        self._sites: _Sites = {}  # callee -> its call sites, for the callees asked about so far
        self._read: set[int] = set()  # bodies whose call sites are in _sites
        self._answers: dict[str, CallerContext | None] = {}
        self._mentions: dict[str, list[int]] = {}

    def context_of(self, name: str) -> CallerContext | None:
        if name in self._answers:
            return self._answers[name]
        if name not in self.statics:
            return None
        # The static functions whose entry context this one's depends on: its callers,
        # their callers, ... (the fixpoint of the whole file restricted to them gives the
        # same answer, since nothing else reaches their call sites).
        wanted, todo = {name}, [name]
        while todo and len(wanted) <= _MAX_CALLERS:
            for index in self._callers(todo.pop()):
                who = self.functions[index].name
                if who in self.statics and who not in wanted:
                    wanted.add(who)
                    todo.append(who)
        self.solve(wanted)
        return self._answers.setdefault(name, None)

    def solve(self, wanted: set[str], every_body: bool = False) -> None:
        """The contexts of ``wanted``: static functions, with every caller of each among
        them (``every_body``: read all bodies rather than look for the callers')."""
        bodies = set(range(len(self.functions))) if every_body or len(wanted) > _MAX_CALLERS \
            else {i for n in wanted for i in self._callers(n)}
        for index in sorted(bodies - self._read):
            for callee, line, held, released in _calls_held(self.text, self.functions[index], self.statics, self.k):
                self._sites.setdefault(callee, []).append((index, line, held, released))
            self._read.add(index)
        sites = {n: sorted(self._sites.get(n, []), key=lambda site: site[:2]) for n in wanted}
        sites = {n: v for n, v in sites.items() if v}
        closed = _closed(self.text, self.functions, sites, self.mentions)
        entry: dict[str, frozenset[str] | None] = {n: None for n in closed}
        for _ in range(_MAX_ROUNDS):
            changed = False
            for callee in sorted(closed):
                got: frozenset[str] | None = None
                for index, _, held, released in sites[callee]:
                    caller = self.functions[index]
                    outer = entry.get(caller.name) if caller.name in closed else frozenset()
                    if outer is None:
                        continue  # not known yet (or only recursion): no constraint
                    # The caller's own entry context, unless it dropped that lock before the call.
                    here = held | {i for i in caller.asserted | outer if site_key(i, self.k) not in released}
                    got = here if got is None else meet(got, here, self.k)
                if got != entry[callee]:
                    entry[callee], changed = got, True
            if not changed:
                break
        for callee, items in entry.items():
            found = None
            if items:
                index, line, _, _ = sites[callee][0]
                found = CallerContext(tuple(sorted(items)), self.functions[index].name, line, len(sites[callee]))
            self._answers.setdefault(callee, found)
        for callee in wanted:
            self._answers.setdefault(callee, None)

    def _callers(self, name: str) -> set[int]:
        """Indexes of the bodies that mention ``name`` followed by ``(``."""
        out = set()
        text, end = self.text, len(name)
        for at in self.mentions(name):
            after = at + end
            if text.startswith("(", after) or text[after:after + 8].lstrip().startswith("("):
                index = bisect.bisect_right(self._starts, at) - 1
                if index >= 0 and at < self.functions[index].end:
                    out.add(index)
        return out

    def mentions(self, name: str) -> list[int]:
        """Where the identifier ``name`` occurs in the text (each name once, when asked)."""
        found = self._mentions.get(name)
        if found is None:
            found = self._mentions[name] = []
            text, at, size = self.text, self.text.find(name), len(name)
            while at >= 0:
                if (at == 0 or not _WORD.match(text, at - 1)) and not _WORD.match(text, at + size):
                    found.append(at)
                at = text.find(name, at + size)
        return found


# Function bodies of a stretch of source (see _bodies), by its text: a patch's post-image
# shares all but a few stretches with its base file, which was read already.
_Body = tuple[str, bool, int, int, frozenset[str]]
_STRETCHES: dict[str, list[_Body]] = {}
_STRETCH_CHARS = 16_000_000  # a bound on what the cache keeps (memcontrol.c is 250k)
_stretch_chars = 0


def _bodies(text: str) -> list[_Body]:
    """(name, static, start, end, lockdep assertions) of each function body of a source
    whose comments are blanked: function_bodies(), read stretch by stretch. A stretch ends
    with a line that starts with ``}``; a body never holds such a line but its last, so
    every body lies in one stretch, and the scan of a stretch finds what the scan of the
    whole text finds there (tests/engine/test_callerctx.py compares them)."""
    global _stretch_chars
    out: list[_Body] = []
    for pos, stretch in _stretches(text):
        found = _STRETCHES.get(stretch)
        if found is None:
            found = [(name, static, start, start + len(body), _asserted(body))
                     for name, static, start, body in function_bodies(stretch, params=False)]
            if _stretch_chars + len(stretch) > _STRETCH_CHARS:
                _STRETCHES.clear()
                _stretch_chars = 0
            _STRETCHES[stretch] = found
            _stretch_chars += len(stretch)
        out.extend((name, static, pos + start, pos + stop, asserted)
                   for name, static, start, stop, asserted in found)
    return out


# A stretch of raw source (see _stretches) -> its text with comments blanked, its bodies
# (name, static, start, end, assertions, newlines before the start) and its newlines.
_Unit = tuple[str, list[tuple[str, bool, int, int, frozenset[str], int]], int]
_UNITS: dict[str, _Unit] = {}
_unit_chars = 0


def _read_source(raw: str, stretches: list[tuple[int, str]] | None = None) -> tuple[str, list[_Function]]:
    """A file's text with comments blanked, and its function bodies, as
    :func:`_read_whole` gives them, read stretch by stretch of the raw source and each
    stretch kept: a post-image shares all but a few stretches with its base file, read
    already. Blanking a stretch alone gives what blanking the whole file gives there
    unless a comment runs past the stretch's end, which leaves a "/*" in the blanked
    stretch: such a file is read whole (tests/engine/test_callerctx.py compares them)."""
    global _unit_chars
    parts: list[str] = []
    functions: list[_Function] = []
    pos, line = 0, 1
    for _, stretch in _stretches(raw) if stretches is None else stretches:
        unit = _UNITS.get(stretch)
        if unit is None:
            blanked = blank_comments(stretch)
            if "/*" in blanked:
                return _read_whole(raw)
            unit = (blanked, [(name, static, start, start + len(body), _asserted(body),
                               blanked.count("\n", 0, start))
                              for name, static, start, body in function_bodies(blanked, params=False)],
                    blanked.count("\n"))
            if _unit_chars + len(stretch) > _STRETCH_CHARS:
                _UNITS.clear()
                _unit_chars = 0
            _UNITS[stretch] = unit
            _unit_chars += len(stretch)
        blanked, bodies, newlines = unit
        functions.extend(_Function(name, static, pos + start, pos + end, line + before, asserted)
                         for name, static, start, end, asserted, before in bodies)
        parts.append(blanked)
        pos += len(blanked)
        line += newlines
    return "".join(parts), functions


def _read_whole(raw: str) -> tuple[str, list[_Function]]:
    """The blanked text and the bodies of a whole file (bodies read by :func:`_bodies`)."""
    text = blank_comments(raw)
    functions: list[_Function] = []
    line, counted = 1, 0
    for name, static, start, end, asserted in _bodies(text):
        line += text.count("\n", counted, start)  # (bodies come in order)
        counted = start
        functions.append(_Function(name, static, start, end, line, asserted))
    return text, functions


def _asserted(body: str) -> frozenset[str]:
    if "lockdep_assert_held" not in body:
        return frozenset()
    return frozenset(f"{ASSERTED} {normalize(m.group(1))}" for m in _ASSERT.finditer(body))


def _calls_held(text: str, f: _Function, statics: set[str], k: Knowledge
                ) -> list[tuple[str, int, frozenset[str], frozenset[str]]]:
    """Calls of static functions in one body, with the locks held around each and the
    locks released on some line before it."""
    return [(name, f.first_line + row, held, released)
            for name, row, held, released in _body_calls(text[f.start:f.end], k) if name in statics]


# Calls of one body by its text (see _body_calls): a post-image's bodies are mostly its
# base's, whose call sites were read already.
_BodyCalls = list[tuple[str, int, frozenset[str], frozenset[str]]]
_BODY_CALLS: dict[tuple[str, str], _BodyCalls] = {}
_BODY_CALLS_SIZE = 20_000  # bodies kept (a scan reads a few thousand)


def _body_calls(body: str, k: Knowledge) -> _BodyCalls:
    """(callee, row in the body, held, released before) of each direct call of a body."""
    key = (body, k.digest)  # (what counts as a lock is the knowledge's)
    found = _BODY_CALLS.get(key)
    if found is not None:
        return found
    found = []
    if not _LOCKISH.search(body):
        # Nothing is taken here (most bodies): every call site holds nothing.
        row, counted = 0, 0
        for m in CALL.finditer(body):
            if not body[max(0, m.start() - 2):m.start()].endswith(("->", ".")):
                row += body.count("\n", counted, m.start())
                counted = m.start()
                found.append((m.group(1), row, frozenset(), frozenset()))
    else:
        for site in calls_with_holds(body, k):
            if not site.through_pointer:
                args = args_at(site.line, site.match.end())
                found.append((site.name, site.row,
                              frozenset(f"{h.call} {_in_callee(h.key, args)}" for h in site.held),
                              site.released))
    if len(_BODY_CALLS) >= _BODY_CALLS_SIZE:
        _BODY_CALLS.clear()
    _BODY_CALLS[key] = found
    return found


def _closed(text: str, functions: list[_Function], sites: _Sites,
            mentions: Callable[[str], list[int]]) -> set[str]:
    """The static functions with call sites whose every mention is accounted for: the
    definition, a prototype, or a call the scan read. Anything else (the name in an
    initializer, as an argument, in a macro) means callers the file does not show."""
    starts = [f.start for f in functions]
    ends = [f.end for f in functions]
    out = set()
    for name, found in sites.items():
        calls = 0
        for start in mentions(name):
            end = start + len(name)
            at = bisect.bisect_right(starts, start) - 1
            inside = at >= 0 and start < ends[at]
            call = text.startswith("(", end) or text[end:end + 8].lstrip().startswith("(")
            if inside and call and text[max(0, start - 2):start].rstrip()[-1:] not in ("&", ">", "."):
                calls += 1
                continue
            line_start = text.rfind("\n", 0, start) + 1
            if not inside and call and text[line_start:line_start + 1].strip() \
                    and not text.startswith("#", line_start) and not text.endswith("\\\n", 0, line_start):
                continue  # the definition or a prototype (kernel style: from column 0)
            break  # escaped: callers the file does not show
        else:
            if calls == len(found):
                out.add(name)
    return out


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
