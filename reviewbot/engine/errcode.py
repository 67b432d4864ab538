"""Error paths that return success: smatch's "missing error code" for the functions a patch
touches.

A kernel function reports failure through a negative errno in the variable it returns
(``ret``, ``err``, ``retval``). When a later failure test (an allocation that returned
NULL, an ``IS_ERR()`` pointer, another call's negative result) leaves through ``goto out``
to ``return ret;`` while ``ret`` still holds the 0 of an earlier success, the caller is
told that everything worked: the refactor that dropped ``retval = validate_change(...)``
in a 2025 cpuset series did exactly this.

The analysis is a must-dataflow over the function's CFG (engine/cfg.py): for each signed
local the function returns by name, whether it is certainly 0 on every path into a node
(an ``= 0``, or the success edge of a test of it: ``if (ret)``, ``if (ret < 0)``). At
each failure test whose true edge reaches ``return VAR;`` with no assignment of VAR on the
way (straight-line code inside the branch, then any path after a ``goto``), VAR certainly
0 there is the finding. A loop's ``continue``/``break`` on failure is a skip, not an error
return, and ends the search.
"""

from __future__ import annotations

import re

from tree_sitter import Node

from reviewbot.engine import cfg
from reviewbot.engine.cfunc import FunctionView, node_text
from reviewbot.engine.cnodes import view_text
from reviewbot.engine.types import RawFinding

# Allocation calls: NULL means out of memory, an error whatever the caller does next.
_ALLOC = re.compile(
    r"^(?:k[mz]alloc\w*|kcalloc\w*|kv[mz]alloc\w*|kvcalloc|kmem_cache_z?alloc\w*|v[mz]alloc\w*|"
    r"kstrn?dup\w*|kmemdup\w*|z?alloc_\w+|__alloc_\w+|\w+_z?alloc|mempool_alloc|"
    r"(?:alloc|zalloc)_cpumask_var\w*)$"
)
_WRAPPERS = ("unlikely", "likely", "WARN_ON", "WARN_ON_ONCE")
_SIGNED_DECL = r"\b(?:int|long)\s+(?:[^;(){{}}=]*,\s*)?\*?{var}\s*[;,=]"
# ...that carries an error code: set to -E... or PTR_ERR(), or tested and left with
# (`if (ret) return ret;`, `if (err < 0) goto out;`); a count the function returns
# (cpuset's generate_sched_domains() returns `ndoms`) is not one.
_ERRNO_VAR = (r"\b{var}\s*=\s*(?:-E[A-Z]+\b|PTR_ERR\b)|"
              r"\bif\s*\(\s*(?:unlikely\(\s*)?{var}\s*(?:<\s*0\s*)?\)\s*\)?\s*(?:return\s+{var}\b|goto\b)")
_MAX_FOLLOW = 400  # nodes followed from one failure test to a return

ZERO, OTHER = "zero", "other"
State = dict[str, str]


def _unwrap(node: Node | None) -> Node | None:
    """Strip parentheses and unlikely()/WARN_ON() (which return their condition)."""
    while node is not None:
        if node.type == "parenthesized_expression" and node.named_children:
            node = node.named_children[0]
            continue
        if node.type == "call_expression":
            fn = node.child_by_field_name("function")
            args = node.child_by_field_name("arguments")
            if fn is not None and node_text(fn) in _WRAPPERS and args is not None \
                    and len(args.named_children) == 1:
                node = args.named_children[0]
                continue
        return node
    return None


def _call_name(node: Node | None) -> str:
    if node is None or node.type != "call_expression":
        return ""
    fn = node.child_by_field_name("function")
    return node_text(fn) if fn is not None else ""


def _condition(branch: cfg.CNode) -> Node | None:
    ast = branch.ast
    if ast is None:
        return None
    cond = ast.child_by_field_name("condition") if ast.type != "parenthesized_expression" else ast
    return _unwrap(cond if cond is not None else ast)


class _Function:
    def __init__(self, view: FunctionView) -> None:
        self.view = view
        self.text = view_text(view)
        returned = set(re.findall(r"\breturn\s+(\w+)\s*;", self.text))
        self.vars = sorted(v for v in returned
                           if re.search(_SIGNED_DECL.format(var=re.escape(v)), self.text)
                           and re.search(_ERRNO_VAR.format(var=re.escape(v)), self.text))
        if not self.vars:
            self.allocated: set[str] = set()
            self.called: set[str] = set()
            return  # nothing to check: spare the assignment scans
        self.allocated = {m.group(1) for m in re.finditer(r"\b(\w+)\s*=\s*(\w+)\s*\(", self.text)
                          if _ALLOC.match(m.group(2))}
        self.called = {m.group(1) for m in re.finditer(r"\b(\w+)\s*=\s*[\w>.-]+\s*\(", self.text)}

    # --- what a node does to the variables ------------------------------------------------
    def assigned(self, node: Node | None) -> State:
        """Variables a node assigns: ZERO for `= 0` (also in a declaration), else OTHER."""
        out: State = {}
        if node is None:
            return out
        stack = [node]
        while stack:
            n = stack.pop()
            if n.type in ("assignment_expression", "init_declarator"):
                left = n.child_by_field_name("left") or n.child_by_field_name("declarator")
                right = n.child_by_field_name("right") or n.child_by_field_name("value")
                name = node_text(left) if left is not None else ""
                if name in self.vars:
                    op = n.child_by_field_name("operator")
                    plain = n.type == "init_declarator" or (op is not None and node_text(op) == "=")
                    out[name] = ZERO if plain and right is not None and node_text(right) == "0" else OTHER
            elif n.type == "update_expression" or (n.type == "pointer_expression" and node_text(n)[:1] == "&"):
                name = node_text(n.named_children[0]) if n.named_children else ""
                if name in self.vars:
                    out[name] = OTHER
            stack.extend(n.named_children)
        return out

    def tested(self, cond: Node | None) -> tuple[str, bool] | None:
        """(VAR, edge on which VAR is 0) for a test of a returned variable itself."""
        if cond is None:
            return None
        text = node_text(cond).replace(" ", "")
        for var in self.vars:
            if text in (var, f"{var}!=0", f"{var}<0", f"IS_ERR_VALUE({var})"):
                return var, False  # the false edge is success
            if text in (f"!{var}", f"{var}==0", f"{var}>=0"):
                return var, True
        return None

    def failure(self, cond: Node | None) -> str:
        """The failure a branch tests on its true edge ('' when it is not one)."""
        if cond is None:
            return ""
        if cond.type == "call_expression" and _call_name(cond) in ("IS_ERR", "IS_ERR_OR_NULL"):
            return node_text(cond)
        if cond.type == "unary_expression" and node_text(cond)[:1] == "!":
            inner = _unwrap(cond.named_children[0]) if cond.named_children else None
            if inner is not None and inner.type == "identifier" and node_text(inner) in self.allocated:
                return node_text(cond)
            if _ALLOC.match(_call_name(inner)):
                return node_text(cond)
        if cond.type == "binary_expression":
            op = cond.child_by_field_name("operator")
            left, right = cond.child_by_field_name("left"), cond.child_by_field_name("right")
            if op is not None and node_text(op) == "<" and right is not None and node_text(right) == "0":
                left = _unwrap(left)
                if left is not None and left.type == "call_expression":
                    return node_text(cond)
                if left is not None and left.type == "identifier" and node_text(left) not in self.vars \
                        and node_text(left) in self.called:
                    return node_text(cond)
        return ""


def _meet(a: State | None, b: State) -> State:
    if a is None:
        return dict(b)
    return {v: ZERO if a.get(v) == ZERO and b.get(v) == ZERO else OTHER for v in {*a, *b}}


def _flow(fn: _Function, graph: cfg.Graph) -> dict[int, State]:
    """State on entry of every node: VAR -> ZERO when 0 on every path reaching it."""
    entry: dict[int, State] = {graph.entry.ident: {v: OTHER for v in fn.vars}}
    work = [graph.entry]
    rounds = 0
    while work and rounds < 20000:
        rounds += 1
        node = work.pop()
        state = dict(entry[node.ident])
        cond = _condition(node) if node.kind in ("branch", "iter") else None
        state.update(fn.assigned(node.ast if node.kind != "branch" else cond))
        tested = fn.tested(cond) if node.kind == "branch" else None
        for i, nxt in enumerate(node.succ):
            out = state
            if tested is not None and len(node.succ) == 2:
                var, zero_edge = tested
                out = {**state, var: ZERO if (i == 0) == zero_edge else OTHER}
            merged = _meet(entry.get(nxt.ident), out)
            if merged != entry.get(nxt.ident):
                entry[nxt.ident] = merged
                work.append(nxt)
    return entry


def _returns_unassigned(fn: _Function, start: cfg.CNode, var: str) -> cfg.CNode | None:
    """A `return VAR;` reached from a failure branch's true edge with VAR unassigned:
    straight-line code inside the branch, then any path once a goto has jumped."""
    stack: list[tuple[cfg.CNode, bool]] = [(start, False)]
    seen: set[tuple[int, bool]] = set()
    while stack and len(seen) < _MAX_FOLLOW:
        node, jumped = stack.pop()
        if (node.ident, jumped) in seen:
            continue
        seen.add((node.ident, jumped))
        if node.kind == "return":
            value = node.ast.named_children[0] if node.ast is not None and node.ast.named_children else None
            if value is not None and node_text(value) == var:
                return node
            continue
        if node.kind in ("end", "unknown"):
            continue
        if node.ast is not None and node.ast.type in ("continue_statement", "break_statement"):
            continue  # a skip of one item, not an error return
        if var in fn.assigned(node.ast):
            continue
        jumped = jumped or node.jump.startswith("goto")
        if node.kind in ("branch", "iter") and not jumped:
            continue  # more decisions inside the failure branch: not a plain error exit
        stack.extend((n, jumped) for n in node.succ)
    return None


def missing_error_codes(view: FunctionView) -> list[RawFinding]:
    if "return" not in view_text(view):
        return []
    fn = _Function(view)
    if not fn.vars:
        return []
    graph = cfg.build(view.node, view.partial)
    states = _flow(fn, graph)
    out: list[RawFinding] = []
    for node in graph.nodes:
        if node.kind != "branch" or len(node.succ) != 2 or node.ident not in states:
            continue
        cond = _condition(node)
        what = fn.failure(cond)
        if not what:
            continue
        state = {**states[node.ident], **fn.assigned(cond)}
        for var in fn.vars:
            if state.get(var) != ZERO:
                continue
            ret = _returns_unassigned(fn, node.succ[0], var)
            if ret is None or ret.ast is None:
                continue
            line, back = view.line(node.ast) if node.ast is not None else None, view.line(ret.ast)
            if line is None or back is None:
                continue
            if view.added and not ({line, back} & view.added):
                continue  # neither the test nor the exit is the patch's
            out.append(RawFinding(line, view.name, {
                "detail": (f"the failure `{what}` at line {line} leaves through `return {var};` "
                           f"at line {back}, but `{var}` is 0 on every path to that test: the "
                           f"error path reports success"),
                "var": var, "test": what}, (line, back)))
            break
    return out
