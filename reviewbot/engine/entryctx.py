"""The context a function is entered in (the ``context`` walk's first state, :mod:`context`).

A function that asserts its caller's lock (``lockdep_assert_held(&l)``, ``_write``,
``_read``; ``lockdep_assert_irqs_disabled()``, ``lockdep_assert_preemption_disabled()``)
as an unconditional statement of its body, that is annotated ``__must_hold(l)``, or whose
kerneldoc says so (``Context: Must be called with l held`` / ``with interrupts disabled``
/ ``preemption disabled`` / ``under rcu_read_lock()``) runs with that held from its first
line: a blocking call there is sleeping in atomic context, a ``spin_lock_irq()`` pair
re-enables interrupts its caller keeps off.

The kind of an asserted lock is what the function's file takes it with (``spin_lock_irq
(&l)`` everywhere: a spinlock held with interrupts off; also by field name, ``&pn->lock``
for ``&mz->lock``); a lock the file never takes is left out (its kind is unknown). A held
entry is the caller's: never reported as leaked, and its ``Held.call`` carries the reason
(:func:`entry_reason`) that a finding shows.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from reviewbot.engine.callerctx import (
    ASSERTED,
    PARAM,
    PERCPU_RELEASE,
    CallerContext,
    caller_context_of,
    is_global,
    members_of,
)
from reviewbot.engine.cfunc import FunctionView
from reviewbot.engine.csource import HOLD_MARKER
from reviewbot.engine.refspec import normalize
from reviewbot.engine.refstate import Held
from reviewbot.engine.uses import parameter_list
from reviewbot.facts.knowledge import Knowledge
from reviewbot.facts.tables import Facts

if TYPE_CHECKING:
    from reviewbot.engine.context import ContextAnalysis

__all__ = ["ENTRY_PREFIX", "STATED_PREFIX", "asserted_on_rt", "entry_hint", "entry_holds", "entry_reason",
           "in_interrupt_entry", "taken_by"]

ENTRY_PREFIX = "@entry:"  # asserted by the body (lockdep checks it on every kernel)
STATED_PREFIX = "@entry-doc:"  # stated by an annotation or the kerneldoc
_ASSERT_HELD = re.compile(r"^lockdep_assert_held(_write|_read|_once)?$")
_ASSERT_SECTION = {"lockdep_assert_irqs_disabled": "irq", "lockdep_assert_preemption_disabled": "preempt",
                   "lockdep_assert_in_rcu_read_lock": "rcu"}
# A sentence of the comment above a function that states its entry context.
_STATES = re.compile(r"context:|\b(?:must|should) be called\b|\bcalled with\b|\bcaller\s+(?:must\s+)?holds?\b|"
                     r"\bmust be held\b|\bexpects?\b|\brequires?\b", re.IGNORECASE)
_STATED_WORDS = re.compile(r"held|locked|taken|disabled|rcu|irqs?[- ]?off", re.IGNORECASE)
_HEDGED = re.compile(r"\b(?:not|can|may|might|or|either|without|unless|if)\b", re.IGNORECASE)
_IRQ_OFF = re.compile(r"\b(?:irqs?|interrupts?)\s+(?:are\s+|being\s+)?disabled\b|\birqs?[- ]?off\b|"
                      r"\birq-disabled\b", re.IGNORECASE)
_PREEMPT_OFF = re.compile(r"\bpreempt(?:ion)?\s+(?:is\s+)?disabled\b", re.IGNORECASE)
_RCU = re.compile(r"\b(?:under|within|holding|with)\s+(?:the\s+)?rcu_read_lock\b|"
                  r"\brcu[_ ]read[_ ]lock(?:\(\))?\s+held\b|\bin an? rcu read(?:-side)? (?:critical )?section\b",
                  re.IGNORECASE)
_LOCK_NAME = r"(&?[A-Za-z_][\w>.\-]*?)(?:\(\))?"
_HELD_LOCK = (
    re.compile(r"\b(?:with|holding|under)\s+(?:the\s+)?" + _LOCK_NAME + r"\s+(?:held|locked|taken)\b", re.IGNORECASE),
    re.compile(r"\b" + _LOCK_NAME + r"\s+(?:must be|is|to be)\s+(?:held|locked)\b", re.IGNORECASE),
    re.compile(r"\bcaller\s+(?:must\s+)?holds?\s+(?:the\s+)?" + _LOCK_NAME + r"(?=[\s.,;]|$)", re.IGNORECASE),
)
_GENERIC = {"lock", "the", "a", "it", "this", "that", "locks", "mutex", "spinlock", "lru", "irq", "rcu_read_lock"}
# First argument of a call (up to a comma or the closing parenthesis).
_FILE_CALL = re.compile(r"\b([a-z_]+)\s*\(\s*([^,;()]+(?:\([^()]*\))?[^,;()]*?)\s*[,)]")
_LOCK_WORD = re.compile(r"lock|down")
# (kind, irq off, shared) -> the primitive a held entry is recorded as
_PRIMITIVE = {
    ("spinlock", False, False): "spin_lock", ("spinlock", True, False): "spin_lock_irq",
    ("raw_spinlock", False, False): "raw_spin_lock", ("raw_spinlock", True, False): "raw_spin_lock_irq",
    ("rwlock", False, False): "write_lock", ("rwlock", True, False): "write_lock_irq",
    ("rwlock", False, True): "read_lock", ("rwlock", True, True): "read_lock_irq",
    ("mutex", False, False): "mutex_lock", ("rwsem", False, False): "down_write",
    ("rwsem", False, True): "down_read",
}
_WHAT = {"irq": "irq-disabled section", "preempt": "preempt-disabled section", "rcu": "RCU read section",
         "bh": "softirq context"}
_SECTION = {"irq": "local_irq_disable", "preempt": "preempt_disable", "rcu": "rcu_read_lock",
            "bh": "local_bh_disable"}
# A static function the kernel calls back from softirq (or timer interrupt) context, by
# its signature: an RCU callback gets its struct rcu_head, a timer or tasklet callback its
# timer_list or tasklet_struct, an hrtimer callback its hrtimer (interrupt context, or
# softirq in the _SOFT modes). Nothing there may sleep (Documentation/RCU/checklist.rst:
# "RCU callbacks ... are executed in softirq context").
_ASYNC_CALLBACK = re.compile(
    r"^\s*static\s+(?:inline\s+)?(?:(?P<hr>enum\s+hrtimer_restart)|void)\s+\w+\s*\(\s*"
    r"struct\s+(?P<type>rcu_head|timer_list|tasklet_struct|hrtimer)\s*\*\s*\w+\s*\)")
_CALLBACK_OF = {"rcu_head": "an RCU callback", "timer_list": "a timer callback",
                "tasklet_struct": "a tasklet", "hrtimer": "an hrtimer callback",
                "percpu_ref": "a percpu_ref release callback"}


def entry_hint(view: FunctionView, text: str, facts: Facts, k: Knowledge) -> bool:
    """Whether the function may state an entry context (a cheap test before the walk)."""
    return "lockdep_assert_" in text or bool(_STATED_WORDS.search(_comment(view))) \
        or _async_callback(view) is not None or _percpu_release(view) \
        or "/*HLD " in _header(view) \
        or bool(facts.callback_context(view.name)) or _callers_of(view, k) is not None \
        or any(facts.ops_entry(m) for m in members_of(view.text_lines).get(view.name, ()))


def entry_reason(held: Held) -> str | None:
    """How a finding names an entry hold ("the caller's css_set_lock (lockdep_assert_held()
    at line 12)"), or None for a lock taken in the function."""
    for prefix in (ENTRY_PREFIX, STATED_PREFIX):
        if held.call.startswith(prefix):
            return held.call[len(prefix):]
    return None


def asserted_on_rt(held: Held) -> bool:
    """Whether a hold is one PREEMPT_RT keeps too: not a kerneldoc's "interrupts disabled"
    next to a spinlock_t, which on RT neither disables interrupts nor preemption."""
    return not held.call.startswith(STATED_PREFIX)


def taken_by(held: Held) -> str:
    """``spin_lock() at line 12``, or ``the caller's css_set_lock (lockdep_assert_held() ...)``."""
    reason = entry_reason(held)
    return reason if reason is not None else f"{held.call}() at line {held.line}"


def entry_holds(a: ContextAnalysis) -> tuple[Held, ...]:
    """What the function holds on entry, from its own assertions, annotations and doc."""
    view, k = a.view, a.k
    out: dict[tuple[str, str], Held] = {}
    first = view.line(view.node) or 0
    body = view.node.child_by_field_name("body")
    file_locks: dict[str, set[str]] | None = None

    def lock(key: str, mode: str, line: int, why: str, prefix: str = ENTRY_PREFIX) -> None:
        nonlocal file_locks
        if file_locks is None:
            file_locks = _file_locks(view, k)
        prim = _lock_kind(key, mode, file_locks, k)
        pair = a.pair_of_call.get(prim) if prim else None
        if pair is not None:
            out.setdefault((key, pair), Held(key, pair, line, f"{prefix}{why}", False))

    def section(kind: str, line: int, why: str, prefix: str = ENTRY_PREFIX) -> None:
        pair = a.pair_of_call.get(_SECTION[kind])
        if pair is not None and not _ends_itself(a, kind):
            out.setdefault(("", pair), Held("", pair, line, f"{prefix}{why}", False))

    if body is not None:
        for stmt in body.named_children:
            if stmt.type != "expression_statement" or not stmt.named_children \
                    or stmt.named_children[0].type != "call_expression":
                continue  # only an unconditional assertion states the entry context
            call = stmt.named_children[0]
            name = a.name_of(call)
            line = a.line(call) or first
            m = _ASSERT_HELD.match(name)
            args = a.args_of(call)
            if m and args:
                key = a.key(args[0])
                lock(key, (m.group(1) or "").strip("_"), line,
                     f"the caller's {key} ({name}() at line {line})")
            elif name in _ASSERT_SECTION:
                kind = _ASSERT_SECTION[name]
                section(kind, line, f"the caller's {_WHAT[kind]} ({name}() at line {line})")
    callback = _async_callback(view)
    if callback is None and _percpu_release(view):
        callback = "percpu_ref"
    if callback is not None:
        why = (f"{view.name}() is the release of a percpu_ref_init() in its file, which "
               f"percpu_ref_kill() may call from an RCU callback") if callback == "percpu_ref" else \
            f"{view.name}() takes a struct {callback} *: the kernel calls it from softirq or interrupt context"
        section("bh", first, f"{_CALLBACK_REASON}{_CALLBACK_OF[callback]} ({why})", STATED_PREFIX)
    for raw in HOLD_MARKER.findall(_header(view)):
        key = a.alias.find(normalize(raw.strip()))
        lock(key, "", first, f"the caller's {key} (__must_hold() on {view.name}())", STATED_PREFIX)
    _callback(a, first, out)
    _callers(a, first, out)
    _member(a, first, out)
    for sentence in _sentences(_comment(view)):
        if not _STATES.search(sentence) or _HEDGED.search(sentence):
            continue
        said = f"kerneldoc of {view.name}(): \"{sentence.strip()[:80]}\""
        for kind, pattern in (("irq", _IRQ_OFF), ("preempt", _PREEMPT_OFF), ("rcu", _RCU)):
            if pattern.search(sentence):
                section(kind, first, f"the caller's {_WHAT[kind]} ({said})", STATED_PREFIX)
        for pattern in _HELD_LOCK:
            for m in pattern.finditer(sentence):
                name = m.group(1).lstrip("&")
                if name.lower() in _GENERIC or name.lower().endswith("_read_lock"):
                    continue
                key = a.alias.find(normalize(m.group(1)))
                lock(key, "", first, f"the caller's {key} ({said})", STATED_PREFIX)
    return tuple(out.values())


def _callback(a: ContextAnalysis, first: int, out: dict[tuple[str, str], Held]) -> None:
    """A function the tree passes as a callback that its caller runs under a lock or with
    interrupts off (facts/callbacks.py): "runs as the prfill callback of
    blkcg_print_blkgs(), which holds queue_lock with IRQs disabled"."""
    found = a.facts.callback_context(a.view.name)
    if len(found) < 4 or (found[2] and found[2] != a.view.file):
        return  # none, or a static of another file that has this name
    caller, param, _, *held = found
    shown = []
    for item in held:
        call, _, key = item.partition(" ")
        got = a.k.lock_for(call)
        what = key.rsplit("->", 1)[-1].rsplit(".", 1)[-1] if key else f"{call}()"
        irq = " with IRQs disabled" if got is not None and got[0].irq else ""
        shown.append(f"{what}{irq}" if key else what)
    why = f"runs as the {param} callback of {caller}(), which holds {' and '.join(shown)}"
    for item in held:
        call, _, key = item.partition(" ")
        pair = a.pair_of_call.get(call)
        if pair is None:
            continue
        # The caller's object, not one of this function's expressions: a global lock
        # keeps its name (taking it again is a self-deadlock); others are only held.
        own = key if key and re.fullmatch(r"\w+", key) else f"{caller}():{key}" if key else ""
        label = key.rsplit("->", 1)[-1].rsplit(".", 1)[-1] if key else f"{call}() section"
        out.setdefault((own, pair), Held(own, pair, first, f"{ENTRY_PREFIX}{label} of {caller}() "
                                         f"({a.view.name}() {why})", False))


def _callers_of(view: FunctionView, k: Knowledge) -> CallerContext | None:
    """What every caller of the function in its file holds (engine/callerctx.py): only from
    a whole file, never from the lines a few hunks show (they show some callers, not all)."""
    if (view.partial and not view.shown) or not _STATIC.match(_header(view)):
        return None  # (only a static function has all its callers in the file)
    return caller_context_of(view.text_lines, k, view.name)


def _callers(a: ContextAnalysis, first: int, out: dict[tuple[str, str], Held]) -> None:
    """What every caller in the file holds (engine/callerctx.py): "css_set_lock, held by
    every caller of css_set_move_task() (cgroup_migrate_execute() at line 2654, and 2
    more)"."""
    found = _callers_of(a.view, a.k)
    if found is None:
        return
    more = f", and {found.sites - 1} more" if found.sites > 1 else ""
    where = f"{found.caller}() at line {found.line}{more}"
    file_locks: dict[str, set[str]] | None = None
    for item in found.items:
        call, _, key = item.partition(" ")
        if call == ASSERTED:
            if file_locks is None:
                file_locks = _file_locks(a.view, a.k)
            prim = _lock_kind(key, "", file_locks, a.k)
            if prim is None:
                continue
            call = prim
        pair = a.pair_of_call.get(call)
        if pair is None or (not key and _manages(a, call)):
            continue
        # A global lock keeps its name (taking it again is a self-deadlock); the callers'
        # own expressions (`&memcg->move_lock`) are only held.
        own = _own_key(a, key, found.caller)
        label = (key.lstrip("&") if is_global(key) else key.rsplit("->", 1)[-1].rsplit(".", 1)[-1]) if key \
            else f"{call}() section"
        out.setdefault((own, pair), Held(own, pair, first, f"{ENTRY_PREFIX}{label}, held by every caller of "
                                         f"{a.view.name}() ({where})", False))


def _member(a: ContextAnalysis, first: int, out: dict[tuple[str, str], Held]) -> None:
    """What every call of an ops member the function implements holds (facts/opscontext.py):
    a ``.css_offline = cpuset_css_offline`` initializer in the file (the patch's own too)
    makes the function run under the ``cgroup_mutex`` ``offline_css()`` holds around
    ``ss->css_offline(css)``."""
    for member in members_of(a.view.text_lines).get(a.view.name, ()):
        found = a.facts.ops_entry(member)
        if len(found) < 3:
            continue
        dispatcher, _, *items = found
        where = f"every call of {member.replace('.', '->', 1).split('->', 1)[-1]}() of struct " \
            f"{member.split('.', 1)[0]}, which {a.view.name}() implements ({dispatcher}())"
        for item in items:
            call, _, key = item.partition(" ")
            pair = a.pair_of_call.get(call)
            if pair is None or (not key and _manages(a, call)):
                continue
            own = key if not key or is_global(key) else f"{dispatcher}():{key}"
            label = key.lstrip("&") if key and is_global(key) else f"{call}() section"
            out.setdefault((own, pair), Held(own, pair, first, f"{ENTRY_PREFIX}{label}, held by {where}", False))


def _manages(a: ContextAnalysis, call: str) -> bool:
    """The function ends a section of that kind itself (SLAB's ``cache_grow_begin()``
    enables interrupts its callers disabled when it may block, and disables them again):
    what its callers hold is then no fact about its body."""
    got = a.k.lock_for(call)
    if got is None:
        return False
    kind = got[0].kind
    for c in a.calls_of(a.view.node):
        found = a.k.lock_for(a.name_of(c))
        if found is not None and found[1] == "release" and found[0].kind == kind:
            return True
    return False


def _own_key(a: ContextAnalysis, key: str, caller: str) -> str:
    """A caller's lock as this function names it: a global by its name, ``@0->lru_lock``
    as the same field of its first parameter; the callers' other expressions
    (``&khd->lock``) are only held: no lock of this function is that one."""
    if not key or is_global(key):
        return key
    m = re.match(re.escape(PARAM) + r"(\d+)(.*)$", key)
    if m is not None:
        params = parameter_list(a.view.node)
        index = int(m.group(1))
        if index < len(params) and params[index]:
            return a.alias.find(normalize(params[index] + m.group(2)))
    return f"{caller}():{key}"


# What ends a section, in the name of a call kernel.yaml does not list as its release
# (`sched_preempt_enable_no_resched()`, `local_irq_enable_in_hardirq()`).
_ENDS = {"irq": re.compile(r"irq_(?:enable|restore)"), "preempt": re.compile(r"preempt_enable"),
         "rcu": re.compile(r"rcu_read_unlock"), "bh": re.compile(r"bh_enable")}


def _ends_itself(a: ContextAnalysis, kind: str) -> bool:
    """The function ends the caller's section by a call the walk would not see as its
    release: it manages the section itself (schedule_preempt_disabled() enables
    preemption, schedules and disables it again); no entry context then."""
    return any(_ENDS[kind].search(name) and a.k.lock_for(name) is None
               for name in (a.name_of(c) for c in a.calls_of(a.view.node)))


def _async_callback(view: FunctionView) -> str | None:
    """The struct type of a softirq or timer callback's only parameter, else None."""
    m = _ASYNC_CALLBACK.match(" ".join(_header(view).split()))
    if m is None or (m.group("type") == "hrtimer") != bool(m.group("hr")):
        return None
    return m.group("type")


def _percpu_release(view: FunctionView) -> bool:
    """Whether the function's file passes it to percpu_ref_init() as the release callback:
    "@release must not sleep - it may potentially be called from RCU callback context by
    percpu_ref_kill()" (lib/percpu-refcount.c)."""
    return PERCPU_RELEASE in members_of(view.text_lines).get(view.name, ())


_CALLBACK_REASON = "the atomic context of "


def in_interrupt_entry(held: Held) -> bool:
    """Whether a hold is a callback's softirq or interrupt context (in_interrupt() is
    true there), not a lock or a section the code took."""
    return held.call.startswith(STATED_PREFIX + _CALLBACK_REASON)


_STATIC = re.compile(r"\s*(?:\w+\s+)*?static\b")


def _header(view: FunctionView) -> str:
    body = view.node.child_by_field_name("body")
    end = body.start_point[0] if body is not None else view.node.start_point[0]
    return "\n".join(view.text_lines[view.first_row:end + 1])


def _comment(view: FunctionView) -> str:
    """The block comment right above the function (its kerneldoc), or ""."""
    if "memo_comment" in view.memo:
        return str(view.memo["memo_comment"])
    rows = view.text_lines
    row = view.first_row - 1
    found = ""
    if 0 <= row < len(rows) and rows[row].rstrip().endswith("*/"):
        start = row
        while start >= 0 and row - start < 80 and "/*" not in rows[start]:
            start -= 1
        if start >= 0 and "/*" in rows[start]:
            found = "\n".join(rows[start:row + 1])
    view.memo["memo_comment"] = found
    return found


def _sentences(comment: str) -> list[str]:
    """The comment's text in sentences (a kerneldoc section line ends one too)."""
    text = "\n".join(re.sub(r"^\s*(?:/\*\*?|\*/|\*)?\s?", "", ln).rstrip("*/ ") for ln in comment.split("\n"))
    parts = re.split(r"(?<=[.;])\s+|\n\s*\n|\n(?=\s*[A-Z][\w ]*:)", text)
    return [" ".join(p.split()) for p in parts if p.strip()]


def _file_locks(view: FunctionView, k: Knowledge) -> dict[str, set[str]]:
    """Lock expression (normalized) -> the lock primitives the file takes it with."""
    cached = view.memo.get("memo_file_locks")
    if isinstance(cached, dict):
        return cached
    found: dict[str, set[str]] = {}
    text = "\n".join(view.text_lines)
    for m in _file_lock_calls(text):
        got = k.lock_for(m.group(1))
        if got is not None and got[1] == "acquire" and not got[0].keyless:
            found.setdefault(normalize(m.group(2)), set()).add(m.group(1))
    view.memo["memo_file_locks"] = found
    return found


def _file_lock_calls(text: str) -> list[re.Match[str]]:
    """What ``_FILE_CALL.finditer(text)`` gives in the statements with "lock" or "down" in
    them (every keyed lock primitive of kernel.yaml has one in its name), read only there:
    the pattern tried at every word of a file took milliseconds. A match holds no ";", so
    the scan of the whole text is, after each ";", where a scan started there is."""
    out: list[re.Match[str]] = []
    read: set[int] = set()
    for hit in _LOCK_WORD.finditer(text):
        start = text.rfind(";", 0, hit.start()) + 1
        if start in read:
            continue
        read.add(start)
        end = text.find(";", hit.end())
        out.extend(_FILE_CALL.finditer(text, start, len(text) if end < 0 else end))
    return out


def _lock_kind(key: str, mode: str, file_locks: dict[str, set[str]], k: Knowledge) -> str | None:
    """The primitive a lock held on entry stands for: its kind as the file takes it, with
    interrupts off when every acquisition disables them; a reader-writer lock asserted
    without saying which side is taken as read (nesting a reader is no self-deadlock)."""
    prims = file_locks.get(key)
    if not prims:
        field = re.split(r"->|\.", key)[-1]
        prims = {p for expr, ps in file_locks.items()
                 if re.split(r"->|\.", expr)[-1] == field and ("->" in expr or "." in expr)
                 for p in ps}
    specs = [got[0] for p in sorted(prims or ()) if (got := k.lock_for(p)) is not None]
    kinds = {s.kind for s in specs}
    if len(kinds) != 1:
        return None  # never taken in the file (kind unknown), or taken as different kinds
    kind = kinds.pop()
    irq = all(s.irq for s in specs)
    rw = kind in ("rwlock", "rwsem")
    return _PRIMITIVE.get((kind, irq and kind not in ("mutex", "rwsem"), rw and mode != "write"))
