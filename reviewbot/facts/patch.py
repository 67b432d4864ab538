"""Facts of a patch's own functions, on top of the base's: a helper the patch adds (or
changes) is judged by its new body, and its calls into the base by the base's facts."""

from __future__ import annotations

from typing import Any

from reviewbot.engine.cfunc import FunctionView, node_text
from reviewbot.facts.derive import derive
from reviewbot.facts.extract import (
    Definition,
    calls_of,
    cleanup_definitions,
    dispatch_info,
    fp_params,
    kept_allocations,
    stores_of,
)
from reviewbot.facts.knowledge import Knowledge, load_knowledge
from reviewbot.facts.returnrefs import return_info
from reviewbot.facts.slabcaches import slab_cache_creations
from reviewbot.facts.tables import Facts


def definition_of(view: FunctionView) -> Definition | None:
    body = view.node.child_by_field_name("body")
    if body is None:
        return None
    header = node_text(view.node)[: body.start_byte - view.node.start_byte]
    params: tuple[str, ...] = ()
    decl = view.node.child_by_field_name("declarator")
    while decl is not None and decl.type != "function_declarator":
        decl = decl.child_by_field_name("declarator")
    plist = decl.child_by_field_name("parameters") if decl is not None else None
    if plist is not None:
        params = tuple(node_text(p) for p in plist.named_children
                       if p.type == "parameter_declaration" and node_text(p) != "void")
    # The body from its first line start, so that indentation marks top-level calls.
    text = "\n".join(view.text_lines[body.start_point[0] : body.end_point[0] + 1])
    before_name = header.split(view.name + "(")[0] if view.name + "(" in header else header
    stores = stores_of(text)
    calls = calls_of(text)
    pointers = fp_params(params)
    fp_body = text if pointers and any(c.name in pointers for c in calls) else ""
    returned, assigned = return_info(text, before_name)
    types, fp_stores = dispatch_info(f"{header}\n{text}", calls)
    return Definition(view.name, view.file, view.lines()[0] if view.lines() else 0,
                      local="static" in header.split() and view.file.endswith(".c"),
                      params=params, calls=calls, stores=stores, fp_body=fp_body,
                      returns_void=before_name.rstrip().endswith("void"),
                      kept_allocs=kept_allocations(text, stores),
                      returned=returned, assigned=assigned, slab_caches=slab_cache_creations(text),
                      types=types, fp_stores=fp_stores)


def patch_facts(views: list[FunctionView], base: Facts, knowledge: Knowledge | None = None) -> Facts:
    """The base facts overlaid with those of the patch's post-image functions. A partial
    function (only a hunk seen) still tells what the hunk calls."""
    k = knowledge or load_knowledge()
    defs = [d for d in (definition_of(v) for v in views) if d is not None]
    # The cleanup classes (DEFINE_FREE) of the sources the views come from: a patch that
    # adds one and a `__free()` user (each source once; a whole file in tree mode).
    sources = {id(v.text_lines): v for v in views}
    for v in sources.values():
        defs.extend(cleanup_definitions("\n".join(v.text_lines), v.file))
    if not defs:
        return base
    own = derive(defs, k, base=base)
    # (A name the patch also shows only in part is not whole: a `static inline` stub of a
    # header would otherwise vouch for what a hunk of the real function shows.)
    whole = {v.name for v in views if not v.partial} - {v.name for v in views if v.partial}
    own.defined = sorted(whole)
    own.partly = sorted({v.name for v in views if v.partial} - whole)
    # Most lock effects need the whole body (a hunk shows a lock whose unlock is outside
    # it); a sleeping call seen in a hunk is a sleep whatever the rest does.
    # (A release seen in a hunk is a release: those stay.)
    # So do the references a function returns (one return the hunk does not show may be
    # a borrowed pointer).
    # A hunk that shows a function from its signature shows what it does first on every
    # run: the locks it takes there (a new cgroup_task_dead() split over two hunks takes
    # css_set_lock) and the locks it asserts are its caller's are facts.
    from_start = {v.name for v in views if not v.partial or v.first_row > 0} \
        - {v.name for v in views if v.partial and v.first_row == 0}
    for table in (own.locks, own.requires):
        for name in [n for n in table if n not in from_start]:
            del table[name]
    partial_tables: tuple[dict[str, Any], ...] = (own.unlocks, own.keeps, own.indirect, own.returns)
    for table in partial_tables:
        for name in [n for n in table if n not in whole]:
            del table[name]
    return base.overlay(own)
