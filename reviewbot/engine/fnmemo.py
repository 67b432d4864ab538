"""What the path analyses ask of one function's syntax, worked out once per function.

Several analyses walk each function (the shared refcount walk, the rules with their own
pairs, the context walk, one per parameter for engine/consumers.py, and the same again on
the base version), and each asks at every node for its calls, their names and arguments,
the object an expression names and the stores under a statement. None of that depends on
the analysis: it is kept in the function's ``FunctionView.memo`` and shared.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable

from tree_sitter import Node

from reviewbot.engine.cfunc import FunctionView, node_text
from reviewbot.engine.cnodes import (
    Aliases,
    call_args,
    call_name,
    condition_key,
    descendants,
    function_shape,
    view_calls,
)
from reviewbot.engine.refspec import normalize

__all__ = ["FunctionMemo"]

_DECLARES = re.compile(r"^(DECLARE|DEFINE)_\w+$")


class FunctionMemo:
    """The per-function answers, for :class:`~reviewbot.engine.refcount.Analysis` to
    build on. Node ids key them: unique within the one tree a view's nodes come from."""

    def __init__(self, view: FunctionView) -> None:
        self.view = view
        self.calls = view_calls(view)  # calls_in() per node
        self._stores: dict[int, list[Node]] = view.memo.setdefault("refcount-stores", {})
        self._keys: dict[int, str] = view.memo.setdefault("refcount-keys", {})
        self._names: dict[int, str] = view.memo.setdefault("call-names", {})
        self._args: dict[int, list[Node]] = view.memo.setdefault("call-args", {})
        self._conditions: dict[int, tuple[str, bool]] = view.memo.setdefault("conditions", {})
        shape = view.memo.get("refcount-shape")
        if shape is None:
            # One walk of the function lists its nodes (cnodes.descendants() order), where
            # each subtree starts and ends in that list, and its calls and stores: the shape
            # is read from the list, and a statement's calls and stores are a slice of the
            # function's (the same nodes in the same order as a walk of the statement).
            spans = _Spans(view.node, self.name_of)
            view.memo["refcount-spans"] = spans
            shape = view.memo["refcount-shape"] = function_shape(view.node, nodes=spans.order)
            self._indexed(view.node, list(spans.calls), list(spans.stores))
        self._spans: _Spans | None = view.memo.get("refcount-spans")
        self.repeated: frozenset[str] = shape[0]  # conditions tested twice (cnodes)
        self.locals: set[str] = shape[1]
        self.alias: Aliases = shape[2]

    def name_of(self, call: Node) -> str:
        """call_name(), read once per call of the function (each analysis, and each path
        state of the context checks, asks again)."""
        found = self._names.get(call.id)
        if found is None:
            found = self._names[call.id] = call_name(call)
        return found

    def args_of(self, call: Node) -> list[Node]:
        """call_args(), once per call like :meth:`name_of` (callers do not change it)."""
        found = self._args.get(call.id)
        if found is None:
            found = self._args[call.id] = call_args(call)
        return found

    def key(self, expr: Node) -> str:
        """The object an expression names (refspec.normalize(), through the aliases)."""
        found = self._keys.get(expr.id)
        if found is None:
            found = self._keys[expr.id] = self.alias.find(normalize(node_text(expr)))
        return found

    def condition_of(self, ast: Node) -> tuple[str, bool]:
        """cnodes.condition_key() of a branch condition."""
        found = self._conditions.get(ast.id)
        if found is None:
            found = self._conditions[ast.id] = condition_key(ast)
        return found

    def calls_of(self, node: Node) -> list[Node]:
        """cnodes.calls_in() of a node of the function (callers do not change it)."""
        found = self.calls.get(node.id)
        if found is None:
            self._index(node)
            found = self.calls[node.id]
        return found

    def store_nodes(self, node: Node) -> list[Node]:
        """Declarations (``init_declarator``, ``DECLARE_*()``) and assignments under a
        statement, in tree order (what refcount's store_ops() reads)."""
        found = self._stores.get(node.id)
        if found is None:
            self._index(node)
            found = self._stores[node.id]
        return found

    def _index(self, node: Node) -> None:
        """One walk of a statement for both :meth:`calls_of` and :meth:`store_nodes` (the
        effects of a statement read both; each walking it was a tenth of an analysis); for
        a node of the function's own walk, slices of what that walk found."""
        found = self._spans.within(node.id) if self._spans is not None else None
        if found is not None:
            self._indexed(node, *found)
            return
        calls: list[Node] = []
        stores: list[Node] = []
        for n in descendants(node):
            self._collect(n, calls, stores)
        self._indexed(node, calls, stores)

    def _collect(self, n: Node, calls: list[Node], stores: list[Node]) -> None:
        kind = n.type
        if kind == "call_expression":
            calls.append(n)
            if _DECLARES.match(self.name_of(n)):
                stores.append(n)
        elif kind in ("init_declarator", "assignment_expression"):
            stores.append(n)

    def _indexed(self, node: Node, calls: list[Node], stores: list[Node]) -> None:
        calls.reverse()  # evaluation order: see cnodes.calls_in()
        self.calls.setdefault(node.id, calls)  # (keeps a list already handed out)
        self._stores.setdefault(node.id, stores)


class _Spans:
    """A function's named nodes in :func:`cnodes.descendants` order (a depth-first walk,
    last child first), each node's subtree as a span of that list, and the calls and the
    stores (what FunctionMemo._collect() keeps) with their places in it."""

    def __init__(self, fn: Node, name_of: Callable[[Node], str]) -> None:
        order: list[Node] = []
        end: list[int] = []  # by place in ``order``: where the node's subtree ends
        self.calls: list[Node] = []
        self.call_at: list[int] = []
        self.stores: list[Node] = []
        self.store_at: list[int] = []
        stack: list[Node | int] = [fn]
        pop, push, extend, add, mark = stack.pop, stack.append, stack.extend, order.append, end.append
        while stack:
            n = pop()
            if isinstance(n, int):  # the place of a node whose subtree ends here
                end[n] = len(order)
                continue
            at = len(order)
            add(n)
            kind = n.type
            if kind == "call_expression":
                self.calls.append(n)
                self.call_at.append(at)
                if _DECLARES.match(name_of(n)):
                    self.stores.append(n)
                    self.store_at.append(at)
            elif kind == "init_declarator" or kind == "assignment_expression":
                self.stores.append(n)
                self.store_at.append(at)
            children = n.named_children
            if children:
                mark(0)
                push(at)  # popped once the node's children (pushed next) are done
                extend(children)
            else:  # a leaf (half the nodes): its span ends here, no marker to pop
                mark(at + 1)
        self.order = order
        self.end = end
        self._start: dict[int, int] | None = None  # node id -> place, made when first asked

    def within(self, ident: int) -> tuple[list[Node], list[Node]] | None:
        """The calls and the stores under the node with this id, in walk order (new lists);
        None for a node the walk did not reach."""
        if self._start is None:
            self._start = {n.id: at for at, n in enumerate(self.order)}
        lo = self._start.get(ident)
        if lo is None:
            return None
        hi = self.end[lo]
        calls = self.calls[bisect.bisect_left(self.call_at, lo):bisect.bisect_left(self.call_at, hi)]
        stores = self.stores[bisect.bisect_left(self.store_at, lo):bisect.bisect_left(self.store_at, hi)]
        return calls, stores
