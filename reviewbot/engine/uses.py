"""What the path analyses ask of a statement besides its calls: is an object used after it
was released, what does a return hand back (an error or a value), and is a lock or a
reference still held only where the function succeeds (handed to its caller)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tree_sitter import Node

from reviewbot.engine.cfunc import node_text
from reviewbot.engine.cnodes import descendants
from reviewbot.engine.refspec import normalize
from reviewbot.engine.refstate import FAILED

if TYPE_CHECKING:  # the analyses import this module
    from reviewbot.engine.refcount import Analysis, State

_ERROR_RETURN = re.compile(r"^\(?\s*(-\s*E[A-Z0-9]+|ERR_PTR\s*\(.*|NULL|-\s*\d+|false)\s*\)?$", re.S)


def return_kind(ret: Node | None) -> str:
    """``return -ENOMEM;`` is an error exit, ``return 0;`` / ``return bdev;`` a value."""
    value = ret.named_children[0] if ret is not None and ret.named_children else None
    if value is None:
        return "void"
    return "error" if _ERROR_RETURN.match(node_text(value).strip()) else "value"


def handed_to_caller(analysis: Analysis, key: str, pair: str, line: int | None) -> bool:
    """Still held at a successful return, and at every other successful return, while an
    error return releases it: the function takes it for its caller (blkcg_conf_open_bdev()
    returns with the queue mutex held on success; a lookup returns with the reference)."""
    kind, _ = analysis.exits.get(line, ("void", []))
    if kind == "error":
        return False
    success = [held for k, sets in analysis.exits.values() if k != "error" for held in sets]
    failure = [held for k, sets in analysis.exits.values() if k == "error" for held in sets]
    return (bool(success) and all((key, pair) in held for held in success)
            and bool(failure) and any((key, pair) not in held for held in failure))


def uses_after_release(analysis: Analysis, ast: Node, state: State) -> list[tuple[str, int, str]]:
    """(object, line, how) for each use in ``ast`` of an object this path released and
    does not hold again: a dereference, or the object passed to a call."""
    # (A failed tryget leaves the object as good as it was: not a release.)
    gone = {key for key, pair in state.released if not pair.startswith(FAILED)} - {h.key for h in state.held}
    if not gone:
        return []
    out: list[tuple[str, int, str]] = []
    line = analysis.line(ast) or 0
    assigned = _assigned_names(ast)
    stack = [ast]
    while stack:
        n = stack.pop()
        if n.type == "call_expression" and _is_pair_call(analysis, analysis.name_of(n)):
            # A put or get of the object itself (`css_put(&memcg->css)`) is the double-
            # release check's; what the arguments dereference (`event->eventfd`) is a use.
            stack.extend(a for a in analysis.args_of(n) if analysis.key(a) not in gone)
            continue
        stack.extend(n.named_children)
        if n.type == "field_expression":
            arg = n.child_by_field_name("argument")
            key = analysis.key(arg) if arg is not None else ""
            if key in gone and key not in assigned:
                out.append((key, analysis.line(n) or line, f"dereferenced ({_short(n)})"))
        elif n.type == "call_expression":
            name = analysis.name_of(n)
            if name.startswith(("DECLARE_", "DEFINE_")):
                continue  # declares its first argument anew
            for a in analysis.args_of(n):
                key = analysis.key(a) if a.type in ("identifier", "pointer_expression") else ""
                if key in gone and key not in assigned:
                    out.append((key, analysis.line(n) or line, f"passed to {name}()"))
    return out


def _is_pair_call(analysis: Analysis, name: str) -> bool:
    return bool(analysis.c.matching(name)) \
        or bool(analysis.released_params(name))


def _assigned_names(ast: Node) -> set[str]:
    names: set[str] = set()
    for n in descendants(ast):
        if n.type == "assignment_expression":
            left = n.child_by_field_name("left")
            if left is not None and left.type == "identifier":
                names.add(normalize(node_text(left)))
    return names


def _short(node: Node) -> str:
    text = " ".join(node_text(node).split())
    return text if len(text) <= 40 else text[:37] + "..."


def only_local(analysis: Analysis, key: str) -> bool:
    """A reference on an object only this function names (an iterator's cursor, a
    lookup's result) reaches the caller through the return value or a store, which the
    walk sees; `return true;` from inside a for_each_mem_cgroup() walk hands nothing on.
    (A lock is another matter: the caller may unlock a local's lock it reaches by an
    out-parameter.)"""
    root = re.split(r"->|\.", key)[0]
    return bool(root) and root in analysis.locals and root not in parameters(analysis.view.node)


def parameters(fn: Node) -> frozenset[str]:
    """Names of a function definition's parameters."""
    return frozenset(parameter_list(fn))


def parameter_list(fn: Node) -> list[str]:
    """Names of a function definition's parameters, in order ("" for one without a name)."""
    decl = fn.child_by_field_name("declarator")
    while decl is not None and decl.type != "function_declarator":
        decl = decl.child_by_field_name("declarator")
    params = decl.child_by_field_name("parameters") if decl is not None else None
    names = []
    for p in params.named_children if params is not None else ():
        if p.type not in ("parameter_declaration", "variadic_parameter"):
            continue
        d = p.child_by_field_name("declarator")
        while d is not None and d.type not in ("identifier",):
            d = d.child_by_field_name("declarator")
        names.append(node_text(d) if d is not None else "")
    return names
