"""The ``field-stores`` analysis of the ``refcount`` engine: the cross-function view.

A field that one function of the patch fills with a counted reference (store + get) and
another fills without one: whoever drops the field later cannot know whether there is a
reference to put.
"""

from __future__ import annotations

import re
from typing import Any

from reviewbot.engine.cfunc import FunctionView
from reviewbot.engine.refspec import NULL_RE, _needle, config_for, finds_call, normalize
from reviewbot.engine.types import RawFinding

_FIELD_STORE = re.compile(r"^\s*(?P<base>[\w>.\[\]-]+?)(?:->|\.)(?P<field>\w+)\s*=\s*(?P<value>[^=;][^;]*);")


def run_field_stores(params: dict[str, Any], views: list[FunctionView]) -> list[RawFinding]:
    """Flag stores of a counted pointer into ``X->field`` without taking a reference when
    another function of the patch stores into the same field *with* one.

    Real case: hugetlb_cgroup 2020 (075a61d07a8e): copy_hugetlb_cgroup_uncharge_info() did
    ``nrg->css = rg->css; css_get(rg->css)`` while record_hugetlb_cgroup_uncharge_info()
    did ``nrg->css = &h_cg->css`` without a get; fixed by 014 (d85aecf2844f).
    """
    config, _ = config_for(params)
    acquire_names = [s.call for p in config.pairs for s in p.acquire if not p.keyless]
    # Any acquire call at all in a function? (Patterns are "^(?:name)$"; refspec's needle
    # of them, which finds_call() answers without scanning every word with the regex.)
    any_acquire = _needle([rx.pattern[4:-2] for rx in acquire_names])
    counted: dict[str, list[tuple[FunctionView, int]]] = {}
    uncounted: dict[str, list[tuple[FunctionView, int, str]]] = {}
    for view in views:
        fn_start, fn_end = view.node.start_point[0], view.node.end_point[0]
        body = [
            (ln, view.text_lines[row])
            for row, ln in sorted(view.rows.items())
            if fn_start <= row <= fn_end and row < len(view.text_lines)
        ]
        fn_text = "\n".join(t for _, t in body)
        takes_refs = bool(acquire_names) and finds_call(any_acquire, fn_text)
        for ln, text in body:
            m = _FIELD_STORE.match(text)
            if not m or NULL_RE.match(m.group("value").strip()):
                continue
            value = normalize(m.group("value"))
            if not re.fullmatch(r"[\w>.-]+", value):
                continue
            field = m.group("field")
            stored = f"{m.group('base')}->{field}"
            # Names of the calls that take the value or the field as first argument.
            calls = [
                name
                for target in (value, stored)
                if takes_refs
                for name in re.findall(rf"\b(\w+)\s*\(\s*&?\(?\s*{re.escape(target)}\b", fn_text)
            ]
            got = any(rx.search(name) for name in calls for rx in acquire_names)
            if got:
                counted.setdefault(field, []).append((view, ln))
            else:
                # Pre-existing uncounted stores are filtered by the base comparison.
                uncounted.setdefault(field, []).append((view, ln, m.group("value").strip()))
    out = []
    for field, stores in uncounted.items():
        if field not in counted:
            continue
        ref_view, ref_line = counted[field][0]
        for view, ln, value in stores:
            if view is ref_view:
                continue
            detail = (
                f"{view.name}() stores `{value}` into ->{field} without taking a reference, "
                f"but {ref_view.name}() (line {ref_line}) takes one for every pointer it stores "
                f"there, so the field's reference count depends on which path filled it"
            )
            out.append(
                RawFinding(
                    line=ln,
                    function=view.name,
                    captures={"detail": detail, "field": field, "value": value},
                    evidence=(ln, ref_line),
                )
            )
    return out
