"""List walks whose protection the loop body drops (checks of the context walk,
:mod:`context`).

A list iterator reads the cursor's next pointer at every step. The lock (or RCU read
section) that keeps the entries alive must still cover the cursor at that step: a body
that drops the lock and takes it again lets another CPU unlink and free the cursor (or,
for the ``_safe`` variants, the saved next entry) in between; the step then reads freed
memory ("list_del corruption", use-after-free). Re-locking does not help; pinning the
cursor does (a reference taken before the unlock), or restarting the walk from the head
after the lock is retaken (Documentation/kernel-hacking/locking.rst; the pattern the
cgroup core uses in css_task_iter and the release-agent walk).

* ``rcu-unprotected``: an ``rcu_dereference()`` outside the read-side section the function
  takes elsewhere, or an RCU list walk whose body drops ``rcu_read_lock()``;
* ``walk-unlocked``: a list walk under a spinlock, rwlock, mutex or rwsem whose body
  releases that lock and goes on to the next step, with the cursor neither pinned nor
  set again.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tree_sitter import Node

from reviewbot.engine.cfunc import node_text
from reviewbot.engine.entryctx import taken_by
from reviewbot.engine.refstate import State
from reviewbot.facts.iterators import RCU_ITERATORS
from reviewbot.facts.rcuneeds import Need, call_need, describe_need

if TYPE_CHECKING:
    from reviewbot.engine.context import ContextAnalysis

__all__ = ["locked_walk", "rcu_need_at", "rcu_reads", "rcu_walk"]

# Readers that need an RCU read-side section (the one-argument forms: the _check and
# _protected forms name the lock that protects them instead).
_RCU_READ = re.compile(r"rcu_dereference|rcu_dereference_bh|rcu_dereference_sched")
# Plain list walks: each step dereferences the cursor (and the _safe variants' next entry).
_LIST_ITER = re.compile(r"h?list_for_each_entry(_safe)?(_continue|_from|_reverse)?(_safe)?|"
                        r"list_for_each(_safe)?|list_for_each_prev(_safe)?")
_WALK_LOCKS = ("spinlock", "raw_spinlock", "rwlock", "mutex", "rwsem")
_JUMPS = ("return_statement", "break_statement", "goto_statement")


def _pinned(body: Node, cursor: str) -> bool:
    """A reference on the cursor taken in the body (css_get(&pos->css), kref_get(), a
    tryget, a count the structure keeps for that: `sb->s_count++` in iterate_supers()):
    the entry outlives the unlocked part."""
    text, c = node_text(body), re.escape(cursor)
    return bool(re.search(rf"\b\w*(get|tryget|grab|pin|hold|legitimize|_inc)\w*\s*\([^;]*\b{c}\b", text)
                or re.search(rf"(\b{c}->\w+\s*\+\+|\+\+\s*{c}->)", text))


def _revalidated(body: Node, step_from: str) -> bool:
    """The body sets what the next step starts from again (`next = list_first_entry(...)`
    after re-locking, as page_reporting_cycle() does): the walk resumes from a valid
    entry."""
    return re.search(rf"(?<![\w>.])\s*{re.escape(step_from)}\s*=(?!=)", node_text(body)) is not None


def _loop_body(ast: Node) -> Node | None:
    loop = ast.parent
    while loop is not None and loop.type != "while_statement":
        loop = loop.parent
    return loop.child_by_field_name("body") if loop is not None else None


def rcu_reads(a: ContextAnalysis, ast: Node, state: State) -> None:
    if state.held or "rcu" not in a.taken_kinds:
        return
    for call in a.calls_of(ast):
        name = a.name_of(call)
        if _RCU_READ.fullmatch(name) and len(a.args_of(call)) == 1:
            line = a.line(call) or 0
            _rcu_hit(a, line, name, f"{name}() at line {line} runs outside the "
                                    f"rcu_read_lock() section {a.view.name}() takes elsewhere")
            continue
        # A function whose body makes such a read for its caller (facts/rcuneeds.py:
        # task_css() -> ... -> rcu_dereference_check()); nothing is held here, so none of
        # the alternatives its lockdep condition accepts is either.
        need = rcu_need_at(a, call, name)
        if need is not None and not _opens_rcu(a):
            line = a.line(call) or 0
            _rcu_hit(a, line, name, f"{name}() at line {line} reads an RCU-protected pointer "
                                    f"({describe_need(name, need)}) outside the rcu_read_lock() "
                                    f"section {a.view.name}() takes elsewhere")


def rcu_need_at(a: ContextAnalysis, call: Node, name: str) -> Need | None:
    """What a call needs of its caller's RCU read section, in the call's own terms (asked
    once per call node: the walk meets a node once per path state)."""
    key = id(call)
    if key not in a.rcu_needs:
        a.rcu_needs[key] = call_need(name, [node_text(x) for x in a.args_of(call)], (),
                                     a.facts.rcu_need) if a.facts.rcu_need(name) else None
    return a.rcu_needs[key]


def _opens_rcu(a: ContextAnalysis) -> bool:
    """Whether the function calls a helper that may return inside an RCU section it
    opened (``mem_cgroup_trylock_pages()``): the walk does not hold that section, so reads
    after such a call are not judged (asked once, on the first read)."""
    if a.opens_rcu is None:
        a.opens_rcu = any(a.facts.opens_rcu(a.name_of(c)) for c in a.calls_of(a.view.node))
    return a.opens_rcu


def rcu_walk(a: ContextAnalysis, ast: Node, state: State) -> None:
    """An RCU list walk whose next step runs after the body dropped rcu_read_lock()."""
    name = a.name_of(ast)
    if "rcu" not in a.taken_kinds:
        return
    # A primitive, or a subsystem's macro around one (cpuset_for_each_child(), from the facts).
    wrapped = None if RCU_ITERATORS.fullmatch(name) else a.facts.rcu_iterator(name)
    if wrapped is None and not RCU_ITERATORS.fullmatch(name):
        return
    args = a.args_of(ast)
    if wrapped is None and name.startswith(("list_", "hlist_")) and len(args) > 3:
        return  # a lockdep condition says which other lock protects the walk
    cursor = node_text(args[0]) if args else ""
    body = _loop_body(ast)
    if body is None or not any(a.name_of(c) == "rcu_read_unlock" and not _leaves_loop(c, body)
                               for c in a.calls_of(body)):
        return  # the body keeps the read side, or drops it only to leave the walk
    # A wrapper's cursors are its arguments but the last (the root): the entry, and the
    # css the walk steps from (cpuset_for_each_child(cs, pos_css, parent)).
    cursors = [node_text(x) for x in args[:-1] if re.fullmatch(r"\w+", node_text(x))] if wrapped else [cursor]
    if any(_pinned(body, c) for c in cursors):
        return
    line = a.line(ast) or 0
    via = f" (which walks with {wrapped}())" if wrapped else ""
    _rcu_hit(a, line, name, f"{name}(){via} steps to the next entry after the loop body "
                            f"dropped rcu_read_lock(), without a reference on `{cursor}`")


def _rcu_hit(a: ContextAnalysis, line: int, name: str, detail: str) -> None:
    first = a.taken.get("rcu", line)
    if a.relevant(first, line):
        a.hits.setdefault(("rcu-unprotected", line, name),
                          (line, {"detail": detail, "call": name}, (line,)))


def locked_walk(a: ContextAnalysis, ast: Node, state: State) -> None:
    """A list walk under a lock whose body releases that lock and then steps on."""
    name = a.name_of(ast)
    if not _LIST_ITER.fullmatch(name):
        return
    held = [h for h in state.held if h.key and a.kinds[h.pair].kind in _WALK_LOCKS]
    if not held:
        return
    body = _loop_body(ast)
    args = a.args_of(ast)
    if body is None or not args:
        return
    cursor = node_text(args[0])
    # The _safe variants step from the entry they saved before the body ran.
    step_from = node_text(args[1]) if "_safe" in name and len(args) > 1 else cursor
    if _pinned(body, cursor) or _revalidated(body, step_from):
        return
    for h in held:
        unlock = next((c for c in a.calls_of(body) if _releases(a, c, h.key)), None)
        if unlock is None or _leaves_loop(unlock, body):
            continue  # kept across the body, or dropped only to leave (or restart) the walk
        line, at = a.line(ast) or 0, a.line(unlock) or 0
        if not a.relevant(line, at):
            continue
        detail = (f"{name}() at line {line} walks a list under {h.key} ({taken_by(h)}), but the loop body releases it at line {at} and the walk then "
                  f"steps on from `{step_from}`, which may have been unlinked and freed "
                  f"meanwhile (re-taking the lock does not make it valid again)")
        a.hits.setdefault(("walk-unlocked", line, name),
                          (line, {"detail": detail, "call": name}, (h.line, line, at)))
        return


def _releases(a: ContextAnalysis, call: Node, key: str) -> bool:
    found = a.k.lock_for(a.name_of(call))
    if found is None or found[1] != "release" or found[0].keyless:
        return False
    args = a.args_of(call)
    return bool(args) and a.key(args[0]) == key


def _leaves_loop(call: Node, body: Node) -> bool:
    """Whether the statements after the unlock, in its block and the blocks around it up
    to the loop body, leave the walk (return, break, goto a restart label)."""
    node: Node | None = call
    while node is not None and node.id != body.id:
        parent = node.parent
        if parent is not None and parent.type == "compound_statement":
            after = False
            for sibling in parent.named_children:
                if sibling.id == node.id:
                    after = True
                elif after and sibling.type in _JUMPS:
                    return True
        node = parent
    return False
