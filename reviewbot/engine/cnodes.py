"""Tree-sitter helpers of the ``refcount`` path analysis: calls in evaluation order, their
names and arguments, where a call's result goes, local names and plain aliases."""

from __future__ import annotations

import re
from collections.abc import Iterator

from tree_sitter import Node

from reviewbot.engine.cfunc import node_text
from reviewbot.engine.refspec import normalize


def call_name(call: Node) -> str:
    fn = call.child_by_field_name("function")
    return node_text(fn) if fn is not None else ""


def call_args(call: Node) -> list[Node]:
    args = call.child_by_field_name("arguments")
    return [a for a in (args.named_children if args else []) if a.type != "comment"]


def descendants(node: Node) -> Iterator[Node]:
    """The node and every named node below it, depth first, without recursion."""
    stack = [node]
    while stack:
        n = stack.pop()
        stack.extend(n.named_children)
        yield n


def calls_in(node: Node) -> list[Node]:
    """Calls in evaluation order (arguments before the call that uses them)."""
    out: list[Node] = []

    def walk(n: Node) -> None:
        for c in n.named_children:
            walk(c)
        if n.type == "call_expression":
            out.append(n)

    walk(node)
    return out


def assigned_to(call: Node) -> Node | None:
    """The left side that receives a call's result: ``x = f()``, ``T *x = f()``."""
    node = call
    parent = node.parent
    while parent is not None and parent.type in ("parenthesized_expression", "cast_expression"):
        node, parent = parent, parent.parent
    if parent is None:
        return None
    if parent.type == "assignment_expression" and parent.child_by_field_name("right") == node:
        return parent.child_by_field_name("left")
    if parent.type == "init_declarator" and parent.child_by_field_name("value") == node:
        decl = parent.child_by_field_name("declarator")
        while decl is not None and decl.type == "pointer_declarator":
            decl = decl.child_by_field_name("declarator")
        return decl
    return None


# Conversions that name the same object: `memcg = mem_cgroup_from_css(css)`, and
# container_of() to the struct that embeds a css (css_get(css) and css_put(&memcg->css)
# are one reference).
_SAME_OBJECT = re.compile(r"^(container_of|\w+_from_css|css_\w+_of|to_\w+)$")


def _same_object(node: Node) -> Node:
    while node.type in ("parenthesized_expression", "cast_expression") and node.named_children:
        node = node.named_children[-1]
    # `rqos = &blkiotrack->rqos`: a pointer into the object stands for the object.
    if node.type == "pointer_expression" and node_text(node).lstrip().startswith("&"):
        inner = node.named_children[0] if node.named_children else None
        while inner is not None and inner.type == "field_expression":
            inner = inner.child_by_field_name("argument")
        if inner is not None and inner.type == "identifier":
            return inner
    # `cgrp = css->cgroup`: a self css and its cgroup share one count (kernel.yaml, objects).
    if node.type == "field_expression" and node_text(node).replace(" ", "").endswith("->cgroup"):
        inner = node.child_by_field_name("argument")
        if inner is not None and inner.type == "identifier":
            return inner
    if node.type == "call_expression" and _SAME_OBJECT.match(call_name(node)):
        args = call_args(node)
        if args:
            return args[0]
    return node


class Aliases:
    """Union-find over local names joined by plain ``a = b`` assignments."""

    def __init__(self, fn: Node, locals_: set[str]) -> None:
        self.parent: dict[str, str] = {}
        for n in descendants(fn):
            left = right = None
            if n.type == "assignment_expression" and node_text(n.children[1]) == "=":
                left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
            elif n.type == "init_declarator":
                left, right = n.child_by_field_name("declarator"), n.child_by_field_name("value")
                while left is not None and left.type == "pointer_declarator":
                    left = left.child_by_field_name("declarator")
            if left is None or right is None:
                continue
            right = _same_object(right)
            a, b = normalize(node_text(left)), normalize(node_text(right))
            if a in locals_ and re.fullmatch(r"\w+", b) and b in locals_:
                self.union(a, b)

    def find(self, x: str) -> str:
        while self.parent.get(x, x) != x:
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb


def local_names(fn: Node) -> set[str]:
    names: set[str] = set()
    for n in descendants(fn):
        if n.type in ("init_declarator", "parameter_declaration", "declaration"):
            decl = n.child_by_field_name("declarator")
            while decl is not None and decl.type in ("pointer_declarator", "init_declarator"):
                decl = decl.child_by_field_name("declarator")
            if decl is not None and decl.type == "identifier":
                names.add(node_text(decl))
            if n.type == "declaration":
                for d in n.named_children:
                    if d.type == "identifier":
                        names.add(node_text(d))
    return names


def stored_identifiers(node: Node) -> list[str]:
    """Identifiers whose value ends up in an expression's value (not call arguments)."""
    if node.type == "identifier":
        return [node_text(node)]
    if node.type in ("cast_expression", "parenthesized_expression", "binary_expression",
                     "conditional_expression"):
        return [i for c in node.named_children for i in stored_identifiers(c)]
    return []


def identifiers_in(node: Node) -> list[str]:
    if node.type == "identifier":
        return [node_text(node)]
    return [i for c in node.named_children for i in identifiers_in(c)]


_OPERAND = re.compile(r"[A-Za-z_]\w*(?:(?:->|\.)\w+)*")
_SIDE_EFFECTS = re.compile(r"\w\s*\(|\+\+|--|(?<![=!<>])=(?!=)")


def condition_key(node: Node) -> tuple[str, bool]:
    """A condition's text without spaces, outer parentheses and leading `!`s, and whether
    it was negated an even number of times."""
    text = re.sub(r"\s+", "", node_text(node))
    polarity = True
    while True:
        if text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
            text = text[1:-1]
        elif text.startswith("!") and not text.startswith("!="):
            text, polarity = text[1:], not polarity
        else:
            return text, polarity


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


def repeated_conditions(fn: Node) -> frozenset[str]:
    """Conditions (of if statements) tested at least twice and free of calls and
    assignments: flags and pointers whose value does not change between the tests."""
    seen: dict[str, int] = {}
    assigned: set[str] = set()
    for n in descendants(fn):
        if n.type in ("assignment_expression", "update_expression"):
            target = n.child_by_field_name("left") or n.child_by_field_name("argument")
            if target is not None:
                assigned.add(re.sub(r"\s+", "", node_text(target)))
        if n.type == "if_statement":
            cond = n.child_by_field_name("condition")
            if cond is not None:
                text, _ = condition_key(cond)
                if not _SIDE_EFFECTS.search(text):
                    seen[text] = seen.get(text, 0) + 1
    # A condition on something the function changes may differ the second time.
    return frozenset(t for t, n in seen.items()
                     if n > 1 and not assigned & set(_OPERAND.findall(t)))
