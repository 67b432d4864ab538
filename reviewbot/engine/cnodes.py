"""Tree-sitter helpers of the ``refcount`` path analysis: calls in evaluation order, their
names and arguments, where a call's result goes, local names and plain aliases."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

from tree_sitter import Node

from reviewbot.engine.cfunc import FunctionView, node_text
from reviewbot.engine.refspec import called_words, normalize
from reviewbot.facts.returnrefs import balanced_parens


def call_name(call: Node) -> str:
    fn = call.child_by_field_name("function")
    return node_text(fn) if fn is not None else ""


def call_args(call: Node) -> list[Node]:
    args = call.child_by_field_name("arguments")
    return [a for a in (args.named_children if args else []) if a.type != "comment"]


def descendants(node: Node) -> Iterator[Node]:
    """The node and every named node below it, depth first, without recursion."""
    stack = [node]
    pop, extend = stack.pop, stack.extend
    while stack:
        n = pop()
        extend(n.named_children)
        yield n


def calls_in(node: Node, memo: dict[int, list[Node]] | None = None) -> list[Node]:
    """Calls in evaluation order (arguments before the call that uses them): the reverse
    of a depth-first walk that takes the last child first, so without recursion.

    ``memo`` (a function's, see :func:`view_calls`) keeps the answer per node: every
    analysis of the function (each rule's walk, the context walk, the consumers' walks)
    asks about the same statements. Callers must not change the list they get."""
    if memo is not None:
        done = memo.get(node.id)
        if done is not None:
            return done
    out = [n for n in descendants(node) if n.type == "call_expression"]
    out.reverse()
    if memo is not None:
        memo[node.id] = out
    return out


def view_calls(view: FunctionView) -> dict[int, list[Node]]:
    """The function's :func:`calls_in` memo (node id -> its calls; ids are unique within
    the one tree a view's nodes come from)."""
    memo: dict[int, list[Node]] = view.memo.setdefault("calls-in", {})
    return memo


def view_text(view: FunctionView) -> str:
    """The function's source (each rule's prefilter reads it; decoded once)."""
    text: str | None = view.memo.get("text")
    if text is None:
        text = view.memo["text"] = node_text(view.node)
    return text


def view_words(view: FunctionView) -> frozenset[str]:
    """refspec.called_words() of the function, for refspec.finds_call()."""
    words: frozenset[str] | None = view.memo.get("called-words")
    if words is None:
        words = view.memo["called-words"] = called_words(view_text(view))
    return words


def view_callees(view: FunctionView) -> frozenset[str]:
    """Names the function calls (facts.extract.CALL), to ask the tree facts about."""
    names: frozenset[str] | None = view.memo.get("callees")
    if names is None:
        # CALL's matches are exactly the called words (a word, then "(") that start with a
        # letter or "_": taken from those, without another scan of the function's text.
        names = view.memo["callees"] = frozenset(
            w for w in view_words(view) if w[0] == "_" or "A" <= w[0] <= "Z" or "a" <= w[0] <= "z")
    return names


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


_CURRENT_PATH = re.compile(r"current(?:->\w+)+")


class Aliases:
    """Union-find over local names joined by plain ``a = b`` assignments (``joins``: the
    (a, b) name pairs of the function's assignments, in tree order; see function_shape())."""

    def __init__(self, joins: list[tuple[str, str]], locals_: set[str],
                 assigned: set[str] | frozenset[str] = frozenset()) -> None:
        self.parent: dict[str, str] = {}
        # `struct sighand_struct *sighand = current->sighand;` never assigned again: the
        # path and the local name one object, so that a callee's `current->sighand->siglock`
        # (tree facts) is the lock the function holds as `sighand->siglock`. Only paths from
        # `current`: the running task does not change under the function.
        self.paths: dict[str, str] = {}
        for a, b in joins:
            if a in locals_ and re.fullmatch(r"\w+", b) and b in locals_:
                self.union(a, b)
            elif a in locals_ and a not in assigned and _CURRENT_PATH.fullmatch(b):
                self.paths.setdefault(b, a)

    def find(self, x: str) -> str:
        if self.paths and x.startswith("current"):
            for path, local in self.paths.items():
                if x == path or x.startswith((path + "->", path + ".")):
                    x = local + x[len(path):]
                    break
        while self.parent.get(x, x) != x:
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb


# One comparison of two plain operands (no nested operators, calls or parentheses).
_EQUALITY = re.compile(r"([\w>.\-\[\]]+?)(==|!=)([\w>.\-\[\]]+)")
_OPERAND = re.compile(r"[A-Za-z_]\w*(?:(?:->|\.)\w+)*")
_SIDE_EFFECTS = re.compile(r"\w\s*\(|\+\+|--|(?<![=!<>])=(?!=)")


def _write_site(n: Node, steps: dict[int, str]) -> tuple[int, bool, str]:
    """(offset, inside a loop, condition of the `for` whose step expression it is or "")
    of an assignment (the walk meets a `for` before its step: ``steps`` knows it)."""
    step, looped, p = "", False, n.parent
    while p is not None and p.type != "function_definition":
        if p.start_byte in steps and p.parent is not None and p.parent.type == "for_statement" \
                and p.parent.child_by_field_name("update") == p:
            step = steps[p.start_byte]
        if p.type in ("for_statement", "while_statement", "do_statement"):
            looped = True
        p = p.parent
    if n.parent is not None and n.parent.type == "for_statement" and n.parent.child_by_field_name("update") == n:
        step = steps.get(n.start_byte, "")
    return n.start_byte, looped, step


def function_shape(fn: Node, visit: Callable[[Node], None] | None = None,
                   nodes: Sequence[Node] | None = None) -> tuple[frozenset[str], set[str], Aliases]:
    """What the path analyses need of a function as a whole, in one walk of its tree
    (three walks were a tenth of a rules run): the conditions it tests twice (below), its
    local names (declarations and parameters), and the aliases among them. ``visit`` sees
    every node of the walk too (in :func:`descendants` order), for a caller's own index;
    ``nodes`` is that walk when the caller made it already."""
    names: set[str] = set()
    joins: list[tuple[str, str]] = []
    seen: dict[str, int] = {}  # condition -> times an if statement (or a loop) tests it
    assigned: set[str] = set()
    # target -> [(offset, in a loop, the condition of the `for` whose step it is or "")]
    writes: dict[str, list[tuple[int, bool, str]]] = {}
    first_test: dict[str, int] = {}  # condition -> offset of its first test
    steps: dict[int, str] = {}  # offset of a `for` step expression -> the loop's condition
    for n in descendants(fn) if nodes is None else nodes:
        if visit is not None:
            visit(n)
        kind = n.type
        if kind in ("init_declarator", "parameter_declaration", "declaration"):
            # (every declarator of `struct cgroup *src_cgrp, *dst_cgrp;`, not the first only)
            decls = n.children_by_field_name("declarator") if kind == "declaration" \
                else [n.child_by_field_name("declarator")]
            for decl in decls:
                while decl is not None and decl.type in ("pointer_declarator", "init_declarator"):
                    decl = decl.child_by_field_name("declarator")
                if decl is not None and decl.type == "identifier":
                    names.add(node_text(decl))
            if kind == "declaration":
                for d in n.named_children:
                    if d.type == "identifier":
                        names.add(node_text(d))
        left = right = None
        if kind == "assignment_expression" and node_text(n.children[1]) == "=":
            left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
        elif kind == "init_declarator":
            left, right = n.child_by_field_name("declarator"), n.child_by_field_name("value")
            while left is not None and left.type == "pointer_declarator":
                left = left.child_by_field_name("declarator")
        if left is not None and right is not None:
            joins.append((normalize(node_text(left)), normalize(node_text(_same_object(right)))))
        if kind in ("assignment_expression", "update_expression"):
            target = n.child_by_field_name("left") or n.child_by_field_name("argument")
            if target is not None:
                name = re.sub(r"\s+", "", node_text(target))
                assigned.add(name)
                writes.setdefault(name, []).append(_write_site(n, steps))
        if kind in ("if_statement", "for_statement", "while_statement"):
            cond = n.child_by_field_name("condition")
            if cond is not None:
                text, _ = condition_key(cond)
                if not _SIDE_EFFECTS.search(text):
                    seen[text] = seen.get(text, 0) + 1
                    first_test.setdefault(text, cond.start_byte)
                    update = n.child_by_field_name("update") if kind == "for_statement" else None
                    if update is not None:
                        steps[update.start_byte] = text
    # Repeated conditions: tested at least twice and free of calls and assignments (flags
    # and pointers whose value does not change between the tests). A condition on
    # something the function changes may differ the second time.
    # An operand the function sets only before it first tests the condition (once, not in
    # a loop), or in the step of the loop that tests it (`for (; memcg != root; memcg =
    # parent(memcg))`, which changes it right before testing it again: the last test still
    # holds after a `break`, the one that ends the loop after it) keeps each test's outcome
    # until the next test.
    def changes(operand: str, cond: str) -> bool:
        return any(step != cond and not (offset < first_test[cond] and not looped)
                   for offset, looped, step in writes.get(operand, ()))
    repeated = frozenset(t for t, k in seen.items()
                         if k > 1 and not any(changes(o, t) for o in _OPERAND.findall(t)))
    return repeated, names, Aliases(joins, names, assigned)


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


def condition_key(node: Node) -> tuple[str, bool]:
    """A condition's text without spaces, outer parentheses and leading `!`s, and whether
    it was negated an even number of times; a single comparison for (in)equality is read
    as its `==` form (`a != b` is `a == b` negated)."""
    text = re.sub(r"\s+", "", node_text(node))
    polarity = True
    while True:
        if text.startswith("(") and text.endswith(")") and balanced_parens(text[1:-1]):
            text = text[1:-1]
        elif text.startswith("!") and not text.startswith("!="):
            text, polarity = text[1:], not polarity
        else:
            m = _EQUALITY.fullmatch(text)
            if m is not None and m.group(2) == "!=":
                return f"{m.group(1)}=={m.group(3)}", not polarity
            return text, polarity
