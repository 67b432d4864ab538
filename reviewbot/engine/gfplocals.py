"""GFP flags carried by a local variable (``gfp_t gfp = GFP_KERNEL; ... kmalloc(n, gfp)``):
the sleep-in-atomic check reads an allocation's flags from its arguments, and a local that
only ever holds blocking flags blocks the same way as the constant. The accounting check
reads the same locals for ``__GFP_ACCOUNT`` (``gfp_t gfp = GFP_KERNEL_ACCOUNT;``)."""

from __future__ import annotations

from tree_sitter import Node

from reviewbot.engine.cfunc import FunctionView, node_text
from reviewbot.engine.cnodes import descendants
from reviewbot.facts.knowledge import Knowledge

__all__ = ["gfp_local_values", "gfp_locals"]


def gfp_locals(view: FunctionView, k: Knowledge) -> dict[str, str]:
    """Locals every plain assignment of which is a blocking GFP flag, and that flag. A
    local also assigned something else (``gfp = GFP_ATOMIC`` on some path, a caller's
    flags), and a parameter (whatever the caller passed), are left out. Once per view."""
    found = view.memo.get("gfp-locals")
    if isinstance(found, dict):
        return found
    values = gfp_local_values(view)
    found = {}
    for name, all_texts in values.items():
        # (A compound update, `gfp |= __GFP_NOWARN`, was never read here.)
        texts = [t for t in all_texts if not t.startswith(_COMPOUND)]
        flag = [m.group(0) for t in texts if (m := k.blocking_gfp.search(t))]
        if len(flag) == len(texts):
            found[name] = flag[0]
    view.memo["gfp-locals"] = found
    return found


def gfp_local_values(view: FunctionView) -> dict[str, tuple[str, ...]]:
    """Locals every plain assignment of which is a GFP flags expression, with those
    expressions in order; a compound update is kept with its operator (``gfp = GFP_KERNEL;
    if (x) gfp |= __GFP_ACCOUNT;`` gives ``("GFP_KERNEL", "|= __GFP_ACCOUNT")``).
    Parameters are left out. Once per view."""
    found = view.memo.get("gfp-local-values")
    if isinstance(found, dict):
        return found
    flags: dict[str, list[str]] = {}
    compound: dict[str, list[str]] = {}
    other: set[str] = set()
    lists: list[Node] = []
    for node in descendants(view.node):
        if node.type == "parameter_list":
            lists.append(node)
            continue
        if node.type == "init_declarator":
            target, value = node.child_by_field_name("declarator"), node.child_by_field_name("value")
        elif node.type == "assignment_expression" and (op := node.child_by_field_name("operator")) \
                is not None:
            target, value = node.child_by_field_name("left"), node.child_by_field_name("right")
            if node_text(op) != "=" and target is not None and value is not None:
                if target.type == "identifier":
                    compound.setdefault(node_text(target), []).append(f"{node_text(op)} {node_text(value)}")
                continue
        else:
            continue
        if target is None or value is None or target.type != "identifier":
            continue
        # Only a flags expression (`GFP_KERNEL | __GFP_ZERO`), not an allocation that was
        # passed the flags (`p = kmalloc(n, GFP_KERNEL)`).
        text = node_text(value)
        if _flags_only(value) and "GFP_" in text:
            flags.setdefault(node_text(target), []).append(" ".join(text.split()))
        else:
            other.add(node_text(target))
    params = _parameter_names(lists)
    found = {name: (*v, *compound.get(name, ())) for name, v in flags.items()
             if name not in other and name not in params}
    view.memo["gfp-local-values"] = found
    return found


_COMPOUND = ("|=", "&=", "^=", "+=", "-=")


def _flags_only(value: Node) -> bool:
    return all(n.type in ("identifier", "binary_expression", "parenthesized_expression",
                          "unary_expression") for n in descendants(value))


def _parameter_names(lists: list[Node]) -> set[str]:
    """Identifiers declared in a parameter list: those whose nearest parameter list or
    block above them is a parameter list (the function's own, or a function pointer's).
    Read down from the lists rather than up from every identifier of the function (that
    climb cost a few per cent of a context walk)."""
    names: set[str] = set()
    stack = list(lists)
    while stack:
        node = stack.pop()
        for child in node.named_children:
            if child.type == "identifier":
                names.add(node_text(child))
            elif child.type != "compound_statement":
                stack.append(child)  # (a nested parameter list is read again: a set)
    return names
