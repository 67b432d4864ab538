"""The ``ast`` engine: tree-sitter-c queries over a function, with kernel-aware predicates.

A rule gives a tree-sitter query and names the capture to report. Predicates narrow the
matches; each is a question a memcg reviewer asks of a line:

* ``where`` / ``where-not``: a capture's text matches (or not) a regex;
* ``inside-loop``: the match sits in the body of an iterator macro (``macros``), uses its
  task variable (``var-arg``/``var-in``), and no guard (``unless-guard``, e.g.
  ``thread_group_leader({var})``) precedes it in the body;
* ``unless-function`` / ``requires-function``: regexes over the whole function, with
  ``{capture}`` placeholders (``if (!{task}->mm)`` is the NULL check rule 13 looks for);
  with ``requires-are-evidence`` what they match is part of the construct (a patch that
  changes only a variable's declared type introduces the finding on its unchanged test);
* ``under-rcu``: between ``rcu_read_lock()`` and ``rcu_read_unlock()`` in source order;
* ``assigned-under-rcu``: the captured pointer was loaded inside that same RCU section;
* ``loaded-in-ended-rcu``: the captured pointer was last loaded inside an RCU section that
  ended before the match, with no get or tryget on it between the load and the match;
* ``stored-before``: the captured field was stored earlier in the function, directly or
  through a setter defined in the same patch, and the loaded value is then released (the
  "puts the new memcg" bug of R05);
* ``rcu-fields``: the captured field is ``__rcu`` (known fields, or declared so by the
  patch) and is accessed without an RCU accessor;
* ``through-helpers: CAPTURE``: that capture's ``where`` regex also matches a function of
  the patch whose body makes such a call (one level), and ``{call}`` in the message says
  which ("task_update_memcg() (which calls css_get())").

Before the query runs, a function must pass a cheap text prefilter: it must contain one of
the names of every ``where`` regex written as an anchored list of identifiers
(``'^(css_get|css_tryget)$'``), one of the ``inside-loop`` macros, and match the rule's own
``prefilter`` regex when it has one. Most functions a patch touches fail it, so most rules
never pay for a query (nor compile one).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable
from typing import Any

from tree_sitter import Node, Query, QueryCursor

from reviewbot.engine.cfunc import FunctionView, node_text
from reviewbot.engine.cnodes import view_text
from reviewbot.engine.csource import _LANGUAGE
from reviewbot.engine.refspec import normalize
from reviewbot.engine.types import PatchContext, RawFinding
from reviewbot.errors import BadInputError

_QUERIES: dict[str, Query] = {}


def compile_query(text: str, source: str = "rule") -> Query:
    if text not in _QUERIES:
        try:
            _QUERIES[text] = Query(_LANGUAGE, text)
        except Exception as exc:  # tree-sitter raises QueryError (and others by version)
            raise BadInputError(f"invalid tree-sitter query: {exc}", source=source) from exc
    return _QUERIES[text]


def _fill(template: str, captures: dict[str, str]) -> str:
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        return re.escape(captures[name]) if name in captures else m.group(0)

    return re.sub(r"\{(\w+)\}", sub, template)


def _fn_text(view: FunctionView, start_byte: int | None = None, end_byte: int | None = None) -> str:
    raw = view.node.text or b""
    base = view.node.start_byte
    lo = 0 if start_byte is None else max(0, start_byte - base)
    hi = len(raw) if end_byte is None else max(0, end_byte - base)
    return raw[lo:hi].decode("utf-8", errors="replace")


def _enclosing_loop(node: Node, macros: re.Pattern[str]) -> tuple[Node, Node] | None:
    parent = node.parent
    while parent is not None and parent.type != "function_definition":
        if parent.type == "while_statement":
            cond = parent.child_by_field_name("condition")
            call = cond.named_children[0] if cond is not None and cond.named_children else None
            if call is not None and call.type == "call_expression":
                fn = call.child_by_field_name("function")
                if fn is not None and macros.match(node_text(fn)):
                    return parent, call
        parent = parent.parent
    return None


_RCU_MARK = re.compile(rb"\brcu_read_(lock|unlock)\s*\(\s*\)")
_EARLY_EXIT = re.compile(rb"\s*;\s*(return|goto|break|continue)\b")


def _rcu_depth_before(view: FunctionView, node: Node) -> tuple[int, int]:
    """RCU nesting in source order before ``node``, and the byte where the section began.

    The function is scanned once (``view.memo``): after each rcu_read_lock()/unlock() the
    depth and the section's start; a node's answer is a binary search, not a scan.
    """
    return _rcu_depth_at(view, node.start_byte - view.node.start_byte)


def _rcu_depth_at(view: FunctionView, offset: int) -> tuple[int, int]:
    """_rcu_depth_before() at a byte offset of the function's text."""
    marks = view.memo.get("rcu")
    if marks is None:
        raw = view.node.text or b""
        ends: list[int] = []
        states: list[tuple[int, int]] = []
        depth, start = 0, 0
        for m in _RCU_MARK.finditer(raw):
            if m.group(1) == b"lock":
                depth += 1
                if depth == 1:
                    start = m.end()
            elif not _EARLY_EXIT.match(raw, m.end()):
                depth = max(0, depth - 1)
            # (An unlock right before a return or goto leaves the function, or jumps to
            # an exit: the code after its block is still in the section.)
            ends.append(m.end())
            states.append((depth, start))
        marks = view.memo["rcu"] = (ends, states)
    ends, states = marks
    # marks wholly before the node (the text scanned before ended at node.start_byte)
    i = bisect.bisect_right(ends, offset)
    depth, start = states[i - 1] if i else (0, 0)
    return depth, view.node.start_byte + start


def setters_of(views: list[FunctionView]) -> dict[str, set[str]]:
    """field -> names of functions (in the patch) that store into ``param->field``."""
    out: dict[str, set[str]] = {}
    for view in views:
        params = _params(view.node)
        text = _fn_text(view)
        for p in params:
            for m in re.finditer(
                rf"(?:rcu_assign_pointer\(\s*|WRITE_ONCE\(\s*|xchg\(\s*&|\b){re.escape(p)}->(\w+)"
                rf"(?:\s*,|\s*=[^=])",
                text,
            ):
                out.setdefault(m.group(1), set()).add(view.name)
    return out


def _params(fn: Node) -> list[str]:
    decl = fn.child_by_field_name("declarator")
    while decl is not None and decl.type != "function_declarator":
        decl = decl.child_by_field_name("declarator")
    params = decl.child_by_field_name("parameters") if decl is not None else None
    names = []
    for p in params.named_children if params is not None else []:
        d = p.child_by_field_name("declarator")
        while d is not None and d.type != "identifier":
            d = d.child_by_field_name("declarator")
        if d is not None:
            names.append(node_text(d))
    return names


def _rcu_declared(ctx: PatchContext) -> set[str]:
    cached = ctx.memo.get("rcu_declared")
    if isinstance(cached, set):
        return cached
    names: set[str] = set()
    for fc in ctx.files:
        for h in fc.diff.hunks:
            for ln in h.lines:
                if ln.kind == "+":
                    names.update(re.findall(r"__rcu\s*\*\s*(\w+)\s*;", ln.text))
    ctx.memo["rcu_declared"] = names
    return names


_FIELD_ACCESS = re.compile(r"^(?P<base>.+?)(?:->|\.)(?P<field>\w+)$")


def _bare_rcu_access(node: Node, accessors: re.Pattern[str]) -> bool:
    """True when a field expression is read or written without an RCU accessor."""
    child, parent = node, node.parent
    while parent is not None and parent.type not in (
        "expression_statement",
        "declaration",
        "return_statement",
        "if_statement",
        "function_definition",
    ):
        if parent.type == "call_expression":
            fn = parent.child_by_field_name("function")
            if fn is not None and accessors.match(node_text(fn)):
                return False
        if parent.type == "pointer_expression" and node_text(parent).startswith("&"):
            return False  # &mm->owner handed to a helper
        if parent.type in ("sizeof_expression", "offsetof_expression"):
            return False
        if parent.type == "assignment_expression" and parent.child_by_field_name("left") == child:
            right = parent.child_by_field_name("right")
            if right is not None and node_text(right).strip() in ("NULL", "0"):
                return False  # a NULL store needs no barrier (RCU_INIT_POINTER semantics)
        child, parent = parent, parent.parent
    return True


_NAME_LIST = re.compile(r"^\^(?:\(((?:[A-Za-z_]\w*\|)*[A-Za-z_]\w*)\)|([A-Za-z_]\w*))\$$")
_PREFILTERS: dict[int, tuple[dict[str, Any], tuple[Callable[[str], object], ...]]] = {}


def _any_of(names: tuple[str, ...]) -> Callable[[str], bool]:
    """The search of the regex ``a|b|c`` of plain names: whether one is a substring (what
    the regex answers, without trying every alternative at every offset of the text)."""
    return lambda text: any(name in text for name in names)


def prefilters(params: dict[str, Any]) -> tuple[Callable[[str], object], ...]:
    """Tests (regex searches) a function's text must all pass before the query can match
    anything.

    Derived only where it is implied: a capture whose text must equal one of a list of
    names (``where: {fn: '^(a|b)$'}``) is a substring of the function, and so is the
    iterator macro of ``inside-loop``. ``prefilter`` adds the rule author's own.
    """
    cached = _PREFILTERS.get(id(params))
    if cached is not None and cached[0] is params:
        return cached[1]
    found: list[Callable[[str], object]] = []
    through = params.get("through-helpers")
    for capture, rx in (params.get("where") or {}).items():
        if capture == through:
            continue  # the name may be a helper's: checked in run_ast with the patch's helpers
        m = _NAME_LIST.match(rx)
        if m:  # plain substrings: true of every text the capture can have
            found.append(_any_of(tuple((m.group(1) or m.group(2)).split("|"))))
    loop = params.get("inside-loop")
    if loop:
        found.append(re.compile(f"(?:{loop['macros']})").search)
    if params.get("prefilter"):
        found.append(re.compile(params["prefilter"]).search)
    out = tuple(found)
    _PREFILTERS[id(params)] = (params, out)
    return out


_CALL_NAME = re.compile(r"\b([A-Za-z_]\w*)\s*\(")


def _helpers_calling(ctx: PatchContext, rx: re.Pattern[str]) -> dict[str, str]:
    """Functions of the patch whose body calls a function ``rx`` matches: name -> that call."""
    key = f"helpers-calling:{rx.pattern}"
    cached = ctx.memo.get(key)
    if isinstance(cached, dict):
        return cached
    found: dict[str, str] = {}
    for view in ctx.all_post_views():
        body = view.node.child_by_field_name("body")
        for m in _CALL_NAME.finditer(node_text(body) if body is not None else ""):
            if rx.search(m.group(1)) and view.name not in found:
                found[view.name] = m.group(1)
    ctx.memo[key] = found
    return found


def run_ast(params: dict[str, Any], view: FunctionView, ctx: PatchContext, source: str) -> list[RawFinding]:
    if params.get("functions") and not re.search(params["functions"], view.name):
        return []
    if params.get("not-functions") and re.search(params["not-functions"], view.name):
        return []
    fn_text = view_text(view)  # (decoded once per function, for all the rules)
    if not all(test(fn_text) for test in prefilters(params)):
        return []
    where = {k: re.compile(v) for k, v in (params.get("where") or {}).items()}
    through = params.get("through-helpers")
    helpers: dict[str, str] = {}
    if through and through in where:
        helpers = _helpers_calling(ctx, where[through])
        direct = _NAME_LIST.match(params["where"][through])
        names = [*(direct.group(1) or direct.group(2)).split("|")] if direct else []
        if direct and not any(n in fn_text for n in [*names, *helpers]):
            return []
    query = compile_query(params["query"], source)
    report = params["report"]
    where_not = {k: re.compile(v) for k, v in (params.get("where-not") or {}).items()}
    loop = params.get("inside-loop")
    loop_macros = re.compile(f"^(?:{loop['macros']})$") if loop else None
    rcu: dict[str, Any] = params.get("rcu-fields") or {}
    accessors = re.compile(f"^(?:{rcu.get('accessors', _ACCESSORS)})$") if rcu else None
    out: list[RawFinding] = []
    seen: set[int] = set()
    for _, caps in QueryCursor(query).matches(view.node):
        nodes = {k: v[0] for k, v in caps.items() if v}
        if report not in nodes:
            continue
        if accessors is not None and (not _is_rcu_field(nodes[report], rcu, ctx)
                                      or not _bare_rcu_access(nodes[report], accessors)):
            # Asked first (every test here only filters): most of the field accesses a
            # query of every `a->b` matches are of no __rcu pointer.
            continue
        texts = {k: node_text(n) for k, n in nodes.items()}
        extra_caps: dict[str, str] = {}
        if through:
            # {call}: "css_get()", or "task_update_memcg() (which calls css_get())" for a
            # helper of the patch that makes the call: the same reference either way.
            name = texts.get(through, "")
            extra_caps = {"call": f"{name}()"}
            if name in helpers:
                texts = {**texts, through: helpers[name]}
                extra_caps = {"helper": name, "call": f"{name}() (which calls {helpers[name]}())"}
        if any(k not in texts or not rx.search(texts[k]) for k, rx in where.items()):
            continue
        if any(k in texts and rx.search(texts[k]) for k, rx in where_not.items()):
            continue
        target = nodes[report]
        extra: dict[str, str] = {}
        if loop and loop_macros is not None:
            found = _enclosing_loop(target, loop_macros)
            if found is None:
                continue
            loop_node, call = found
            args = call.child_by_field_name("arguments")
            arg_nodes = args.named_children if args is not None else []
            var_arg = loop.get("var-arg", 0)
            var = node_text(arg_nodes[var_arg]) if var_arg < len(arg_nodes) else ""
            extra = {"var": var, "loop": node_text(call.child_by_field_name("function") or call)}
            if loop.get("var-in") and not (
                var and re.search(rf"\b{re.escape(var)}\b", texts.get(loop["var-in"], ""))
            ):
                continue
            if loop.get("unless-guard"):
                body = loop_node.child_by_field_name("body")
                before = _fn_text(view, body.start_byte if body else loop_node.start_byte, target.start_byte)
                if re.search(_fill(loop["unless-guard"], {**texts, **extra}), before):
                    continue
        all_caps = {**texts, **extra, **extra_caps}
        if any(re.search(_fill(rx, all_caps), fn_text) for rx in params.get("unless-function") or []):
            continue
        required = [re.search(_fill(rx, all_caps), fn_text) for rx in params.get("requires-function") or []]
        if not all(required):
            continue
        evidence: tuple[int, ...] = ()
        if params.get("requires-are-evidence"):
            # What the requirement matched (a declaration) is part of the construct: a patch
            # that changes only that line (a type) still introduces the finding.
            evidence = tuple(ln for m in required if m is not None
                             if (ln := _line_at(view, fn_text, m.start())) is not None)
        if params.get("under-rcu") or params.get("assigned-under-rcu"):
            depth, section_start = _rcu_depth_before(view, target)
            if depth <= 0:
                continue
            spec = params.get("assigned-under-rcu")
            if spec:
                obj = normalize(texts.get(spec["capture"], ""))
                section = _fn_text(view, section_start, target.start_byte)
                loads = re.findall(rf"\b{re.escape(obj)}\s*=(?!=)\s*([^;]+);", section)
                if not loads:
                    continue
                if spec.get("exclude") and re.search(spec["exclude"], loads[-1]):
                    continue
                all_caps["source"] = loads[-1].strip()
        spec = params.get("loaded-in-ended-rcu")
        if spec:
            loaded = _loaded_in_ended_rcu(view, ctx, normalize(texts.get(spec["capture"], "")), target,
                                          spec.get("exclude"))
            if loaded is None:
                continue
            all_caps["source"] = loaded
        spec = params.get("stored-before")
        if spec:
            hit = _stored_before(view, ctx, nodes, texts, spec, all_caps)
            if hit is None:
                continue
            all_caps.update(hit)
        if target.start_byte in seen:
            continue
        seen.add(target.start_byte)
        line = view.line(target)
        all_caps.setdefault("detail", "")
        all_caps["function"] = view.name
        out.append(RawFinding(line, view.name, all_caps, ((line,) if line else ()) + evidence))
    return out


def _loaded_in_ended_rcu(view: FunctionView, ctx: PatchContext, obj: str, target: Node,
                         exclude: str | None) -> str | None:
    """What ``obj`` was last loaded from, when that load sat in an RCU read-side section
    that ended before ``target`` and nothing took a reference on it since; else None."""
    if not re.fullmatch(r"\w+", obj) or _rcu_depth_before(view, target)[0] > 0:
        return None
    raw = (view.node.text or b"")[: target.start_byte - view.node.start_byte]
    loads = list(re.finditer(rb"\b" + re.escape(obj.encode()) + rb"\s*=(?!=)\s*([^;]+);", raw))
    if not loads or _rcu_depth_at(view, loads[-1].start())[0] <= 0:
        return None
    source = loads[-1].group(1).decode("utf-8", errors="replace").strip()
    call = re.match(r"(\w+)\s*\(", source)
    if (exclude and re.search(exclude, source)) or (call and ctx.facts.returned_ref(call.group(1))):
        return None  # not an RCU-protected pointer: a reference the callee hands over
    pinned = rb"\b\w*(get|tryget|grab|hold)\w*\s*\([^;]*\b" + re.escape(obj.encode()) + rb"\b"
    return None if re.search(pinned, raw[loads[-1].end():]) else source


def _line_at(view: FunctionView, fn_text: str, offset: int) -> int | None:
    """File line of a character offset of the function's text."""
    return view.rows.get(view.node.start_point[0] + fn_text.count("\n", 0, offset))


_ACCESSORS = (
    r"rcu_dereference\w*|rcu_access_pointer|rcu_assign_pointer|RCU_INIT_POINTER|"
    r"rcu_replace_pointer|READ_ONCE|WRITE_ONCE|xchg|cmpxchg|rcu_pointer_handoff|"
    r"unrcu_pointer|smp_load_acquire|smp_store_release"
)


def _is_rcu_field(node: Node, spec: dict[str, Any], ctx: PatchContext) -> bool:
    m = _FIELD_ACCESS.match(re.sub(r"\s+", "", node_text(node)))
    if m is None:
        return False
    base, field = m.group("base"), m.group("field")
    for known in spec.get("known") or []:
        if known["field"] == field and re.search(known["base"], base):
            return True
    if spec.get("from-facts") and ctx.facts.is_rcu_field(field):
        return True  # __rcu wherever the base declares that name
    return bool(spec.get("declared-in-patch")) and field in _rcu_declared(ctx)


def _stored_before(
    view: FunctionView,
    ctx: PatchContext,
    nodes: dict[str, Node],
    texts: dict[str, str],
    spec: dict[str, Any],
    caps: dict[str, str],
) -> dict[str, str] | None:
    src = texts.get(spec["capture"], "")
    inner = re.sub(r"^\s*(?:rcu_dereference\w*|READ_ONCE|rcu_access_pointer)\s*\((.*?)(?:,[^,()]*)?\)\s*$", r"\1", src)
    m = _FIELD_ACCESS.match(re.sub(r"\s+", "", inner))
    if m is None:
        return None
    base, field = m.group("base"), m.group("field")
    node = nodes[spec["capture"]]
    before = _fn_text(view, end_byte=node.start_byte)
    after = _fn_text(view, start_byte=node.end_byte)
    b, f = re.escape(base), re.escape(field)
    direct = re.search(
        rf"(?:rcu_assign_pointer\(\s*{b}->{f}\s*,|WRITE_ONCE\(\s*{b}->{f}\s*,|xchg\(\s*&{b}->{f}\s*,|"
        rf"\b{b}->{f}\s*=(?!=))",
        before,
    )
    setter = None
    if direct is None:
        setters = ctx.memo.get("setters")
        if not isinstance(setters, dict):
            setters = ctx.memo["setters"] = setters_of(ctx.all_post_views())
        for name in sorted(setters.get(field, ())):
            if name != view.name and re.search(rf"\b{re.escape(name)}\s*\(\s*{b}\s*,", before):
                setter = name
                break
        if setter is None:
            return None
    release = spec.get("release")
    if release and not re.search(_fill(release, caps), after):
        return None
    how = f"{setter}()" if setter else "the store above"
    return {"stored_by": how, "field_expr": f"{base}->{field}"}
