"""Functions that return a reference to their caller, learnt from their bodies.

kernel.yaml names the lookups that hand out a reference (``get_task_mm()``,
``get_mem_cgroup_from_mm()``, ``fget()``...), but the tree has many more wrappers of
them, and their callers owe a put just the same: ``mem_cgroup_get_oom_group()`` ends in
``css_get(&oom_group->css); ... return oom_group;``, ``get_proc_task()`` is ``return
get_pid_task(...)``. A function counts as one when every value it returns is either

* a reference: the result of a call that returns one (kernel.yaml's ``returns: true``
  acquires, or a function found here, transitively up to :data:`RETURN_DEPTH` calls), or
  a local variable that holds such a result or on which the body takes a reference
  (``css_get(&v->css)``, ``get_task_struct(v)``, a tryget: the failed branch sets NULL
  or returns an error, which the caller tests anyway), or
* nothing a caller could put: ``NULL``, ``0``, ``ERR_PTR()``/``ERR_CAST()``, or a global
  that no reference counts (``return root_mem_cgroup;``: the root css is never freed),

and at least one is a reference. Anything else returned (a field, a parameter, another
local) makes the answer "borrowed on some path": not a fact. So does a body that stores
the variable into a field or links it into a structure (the reference is that
structure's, the return value a borrowed copy), and a function that drops a reference
of one of its parameters (an iterator step: ``mem_cgroup_iter(root, prev)`` puts
``prev`` and returns the next, which the iterator rules handle). A function whose name
says put/free/release is never one.

The walk is over :class:`~reviewbot.facts.extract.Definition` fields filled by
:func:`return_info` (the return expressions and the ``v = call(...)`` assignments of a
pointer-returning body), so it stays a regex pass like the other facts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from reviewbot.engine.refspec import normalize

if TYPE_CHECKING:  # extract.py fills Definition with return_info(): no import cycle
    from reviewbot.facts.extract import Definition
    from reviewbot.facts.knowledge import Knowledge

__all__ = ["RETURN_DEPTH", "return_info", "returned_references"]

# Wrappers of wrappers: get_proc_task() -> get_pid_task() is one level; kernel helpers
# that hand out references are shallow, and a longer chain is more likely to lose the
# reference on the way than to pass it on unchanged.
RETURN_DEPTH = 3
# Bounds on what one body contributes (generated or hostile code).
_MAX_RETURNS = 24
_MAX_EXPR = 160

_RETURN = re.compile(r"\breturn\b\s*([^;]*);")
# `v = call(`, also in a declaration (`struct x *v = call(`), not `==`, `!=`, `<=`, `>=`.
_ASSIGN_CALL = re.compile(r"\b([A-Za-z_]\w*)\s*(?<![=!<>+\-*/&|^%])=(?!=)\s*(?:\([^()]*\)\s*)?([A-Za-z_]\w*)\s*\(")
_ASSIGN_ANY = re.compile(r"\b([A-Za-z_]\w*)\s*(?:\[[^\]]*\])?\s*(?<![=!<>])=(?!=)")
_NEUTRAL = re.compile(r"^(?:NULL|0|0UL|\(void\s*\*\)\s*0|ERR_PTR\s*\(.*\)|ERR_CAST\s*\(.*\)|"
                      r"IOMEM_ERR_PTR\s*\(.*\))$", re.DOTALL)
_CALL = re.compile(r"^([A-Za-z_]\w*)\s*\((.*)\)$", re.DOTALL)
_IDENT = re.compile(r"^[A-Za-z_]\w*$")
_GLOBAL_ADDR = re.compile(r"^&\s*[A-Za-z_][\w.]*$")
_CAST = re.compile(r"^\(\s*(?:const\s+)?(?:struct\s+)?\w+\s*\*+\s*\)\s*")
_POINTER_RETURN = re.compile(r"\*\s*$")
_EMBEDDED = ("kref", "percpu_ref")  # counters that live inside the object they count
_RELEASE_NAME = re.compile(r"(?:^|_)(put|release|free|destroy|drop|unref)(?:_|$)")
# A call that links an object into something that outlives the function (a list, a
# tree, an xarray, a registry): the object is the structure's, not the caller's.
_LINKS = re.compile(r"(?:^|_)(add|insert|store|link|register|enqueue|push|install|publish|"
                    r"attach|hash|assign)(?:_|$)|^(?:idr_alloc\w*|xa_alloc\w*|rb_link_node)$")


def return_info(body: str, head: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """(return expressions, ``(variable, callee)`` assignments) of a body whose signature
    before the name is ``head``; empty unless the function returns a pointer."""
    if not _POINTER_RETURN.search(head) or "return" not in body:
        return (), ()
    returned = []
    for m in _RETURN.finditer(body):
        expr = " ".join(m.group(1).split())
        returned.append(expr[:_MAX_EXPR])
        if len(returned) >= _MAX_RETURNS:
            break
    assigned = tuple(sorted({(m.group(1), m.group(2)) for m in _ASSIGN_CALL.finditer(body)}))
    locals_set = {m.group(1) for m in _ASSIGN_ANY.finditer(body)}
    # Assigned names that are not a call's result are kept as (name, "") so that a
    # returned local is never mistaken for a global.
    extra = tuple((name, "") for name in sorted(locals_set - {a for a, _ in assigned}))
    return tuple(returned), assigned + extra


def _strip(expr: str) -> str:
    text = expr.strip()
    changed = True
    while changed:
        before = text
        if text.startswith("(") and text.endswith(")") and balanced_parens(text[1:-1]):
            text = text[1:-1].strip()
        text = _CAST.sub("", text)
        changed = text != before
    return text


def balanced_parens(text: str) -> bool:
    """Parentheses of ``text`` close in order (``(a) && (b)`` is not one parenthesised whole)."""
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


Known = Callable[[str], list[str]]


def _reference_of(d: Definition, k: Knowledge, known: Known, var: str) -> list[str]:
    """[object, chain...] of the reference the body holds in local ``var``; [] if none."""
    for name, callee in d.assigned:
        if name == var and callee:
            found = known(callee)
            if found:
                return [found[0], callee, *found[1:]]
    for obj, call, arg in _arg_acquires(k):
        for c in d.calls:
            if call.fullmatch(c.name) and arg < len(c.arg_list):
                key = normalize(c.arg_list[arg])
                # The object itself (`&v->css` names v), or a counter embedded in it for
                # the objects counted that way (kref_get(&v->kref)); `&v->memcg->css` is a
                # reference of v's memcg, not of v.
                if key == var or (obj in _EMBEDDED and re.split(r"->|\.", key)[0] == var):
                    return [obj, c.name]
    return []


def _arg_acquires(k: Knowledge) -> list[tuple[str, re.Pattern[str], int]]:
    """Every acquire of an argument in kernel.yaml's objects, trygets included (the branch
    where a tryget failed returns NULL or an error, as every caller expects)."""
    cached = _ARG_ACQUIRES.get(k.digest)
    if cached is None:
        cached = _ARG_ACQUIRES[k.digest] = [
            (obj, re.compile(f"(?:{acq['call']})"), int(acq["arg"]))
            for obj, spec in k.objects.items() for acq in spec.get("acquire") or []
            if "arg" in acq and not acq.get("returns")]
    return cached


_ARG_ACQUIRES: dict[str, list[tuple[str, re.Pattern[str], int]]] = {}
_RELEASES: dict[str, list[tuple[str, re.Pattern[str], int]]] = {}


def _release_calls(k: Knowledge) -> list[tuple[str, re.Pattern[str], int]]:
    """kernel.yaml's releases, compiled once per knowledge digest."""
    cached = _RELEASES.get(k.digest)
    if cached is None:
        cached = _RELEASES[k.digest] = k.release_calls()
    return cached


# `return container_of(css, struct rdma_cgroup, css);`, with or without `css ? ... : NULL`:
# the object that embeds the parameter (the same reference, by another type).
_CONTAINER = re.compile(r"^(?:(\w+)\s*\?\s*)?container_of\s*\(\s*\(?\s*(\w+)\s*\)?\s*,.*\)(?:\s*:\s*NULL)?$",
                        re.DOTALL)


def container_accessor(d: Definition) -> bool:
    """Whether every value ``d`` returns is the object embedding its one parameter
    (``css_rdmacg()``, ``mem_cgroup_from_css()``): a reference handed to it comes back
    as a reference to the container."""
    if len(d.param_names) != 1 or not d.returned or d.macro:
        return False
    for raw in d.returned:
        m = _CONTAINER.match(_strip(raw))
        if m is None or m.group(2) != d.param_names[0] or m.group(1) not in (None, d.param_names[0]):
            return False
    return True


def returned_reference(d: Definition, k: Knowledge, known: Known, releases_param: bool,
                       accessor: Callable[[str], bool] | None = None) -> list[str]:
    """[object, chain...] when every value ``d`` returns is a reference (or nothing a
    caller could put) and at least one is; [] otherwise. ``accessor`` says which callees
    are container accessors (``return css_rdmacg(task_get_css(current, id));`` returns
    the css reference task_get_css() took)."""
    if not d.returned or d.macro or releases_param or _RELEASE_NAME.search(d.name):
        return []
    params = set(d.param_names)
    if _puts_a_parameter(d, k, params):
        return []
    assigned = {name for name, _ in d.assigned}
    found: list[str] = []
    for raw in d.returned:
        expr = _strip(raw)
        if not expr or _NEUTRAL.match(expr) or _GLOBAL_ADDR.match(expr):
            continue
        ref: list[str] = []
        call = _CALL.match(expr)
        if call is not None:
            ref = known(call.group(1))
            ref = [ref[0], call.group(1), *ref[1:]] if ref else []
            inner = _CALL.match(_strip(call.group(2)))
            if not ref and inner is not None and accessor is not None and accessor(call.group(1)):
                ref = known(inner.group(1))
                ref = [ref[0], call.group(1), inner.group(1), *ref[1:]] if ref else []
        elif _IDENT.match(expr):
            if expr in params:
                return []  # a parameter handed back: the acquires table's get helpers
            if expr not in assigned:
                continue  # a global (root_mem_cgroup, init_task): not counted
            if expr in d.stores or _linked(d, expr):
                return []  # the reference is the structure's
            ref = _reference_of(d, k, known, expr)
        if not ref:
            return []  # borrowed on this path
        if found and found[0] != ref[0]:
            return []  # two different objects: not one contract
        if not found or len(ref) < len(found):
            found = ref
    return found


def _puts_a_parameter(d: Definition, k: Knowledge, params: set[str]) -> bool:
    """A release of a parameter's reference on any path (``if (prev) css_put(&prev->css)``):
    the release facts count only unconditional ones, an iterator step needs every one."""
    for _, call, arg in _release_calls(k):
        for c in d.calls:
            if call.fullmatch(c.name) and arg < len(c.arg_list) and \
                    re.split(r"->|\.", normalize(c.arg_list[arg]))[0] in params:
                return True
    return False


def _linked(d: Definition, var: str) -> bool:
    for c in d.calls:
        if _LINKS.search(c.name) and any(
                re.split(r"->|\.", normalize(a))[0] == var for a in c.arg_list):
            return True
    return False


def returned_references(defs: Sequence[Definition], k: Knowledge,
                        resolve: Callable[[str, str], list[int]],
                        releasing: Iterable[int], released: Callable[[str], dict[int, str]],
                        base: Callable[[str], list[str]] | None = None) -> dict[str, list[str]]:
    """name -> [object, chain...] of every definition that returns a reference, found by
    rounds: a round knows the references of kernel.yaml, the ``base`` facts (for a patch's
    own functions) and the previous rounds' findings. ``released`` are the release facts
    (parameter index -> object) by name. A function whose callers show it is paired with
    another is kept as ``["", object, chain...]`` (see :func:`_partnered`)."""
    roots = [(obj, re.compile(f"(?:{acq['call']})"))
             for obj, spec in k.objects.items() for acq in spec.get("acquire") or []
             if acq.get("returns")]
    release_set = set(releasing)
    found: dict[int, list[str]] = {}
    candidates = [i for i, d in enumerate(defs) if d.returned]
    accessors = {i for i in candidates if container_accessor(defs[i])}

    def accessor_for(path: str) -> Callable[[str], bool]:
        def accessor(name: str) -> bool:
            targets = resolve(name, path)
            return bool(targets) and all(t in accessors for t in targets)
        return accessor

    def known_for(path: str) -> Known:
        def known(name: str) -> list[str]:
            for obj, pattern in roots:
                if pattern.fullmatch(name):
                    return [obj]
            for t in resolve(name, path):
                if t in found:
                    return found[t]
            ref = base(name) if base is not None else []
            return ref if ref[:1] != [""] else []
        return known

    for _ in range(RETURN_DEPTH):
        grew = False
        for i in candidates:
            if i in found:
                continue
            d = defs[i]
            ref = returned_reference(d, k, known_for(d.path), i in release_set, accessor_for(d.path))
            if ref and len(ref) <= RETURN_DEPTH + 1:
                found[i] = ref
                grew = True
        if not grew:
            break
    out: dict[str, list[str]] = {}
    for i, ref in sorted(found.items()):
        out.setdefault(defs[i].name, ref)
    if base is None:
        for name in _partnered(defs, k, resolve, found, released):
            out[name] = ["", *out[name]]
    else:
        # A function the base's callers showed to be paired with another (see
        # _partnered()) stays so when a patch changes it.
        for name, ref in out.items():
            known = base(name)
            if known[:1] == [""]:
                out[name] = ["", *ref]
    return out


def _partnered(defs: Sequence[Definition], k: Knowledge, resolve: Callable[[str, str], list[int]],
               found: dict[int, list[str]], released: Callable[[str], dict[int, str]]) -> list[str]:
    """Names whose callers in the tree mostly do not dispose of the result themselves, or
    one of which releases it as another kind of object.

    Mature code is, as a rule, right: when most callers that keep the result neither put
    it, store it nor return it, the reference is dropped by a partner function called with
    something else (cgroup_kn_lock_live() and cgroup_kn_unlock(kn), which puts the cgroup
    reached from the kernfs node), and "returns a reference" would make every caller a
    leak. Kept as facts (with an empty object) so that a patch changing the function does
    not bring the plain contract back."""
    names = {defs[i].name: i for i in found}
    kept: dict[int, int] = {}
    handled: dict[int, int] = {}
    wrong: set[int] = set()  # a caller releases the result as another object
    for caller in defs:
        for c in caller.calls:
            if not c.target or c.name not in names:
                continue
            targets = [t for t in resolve(c.name, caller.path) if t in found]
            if not targets or defs[targets[0]] is caller:
                continue
            t = targets[0]
            kept[t] = kept.get(t, 0) + 1
            how = _disposes(caller, c.target, found[t][0], k, released)
            if how == "other":
                wrong.add(t)
            elif how:
                handled[t] = handled.get(t, 0) + 1
    return sorted({defs[t].name for t, n in kept.items() if 2 * handled.get(t, 0) < n or t in wrong})


def _disposes(caller: Definition, var: str, obj: str, k: Knowledge,
              released: Callable[[str], dict[int, str]]) -> str:
    """How ``caller`` disposes of what it keeps in ``var``: "put" (a release of that
    object), "other" (a release of another object: the file alloc_empty_file() returns is
    fput(), not kfree()d, so "memory" was the wrong name for it; or by a function named
    as a release that the facts do not know as one), "kept" (stored or returned), or ""
    (none of these)."""
    how = "kept" if var in caller.stores or any(_strip(r) == var for r in caller.returned) else ""
    for c in caller.calls:
        roots = [re.split(r"->|\.", normalize(a))[0] for a in c.arg_list]
        if var not in roots:
            continue
        named = [(kind, arg) for kind, call, arg in _release_calls(k) if call.fullmatch(c.name)]
        for kind, arg in named:
            if arg < len(roots) and roots[arg] == var:
                if kind != obj:
                    return "other"
                how = "put"
        if named:
            continue  # kernel.yaml says what it releases (css_put()'s body is a percpu_ref put)
        known = released(c.name)
        for idx, what in known.items():
            if idx < len(roots) and roots[idx] == var and what != "stored":
                if what != obj:
                    return "other"
                how = "put"
            elif idx < len(roots) and roots[idx] == var and not how:
                how = "kept"
        if not known and _RELEASE_NAME.search(c.name):
            # free_pid(pid), put_ctx(ctx): released by a function the facts cannot read
            # (it frees through an RCU callback, or only with the last reference); a
            # caller's put would not be seen either.
            return "other"
    return how
