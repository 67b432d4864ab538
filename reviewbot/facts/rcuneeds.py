"""Functions (and macros) that read an RCU-protected pointer their caller must keep alive.

``rcu_dereference(p)`` is only correct inside an RCU read-side critical section; with
CONFIG_PROVE_RCU lockdep checks it ("suspicious rcu_dereference_check() usage",
Documentation/RCU/lockdep.rst). ``rcu_dereference_check(p, c)`` also accepts the contexts
its condition ``c`` names: an update-side lock (``lockdep_is_held(&cgroup_mutex)``),
preemption disabled (``rcu_read_lock_sched_held()``), or the caller's own condition
(a macro parameter). A function whose body does such a read at its top level, and takes
no ``rcu_read_lock()`` of its own, hands that contract to its callers, and so does a
function that calls it the same way: ``task_css()`` -> ``task_css_check()`` ->
``task_css_set_check()`` -> ``rcu_dereference_check(task->cgroups, ...)``,
``mem_cgroup_from_task()`` -> ``task_css()``.

The table is name -> (alternatives, chain). An alternative is a context that serves
instead of ``rcu_read_lock()``: ``"sched"`` (preemption disabled: a spinlock,
``preempt_disable()``, interrupts off), a lock (a global's name, or ``$N->field`` reached
from parameter N), or ``"?N"``, whatever condition the caller passes as argument N. A
condition term the analysis cannot name (``percpu_ref_is_dying(ref)``) may be true in any
caller: that read states no requirement at all. A task's ``PF_EXITING`` term is not an
alternative a caller can rely on: it holds only for the exiting task itself.

Where a name has several definitions (CONFIG_PROVE_RCU's ``task_css_set_check()`` and the
plain one), the most permissive counts: the lockdep condition is the documented contract.
Definitions that read nothing under RCU (a !CONFIG_MEMCG stub) do not count.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from reviewbot.engine.refspec import normalize
from reviewbot.facts.extract import Definition
from reviewbot.facts.knowledge import LockSpec
from reviewbot.facts.locksummary import _rooted, caller_key, substitute
from reviewbot.facts.returnrefs import balanced_parens

__all__ = ["DEPTH", "SCHED", "Need", "call_need", "condition_alternatives", "describe_need", "rcu_needs",
           "rcu_openers"]

DEPTH = 4  # calls from a caller down to the read (task_css() is three)
SCHED = "sched"
Need = tuple[tuple[str, ...], list[str]]  # (alternatives, [callee, ..., primitive])

# A body that takes a read section of its own (or leaves its caller's) decides for itself.
_OWN_SECTION = re.compile(r"^(?:rcu_read_(?:un)?lock(?:_bh|_sched|_trace)?|srcu_read_(?:un)?lock)$")
_HELD = re.compile(r"^(?:lockdep_is_held(?:_type)?)\s*\((&?[^(),]+)(?:,[^()]*)?\)$")
_SCHED_TERMS = re.compile(r"^(?:rcu_read_lock_(?:sched|any|bh)_held|irqs_disabled|"
                          r"lockdep_rtnl_is_held)\s*\(\s*\)$")
_RCU_TERM = re.compile(r"^rcu_read_lock_held\s*\(\s*\)$")
_ASSERTS = re.compile(r"^(?:RCU_LOCKDEP_WARN|WARN_ON(?:_ONCE)?|VM_WARN_ON(?:_ONCE)?|BUG_ON)$")
_EXITING = re.compile(r"->\s*flags\s*&\s*PF_EXITING\b")


def _strip(term: str) -> str:
    term = term.strip()
    while term.startswith("(") and term.endswith(")") and balanced_parens(term[1:-1]):
        term = term[1:-1].strip()
    return term


def _terms(cond: str, op: str) -> list[str]:
    """The top-level terms of a condition joined by ``op`` (``||`` or ``&&``)."""
    terms, depth, start = [], 0, 0
    for i, ch in enumerate(cond):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif depth == 0 and cond.startswith(op, i) and i >= start:
            terms.append(cond[start:i])
            start = i + 2
    terms.append(cond[start:])
    return [t for t in map(_strip, terms) if t]


def condition_alternatives(cond: str, params: Sequence[str]) -> set[str] | None:
    """The contexts besides rcu_read_lock() a lockdep condition accepts (in ``params``'
    terms when given); None when one of its terms cannot be named (no requirement)."""
    alts: set[str] = set()
    for term in _terms(cond, "||"):
        if term in ("0", "false") or _RCU_TERM.match(term) or _EXITING.search(term):
            continue
        if _SCHED_TERMS.match(term):
            alts.add(SCHED)
            continue
        # (a macro reads its parameters through parentheses: `lockdep_is_held(&(w)->lock)`)
        m = _HELD.match(re.sub(r"\((\w+)\)", r"\1", term))
        if m is not None:
            key = _rooted(m.group(1).strip(), tuple(params)) if params else normalize(m.group(1))
            if key is None:
                return None
            alts.add(key)
            continue
        if params and term in params:
            alts.add(f"?{list(params).index(term)}")
            continue
        return None
    return alts


def _asserted(cond: str, params: Sequence[str]) -> set[str] | None:
    """The alternatives of an assertion that fires when a condition holds:
    ``!rcu_read_lock_held() && !lockdep_is_held(&cgroup_mutex)`` asserts RCU or
    cgroup_mutex held. None: the condition asserts no RCU read section."""
    inner = []
    for term in _terms(cond, "&&"):
        if not term.startswith("!") or term.startswith("!="):
            return None
        inner.append(term[1:].strip())
    if not any(_RCU_TERM.match(_strip(t)) for t in inner):
        return None
    return condition_alternatives(" || ".join(inner), params)


def _primitive(name: str, args: Sequence[str], params: Sequence[str]) -> Need | None:
    """The need of an RCU read primitive itself, or of an assertion that states one
    (``RCU_LOCKDEP_WARN(!rcu_read_lock_held() && !lockdep_is_held(&cgroup_mutex), ...)``,
    ``WARN_ON_ONCE(!rcu_read_lock_held())``, ``lockdep_assert_in_rcu_read_lock()``)."""
    if name == "rcu_dereference" and len(args) == 1:
        return (), [name]
    if name == "rcu_dereference_check" and len(args) == 2:
        alts = condition_alternatives(args[1], params)
        return (tuple(sorted(alts)), [name]) if alts is not None else None
    if name == "lockdep_assert_in_rcu_read_lock":
        return (), [name]
    if _ASSERTS.match(name) and args:
        alts = _asserted(args[0], params)
        return (tuple(sorted(alts)), [name]) if alts is not None else None
    return None


def call_need(name: str, args: Sequence[str], params: Sequence[str],
              known: Callable[[str], Need | None]) -> Need | None:
    """What a call of ``name`` with ``args`` needs, in the terms of a function with
    ``params`` (the caller's own parameters; empty at a call site the walk judges, where
    alternatives become the argument expressions): a primitive's, or through ``known``
    a function's. None: nothing, or nothing the caller can be held to."""
    found = _primitive(name, args, params)
    if found is not None or name.startswith("rcu_dereference") or _ASSERTS.match(name):
        return found
    callee = known(name)
    if callee is None:
        return None
    alts: set[str] = set()
    for alt in callee[0]:
        if alt == SCHED:
            alts.add(alt)
        elif alt.startswith("?"):
            index = int(alt[1:])
            if index >= len(args):
                return None
            more = condition_alternatives(args[index], params)
            if more is None:
                return None
            alts |= more
        elif alt.startswith("$"):
            key = substitute(alt, args, tuple(params)) if params else caller_key(alt, args)
            if key is None:
                return None
            alts.add(key)
        else:
            alts.add(alt)
    return tuple(sorted(alts)), [name, *callee[1]]


def describe_need(name: str, need: Need) -> str:
    """``task_css() -> task_css_check() -> ... -> rcu_dereference_check()``, and what
    else would do: "which also accepts cgroup_mutex, css_set_lock or preemption disabled"."""
    chain = " -> ".join(f"{c}(!rcu_read_lock_held())" if _ASSERTS.match(c) else f"{c}()"
                        for c in (need[1] if need[1][:1] == [name] else [name, *need[1]]))
    others = [("preemption disabled" if alt == SCHED else alt) for alt in need[0]]
    if not others:
        return chain
    listed = others[0] if len(others) == 1 else ", ".join(others[:-1]) + " or " + others[-1]
    return f"{chain}, which also accepts {listed}"


def _merge_alternatives(a: Need | None, b: Need) -> Need:
    """Two definitions of one name: the more permissive contract (the union)."""
    if a is None:
        return b
    return tuple(sorted(set(a[0]) | set(b[0]))), a[1] if len(a[1]) <= len(b[1]) else b[1]


def _both(a: Need | None, b: Need) -> Need:
    """Two reads in one body: what serves both (the intersection)."""
    if a is None:
        return b
    return tuple(sorted(set(a[0]) & set(b[0]))), a[1] if len(a[1]) <= len(b[1]) else b[1]


def rcu_needs(defs: Sequence[Definition], resolve: Callable[[str, str], list[int]],
              lock_for: Callable[[str], tuple[LockSpec, str] | None],
              base: Callable[[str], Need | None] | None = None) -> dict[str, list[object]]:
    """name -> [alternatives, chain] for every definition whose body needs its caller's
    RCU read section, through at most :data:`DEPTH` calls. ``resolve`` finds a call's
    definitions among ``defs``; ``lock_for`` knows the lock primitives (a read under a
    lock the body takes is that body's business: ``cgroup_release()`` reads
    ``task_css_set()`` under ``css_set_lock``); ``base`` answers for names ``defs`` do not
    define (a patch's functions on top of a base)."""
    own = [any(_OWN_SECTION.match(c.name) or (c.name in ("guard", "scoped_guard") and
                                              c.args.strip().startswith("rcu"))
               for c in d.calls) for d in defs]
    needs: list[Need | None] = [None] * len(defs)
    for _ in range(DEPTH):
        def known(name: str, path: str) -> Need | None:
            targets = resolve(name, path)
            if targets:
                found: Need | None = None
                for t in targets:
                    if needs[t] is not None:
                        found = _merge_alternatives(found, needs[t])  # type: ignore[arg-type]
                return found
            return base(name) if base is not None else None

        grew = False
        for i, d in enumerate(defs):
            if own[i]:
                continue
            need: Need | None = None
            held = 0  # locks and sections taken before the call, in text order
            for c in d.calls:
                lock = lock_for(c.name)
                if lock is not None:
                    held = held + 1 if lock[1] == "acquire" else max(0, held - 1)
                    continue
                if not (c.top_level or d.macro) or held:
                    continue
                found = call_need(c.name, c.arg_list, d.param_names,
                                  lambda n, p=d.path: known(n, p))  # type: ignore[misc]
                if found is not None and len(found[1]) <= DEPTH:
                    need = _both(need, found)
            if need != needs[i]:
                needs[i] = need
                grew = True
        if not grew:
            break
    out: dict[str, Need] = {}
    for i, d in enumerate(defs):
        if needs[i] is not None:
            out[d.name] = _merge_alternatives(out.get(d.name), needs[i])  # type: ignore[arg-type]
    return {name: [list(alts), via] for name, (alts, via) in sorted(out.items())}


_LOCK = re.compile(r"^rcu_read_lock(?:_bh|_sched)?$")
_UNLOCK = re.compile(r"^rcu_read_unlock(?:_bh|_sched)?$")


def rcu_openers(defs: Sequence[Definition], resolve: Callable[[str, str], list[int]]) -> list[str]:
    """Functions that may return inside an RCU read section they opened, for their
    caller to close: ``rcu_read_lock()`` at the top level of the body and no
    ``rcu_read_unlock()`` but after an early return (``mem_cgroup_trylock_pages()``
    returns true holding it; ``folio_memcg_lock()`` returns holding it), and a wrapper
    that calls one at its top level and closes nothing. Their callers' reads after the
    call are covered."""
    opens = [False] * len(defs)
    for i, d in enumerate(defs):
        # (an unlock "after a return" says the return sits between it and the lock only
        # when no return came before the lock)
        if any(_LOCK.match(c.name) and c.top_level and not c.after_return for c in d.calls):
            opens[i] = all(c.after_return for c in d.calls if _UNLOCK.match(c.name))
    direct = list(opens)
    for i, d in enumerate(defs):
        if not opens[i] and not any(_UNLOCK.match(c.name) for c in d.calls) and len(d.calls) <= 2:
            opens[i] = any(c.top_level and any(direct[t] for t in resolve(c.name, d.path) if t != i)
                           for c in d.calls)
    return sorted({d.name for i, d in enumerate(defs) if opens[i]})
