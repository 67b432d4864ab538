"""The ``stale-snapshot`` check of the context engine: a value read before a lock, used under it.

A function that copies a field into a local (``step = iocg->active * 25 / 100``), then takes
a lock and reads the same field again inside the section (``iocg->active``), treats the field
as protected by that lock: another CPU may change it between the copy and the lock. A use of
the copy inside the section then works on a value the lock never covered, which is what a
reviewer asks about ("this must be computed after taking the lock: we may have raced").

Found per lock section (an acquire of a spinning or sleeping lock and its first release of
the same key, by line):

* a *snapshot*: the last plain assignment to a local before the acquire, whose value reads a
  field through a pointer (``p->f``), not through an accessor that says the read is
  deliberately lockless (``READ_ONCE()``, ``atomic_read()``, ``data_race()``, ...), and not
  the lock's own object;
* the section reads the same ``p->f`` again and uses the local, which it does not assign
  first;
* the section does not compare the local with the field (``if (v != p->f)``: that is
  the revalidation the pattern needs, not the bug), and does not store the field itself
  (then the function is the field's writer, under the writers' lock, publishing under
  this one).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tree_sitter import Node

from reviewbot.engine.cfunc import FunctionView, node_text
from reviewbot.engine.cnodes import call_args, call_name, calls_in, descendants, view_calls
from reviewbot.engine.types import RawFinding
from reviewbot.facts.knowledge import Knowledge

# Lock kinds whose section protects fields (RCU and irq/preempt sections do not).
_PROTECTING = ("spinlock", "raw_spinlock", "rwlock", "mutex", "rwsem")
# Reads that say "lockless on purpose": the author knows the value may change.
_LOCKLESS = re.compile(r"\b(?:READ_ONCE|atomic\w*_read|data_race|rcu_dereference\w*|"
                       r"smp_load_acquire|rcu_access_pointer|test_bit)\s*\(")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class _Section:
    key: str  # the lock argument, spaces removed
    call: str
    start: int  # line of the acquire
    end: int  # line of its release (the function's last line when none)


def stale_snapshots(view: FunctionView, k: Knowledge) -> list[RawFinding]:
    sections = _sections(view, k)
    if not sections:
        return []
    out: list[RawFinding] = []
    seen: set[tuple[str, int]] = set()
    writes = _assignments(view)
    for sec in sections:
        for var, line, fields in _snapshots_before(writes, sec):
            if (var, sec.start) in seen or any(f in sec.key for f in fields) \
                    or re.match(rf"{re.escape(var)}\b", sec.key):
                continue  # the lock's own object, or a copy of the pointer to it
            inside = _between(view, sec.start, sec.end)
            use = _first_use(inside, var, writes, sec)
            if use is None:
                continue
            again = [(f, ln) for f in fields for ln, text in inside if f in _squash(text)]
            if not again or _revalidated(view, sec, var, fields) \
                    or _written(inside, fields):
                continue
            field, reread = again[0]
            if view.added and not ({line, sec.start, use} & view.added):
                continue  # nothing of it is the patch's
            seen.add((var, sec.start))
            out.append(RawFinding(line, view.name, {
                "detail": (f"`{var}` is computed from `{field}` at line {line}, before "
                           f"{sec.call}() at line {sec.start}, and used at line {use} inside "
                           f"that section, which reads `{field}` again under the lock (line "
                           f"{reread}): the copy may be stale by the time the lock is held"),
                "var": var, "field": field, "call": sec.call}, (line, sec.start, use)))
    return out


def _squash(text: str) -> str:
    return _SPACE.sub("", text)


def _sections(view: FunctionView, k: Knowledge) -> list[_Section]:
    events: list[tuple[int, str, str, str]] = []  # (line, role, key, call)
    for call in calls_in(view.node, view_calls(view)):
        name = call_name(call)
        found = k.lock_for(name)
        if found is None:
            continue
        spec, role = found
        if spec.kind not in _PROTECTING or spec.keyless or spec.conditional or spec.shared:
            continue
        args = call_args(call)
        line = view.line(call)
        if not args or line is None:
            continue
        events.append((line, role, _squash(node_text(args[0])).lstrip("&"), name))
    last = max(view.lines(), default=0)
    out = []
    for i, (line, role, key, name) in enumerate(events):
        if role != "acquire":
            continue
        # The section ends at the last release before the lock is taken again: an early
        # `unlock; return;` branch does not end it for the code below the branch.
        later = events[i + 1:]
        again = next((ln for ln, r, kk, _ in later if r == "acquire" and kk == key), None)
        ends = [ln for ln, r, kk, _ in later
                if r == "release" and kk == key and (again is None or ln < again)]
        out.append(_Section(key, name, line, ends[-1] if ends else last))
    return out


def _assignments(view: FunctionView) -> list[tuple[int, str, Node]]:
    """(line, local, value) of every ``T v = expr;`` and ``v = expr;`` in the function."""
    out: list[tuple[int, str, Node]] = []
    for node in descendants(view.node):
        if node.type == "init_declarator":
            target, value = node.child_by_field_name("declarator"), node.child_by_field_name("value")
        elif node.type == "assignment_expression" and node_text(node).split("=", 1)[0].strip()[-1:] not in "+-*/%&|^<>!":
            target, value = node.child_by_field_name("left"), node.child_by_field_name("right")
        else:
            continue
        line = view.line(node)
        if target is None or value is None or target.type != "identifier" or line is None:
            continue
        out.append((line, node_text(target), value))
    out.sort(key=lambda row: row[0])
    return out


def _snapshots_before(writes: list[tuple[int, str, Node]], sec: _Section
                      ) -> list[tuple[str, int, list[str]]]:
    """(local, line, fields read) of the last assignment of each local before the acquire."""
    last: dict[str, tuple[int, Node]] = {}
    for line, var, value in writes:
        if line < sec.start:
            last[var] = (line, value)
    out = []
    for var, (line, value) in last.items():
        text = node_text(value)
        if _LOCKLESS.search(text) or value.type == "call_expression" and not _has_field(value):
            continue
        # A field read as a value (an operand), not handed to a function (a cpumask, a
        # list head: the callee reads or fills the object, which is not a snapshot).
        fields = [_squash(node_text(n)) for n in descendants(value)
                  if n.type == "field_expression" and "->" in node_text(n)
                  and (n.parent is None or n.parent.type not in ("pointer_expression",
                                                                  "field_expression",
                                                                  "argument_list"))]
        if fields:
            out.append((var, line, sorted(set(fields))))
    return out


def _has_field(node: Node) -> bool:
    return any(n.type == "field_expression" for n in descendants(node))


def _between(view: FunctionView, start: int, end: int) -> list[tuple[int, str]]:
    return [(ln, view.row_text(ln)) for ln in view.lines() if start < ln <= end]


def _first_use(inside: list[tuple[int, str]], var: str, writes: list[tuple[int, str, Node]],
               sec: _Section) -> int | None:
    """The first line of the section that reads ``var``; None when the section assigns it
    before reading it."""
    word = re.compile(rf"\b{re.escape(var)}\b")
    assigned = {line for line, v, _ in writes if v == var and sec.start < line <= sec.end}
    for line, text in inside:
        if line in assigned:
            return None
        if word.search(text):
            return line
    return None


def _written(inside: list[tuple[int, str]], fields: list[str]) -> bool:
    """The section stores the field itself (``p->f = v``): this function is the field's
    writer, which holds the writers' lock (a mutex around the whole update) and takes this
    one only to publish; its own earlier read is not stale."""
    stores = [re.compile(rf"{re.escape(f)}(?:\[[^\]]*\])*=(?!=)") for f in fields]
    return any(p.search(_squash(text)) for _, text in inside for p in stores)


def _revalidated(view: FunctionView, sec: _Section, var: str, fields: list[str]) -> bool:
    """The section compares the copy with the field again (``if (v != p->f)``)."""
    for node in descendants(view.node):
        if node.type != "binary_expression":
            continue
        line = view.line(node)
        if line is None or not sec.start <= line <= sec.end:
            continue
        op = node.child_by_field_name("operator")
        if op is None or node_text(op) not in ("==", "!="):
            continue
        text = _squash(node_text(node))
        if re.search(rf"\b{re.escape(var)}\b", text) and any(f in text for f in fields):
            return True
    return False
