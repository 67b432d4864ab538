"""A statement-level control-flow graph of one tree-sitter function.

Nodes are the places where reference counts can change or paths split: effects
(expression statements, declarations), branches (if/while/for/do/switch conditions),
returns, and the function end. Edges follow C: ``goto`` to its label, ``break`` and
``continue`` to the innermost loop (or switch), ``return`` to the exit.

Kernel iterator macros arrive here already rewritten by :mod:`cfunc` into
``while (for_each_x(args))``; a loop whose condition is such a call becomes an ``iter``
node, so that the refcount engine can model the reference an iterator holds inside the
body (``for_each_mem_cgroup()`` holds one on the current memcg until the next step or
``mem_cgroup_iter_break()``).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from tree_sitter import Node

from reviewbot.engine.cfunc import LOOP_MACRO, node_text
from reviewbot.facts.knowledge import load_knowledge

_ids = itertools.count()


@dataclass(eq=False)
class CNode:
    kind: str  # effect | branch | iter | return | end | nop | unknown
    ast: Node | None = None
    succ: list[CNode] = field(default_factory=list)  # branch/iter: [true, false]
    jump: str = ""  # "goto unlock", "break": how control reached the successor
    ident: int = field(default_factory=lambda: next(_ids))

    def __hash__(self) -> int:
        return self.ident


@dataclass
class Graph:
    entry: CNode
    end: CNode  # falling off the end of the function
    unknown: CNode  # control leaves what we can see (partial function, goto elsewhere)
    nodes: list[CNode]


_TRANSPARENT = {"preproc_ifdef", "preproc_if", "ERROR", "preproc_else", "preproc_elif"}


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[CNode] = []
        self.labels: dict[str, CNode] = {}
        self.end = self.new("end")
        self.unknown = self.new("unknown")

    def new(self, kind: str, ast: Node | None = None, succ: list[CNode] | None = None) -> CNode:
        node = CNode(kind, ast, list(succ or []))
        self.nodes.append(node)
        return node

    def label(self, name: str) -> CNode:
        if name not in self.labels:
            self.labels[name] = self.new("nop")
        return self.labels[name]

    def seq(self, stmts: list[Node], nxt: CNode, brk: CNode | None, cont: CNode | None) -> CNode:
        entry = nxt
        for stmt in reversed(stmts):
            entry = self.stmt(stmt, entry, brk, cont)
        return entry

    def stmt(self, node: Node, nxt: CNode, brk: CNode | None, cont: CNode | None) -> CNode:
        t = node.type
        if t == "compound_statement" or t in _TRANSPARENT:
            children = [c for c in node.named_children if c.type != "comment"]
            if t in ("preproc_ifdef", "preproc_if"):
                # Take the first branch only: both halves of an #ifdef are alternatives.
                children = [
                    c
                    for c in children
                    if c.type not in ("preproc_else", "preproc_elif", "identifier")
                    and c != node.child_by_field_name("condition")
                ]
            return self.seq(children, nxt, brk, cont)
        if t == "if_statement":
            cond = node.child_by_field_name("condition")
            then = node.child_by_field_name("consequence")
            alt = node.child_by_field_name("alternative")
            then_entry = self.stmt(then, nxt, brk, cont) if then is not None else nxt
            if alt is not None:
                inner = alt.named_children[0] if alt.type == "else_clause" else alt
                alt_entry = self.stmt(inner, nxt, brk, cont)
            else:
                alt_entry = nxt
            constant = _constant(cond)
            if constant is not None:
                # `if (1) {`: how engine/cfunc.py opens the blocks a hunk starts inside,
                # which every path of the fragment enters (and kernel code's `if (0)`).
                return self.new("nop", cond, [then_entry if constant else alt_entry])
            return self.new("branch", cond, [then_entry, alt_entry])
        if t == "while_statement":
            cond = node.child_by_field_name("condition")
            body = node.child_by_field_name("body")
            call = _loop_macro_call(cond)
            if call is None and _constant(cond) is True:
                # `while (1)`: left only by break, return or goto (else a path that
                # never exists, and a lock released twice on it).
                head = self.new("nop", cond)
                head.succ = [self.stmt(body, head, nxt, head) if body is not None else head]
                return head
            head = self.new("iter" if call is not None else "branch", call or cond)
            body_entry = self.stmt(body, head, nxt, head) if body is not None else head
            head.succ = [body_entry, nxt]
            return head
        if t == "do_statement":
            cond = node.child_by_field_name("condition")
            body = node.child_by_field_name("body")
            constant = _constant(cond)
            if constant is not None:
                # `do { ... } while (0)` runs once; `do { } while (1)` only exits by a jump.
                head = self.new("nop", cond)
                body_entry = self.stmt(body, head, nxt, head) if body is not None else head
                head.succ = [nxt] if constant is False else [body_entry]
                return body_entry
            head = self.new("branch", cond)
            body_entry = self.stmt(body, head, nxt, head) if body is not None else head
            head.succ = [body_entry, nxt]
            return body_entry
        if t == "for_statement":
            init = node.child_by_field_name("initializer")
            cond = node.child_by_field_name("condition")
            update = node.child_by_field_name("update")
            body = node.child_by_field_name("body")
            head = self.new("branch" if cond is not None else "nop", cond)
            step = self.new("effect", update, [head]) if update is not None else head
            body_entry = self.stmt(body, step, nxt, step) if body is not None else step
            head.succ = [body_entry, nxt] if cond is not None else [body_entry]
            return self.new("effect", init, [head]) if init is not None else head
        if t == "switch_statement":
            cond = node.child_by_field_name("condition")
            body = node.child_by_field_name("body")
            cases = [c for c in (body.named_children if body else []) if c.type == "case_statement"]
            entries: list[CNode] = []
            follow = nxt
            has_default = False
            for case in reversed(cases):
                stmts = [
                    c
                    for c in case.named_children
                    if c != case.child_by_field_name("value") and c.type != "comment"
                ]
                follow = self.seq(stmts, follow, nxt, cont)
                entries.append(follow)
                has_default = has_default or case.child_by_field_name("value") is None
            succ = list(reversed(entries)) + ([] if has_default else [nxt])
            return self.new("effect", cond, [self.new("nop", None, succ or [nxt])])
        if t == "return_statement":
            return self.new("return", node, [])
        if t == "goto_statement":
            label = node.child_by_field_name("label")
            target = self.label(node_text(label)) if label is not None else self.unknown
            jump = self.new("nop", node, [target])
            jump.jump = f"goto {node_text(label) if label is not None else '?'}"
            return jump
        if t == "labeled_statement":
            label = node.child_by_field_name("label")
            stmts = [c for c in node.named_children if c != label]
            target = self.label(node_text(label)) if label is not None else self.new("nop")
            target.succ = [self.seq(stmts, nxt, brk, cont)]
            return target
        if t == "break_statement":
            jump = self.new("nop", node, [brk or self.unknown])
            jump.jump = "break"
            return jump
        if t == "continue_statement":
            return self.new("nop", node, [cont or self.unknown])
        if t in ("comment", "preproc_call", "preproc_def", "preproc_function_def"):
            return nxt
        if t == "expression_statement" and _noreturn_call(node):
            # do_exit(), panic(), BUG(): the path ends here, without returning.
            return self.new("effect", node, [self.unknown])
        return self.new("effect", node, [nxt])


def _noreturn_call(stmt: Node) -> bool:
    expr = stmt.named_children[0] if stmt.named_children else None
    if expr is None or expr.type != "call_expression":
        return False
    fn = expr.child_by_field_name("function")
    return fn is not None and load_knowledge().noreturn.fullmatch(node_text(fn)) is not None


def _constant(cond: Node | None) -> bool | None:
    """The truth of a constant loop condition (``1``, ``true``, ``0``), else None."""
    node = cond
    while node is not None and node.type == "parenthesized_expression" and node.named_children:
        node = node.named_children[0]
    if node is None:
        return None
    text = node_text(node).strip()
    if node.type == "number_literal" or text in ("true", "false"):
        return text not in ("0", "false", "0x0")
    return None


def _loop_macro_call(cond: Node | None) -> Node | None:
    node = cond
    while node is not None and node.type == "parenthesized_expression" and node.named_children:
        node = node.named_children[0]
    if node is not None and node.type == "call_expression":
        fn = node.child_by_field_name("function")
        if fn is not None and LOOP_MACRO.match(node_text(fn)):
            return node
    return None


def build(function: Node, partial: bool) -> Graph:
    """CFG of a function_definition. In a partial function, falling off the end is
    'unknown' (the rest of the function was not shown), not a return."""
    b = _Builder()
    body = function.child_by_field_name("body")
    end = b.unknown if partial else b.end
    entry = b.stmt(body, end, None, None) if body is not None else end
    for node in b.labels.values():
        if not node.succ:
            node.succ = [b.unknown]  # a label we never saw: outside the hunk
    return Graph(entry, b.end, b.unknown, b.nodes)
