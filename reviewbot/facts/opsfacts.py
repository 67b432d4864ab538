"""Calls through function pointers of ops tables: which functions ``ns->ops->put(ns)`` may run.

The kernel dispatches through structures of function pointers (``struct proc_ns_operations``,
``struct cgroup_subsys``, ``struct cftype``, ``struct kernfs_ops``): a call
``x->ops->member(...)`` runs one of the functions the tree stores in that member, in a
designated initializer (``static const struct proc_ns_operations mntns_operations = {
.put = mntns_put, ... }``, arrays of them: ``struct cftype files[] = { { .release = ... },
... }``) or by a plain assignment (``ops->put = foo;``). When one of them may sleep, so
may the call: a caller in atomic context is a bug for that implementation.

Resolution needs the struct type, never the member name alone (``.put`` is a member of
hundreds of structures): the type of the call's root variable (a parameter or local of the
calling function, ``struct ns_common *ns``), then each field on the way (``ns_common->ops``
is a ``struct proc_ns_operations *``, read from the struct's definition). A call whose
root or path has no known type stays unresolved, and says nothing.

The scan (:class:`OpsScan`) reads struct field types and initializers; :class:`Dispatch`
gives derive.py the members each definition implements and the calls it makes through
pointers; the facts keep ``ops_sleeps`` ("T.member" -> [implementation, chain...]),
``ops_locks`` ("T.member" -> global lock -> [implementation, chain...]) and
``ops_fields`` ("T.field" -> the struct type of that field, pointer or embedded, for the
fields on a way to such a member).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reviewbot.facts.extract import Definition

__all__ = ["MAX_IMPLS", "MIN_OPS_MEMBERS", "Dispatch", "OpsScan", "chain_levels", "fp_assignments",
           "is_dispatch", "member_key", "relevant_fields", "scan_ops", "shown_chain"]

# `struct T {` ... `};` with both braces in column 0 (kernel style for a definition). The
# patterns start with a newline: a literal the regex engine finds fast, where `^` with
# MULTILINE is tried at every character (seconds over a base).
_STRUCT = re.compile(r"\nstruct\s+(\w+)\s*\{\n")
# A field of struct type: `const struct U *ops;`, `struct U __rcu *p;`, `struct U embedded;`.
_FIELD = re.compile(r"\n[ \t]*(?:const\s+)?struct\s+(\w+)\s+(?:const\s+)?(?:__rcu\s+)?(\*?)\s*(?:const\s+)?"
                    r"(\w+)\s*(?:\[[^\]]*\])?\s*;")
MAX_STRUCT_CHARS = 50_000
# A function-pointer member: `void (*put)(struct ns_common *ns);`.
_FP_MEMBER = re.compile(r"\(\s*\*\s*\w+\s*\)\s*\(")
# An ops table is an interface: a struct of at least this many function pointers. A
# single callback slot (notifier_block, rcu_head, timer_list: one pointer, often through
# a typedef) is bound at run time by whoever registers, for chains of every kind, so the
# tree's list of its functions says nothing about what one call runs (a fib notifier
# call is not a netdevice notifier that sleeps).
MIN_OPS_MEMBERS = 2
# `static const struct T name = {` / `struct T name[] __ro_after_init = {` at column 0.
_INIT = re.compile(r"\n(?:static\s+)?(?:const\s+)?struct\s+(\w+)\s+(?:const\s+)?(\w+)\s*(\[[^\]]*\])?"
                   r"\s*(?:__\w+(?:\([^)]*\))?\s*)*=\s*\{")
# Inside an initializer: a brace, or `.member = function` (`&function` too).
_INIT_TOKEN = re.compile(r"[{}]|\.\s*(\w+)\s*=\s*&?\s*([A-Za-z_]\w*)\s*(?=[,}\n])")
# In a function body: `x->member = function;` (the type of x from its declarations),
# found from the arrow (a pattern that starts at every identifier costs seconds per base).
_FP_ASSIGN = re.compile(r"->(\w+)\s*=\s*&?\s*([A-Za-z_]\w*)\s*;")
_ROOT = re.compile(r"(?<![\w>.])([A-Za-z_]\w*)\s*$")


def fp_assignments(body: str) -> list[tuple[str, str, str]]:
    """(variable, member, value) of every ``x->member = value;`` of a body."""
    out = []
    for m in _FP_ASSIGN.finditer(body):
        root = _ROOT.search(body, max(0, m.start() - 64), m.start())
        if root is not None:
            out.append((root.group(1), m.group(1), m.group(2)))
    return out

MAX_INIT_CHARS = 200_000  # one initializer (the largest cftype arrays are ~20 KB)
MAX_IMPLS = 400  # functions kept per member (file_operations.open has a few hundred)
MAX_PATH = 4  # fields followed from the root variable to the member


@dataclass
class OpsScan:
    """What the scan of the sources found (build.py fills it file by file)."""

    fields: dict[str, str] = field(default_factory=dict)  # "T.field" -> U
    clashes: set[str] = field(default_factory=set)  # "T.field" declared with two types
    pointers: dict[str, int] = field(default_factory=dict)  # T -> function-pointer members
    # "T.member" -> [(function, path)] from designated initializers
    inits: dict[str, list[tuple[str, str]]] = field(default_factory=dict)

    def add_fields(self, text: str) -> None:
        """Struct-typed fields of every ``struct T { ... };`` of one source; a name that
        two definitions give different types (config alternatives) is dropped."""
        if "struct" not in text:
            return
        for m in _STRUCT.finditer(text):
            owner = m.group(1)
            end = text.find("\n}", m.end() - 1, m.end() + MAX_STRUCT_CHARS)
            end = end if end > 0 else m.end()
            members = len(_FP_MEMBER.findall(text, m.end() - 1, end))
            self.pointers[owner] = max(members, self.pointers.get(owner, 0))
            for f in _FIELD.finditer(text, m.end() - 1, end):
                key = f"{owner}.{f.group(3)}"
                if self.fields.setdefault(key, f.group(1)) != f.group(1):
                    self.clashes.add(key)

    def add_initializers(self, text: str, path: str) -> None:
        """``.member = function`` of the designated initializers of one source: at the
        first level of a single structure, at the second of an array of them (each
        element's braces); deeper levels are nested structures of other types."""
        if ".\t" not in text and "= {" not in text:
            return
        self.scan_initializers(text, path)

    def scan_initializers(self, text: str, path: str) -> None:
        """add_initializers() without its quick test of the text."""
        for m in _INIT.finditer(text):
            owner, is_array = m.group(1), bool(m.group(3))
            depth = 1
            want = 2 if is_array else 1
            start = m.end()
            for tok in _INIT_TOKEN.finditer(text, start, min(len(text), start + MAX_INIT_CHARS)):
                if tok.group(0) == "{":
                    depth += 1
                elif tok.group(0) == "}":
                    depth -= 1
                    if depth == 0:
                        break
                elif depth == want:
                    impls = self.inits.setdefault(f"{owner}.{tok.group(1)}", [])
                    if len(impls) < MAX_IMPLS:
                        impls.append((tok.group(2), path))

    def ops_tables(self) -> set[str]:
        """Struct types that are interfaces (:data:`MIN_OPS_MEMBERS`)."""
        return {t for t, n in self.pointers.items() if n >= MIN_OPS_MEMBERS}

    def field_types(self) -> dict[str, str]:
        return {k: v for k, v in self.fields.items() if k not in self.clashes}


def scan_ops(text: str, path: str, into: OpsScan) -> None:
    """Struct fields and designated initializers of one source (the patterns start with a
    newline: one in front lets a definition on the first line match)."""
    text = "\n" + text
    into.add_fields(text)
    into.add_initializers(text, path)


def is_dispatch(name: str) -> bool:
    """A call name that is an expression through a pointer (``ns->ops->put``), not a
    function's name: it runs whatever the pointer holds."""
    return "->" in name or "." in name


_PATH = re.compile(r"\s*(->|\.)\s*")


def member_key(expr: str, types: dict[str, str], field_type: Callable[[str, str], str | None]
               ) -> str | None:
    """``ns->ops->put`` with ``ns`` a ``struct ns_common *`` -> ``proc_ns_operations.put``
    (the struct type that holds the called member, and the member); None when a step's
    type is unknown."""
    parts = _PATH.split(expr.strip().lstrip("(").rstrip(")"))
    names = parts[0::2]
    if len(names) < 2 or len(names) > MAX_PATH + 2 or not all(re.fullmatch(r"[A-Za-z_]\w*", n) for n in names):
        return None
    typ: str | None = types.get(names[0])
    for step in names[1:-1]:
        if typ is None:
            return None
        typ = field_type(typ, step)
    return f"{typ}.{names[-1]}" if typ else None


def chain_levels(chain: list[str]) -> int:
    """Calls in a may-sleep chain: a dispatch (``ns->ops->put``) and the implementation it
    runs are one call, so the dispatch does not count."""
    return sum(1 for c in chain if not is_dispatch(c))


def shown_chain(chain: list[str]) -> str:
    """``__ns_put() -> ns->ops->put() may run mntns_put() -> put_mnt_ns()``."""
    out = ""
    for i, c in enumerate(chain):
        text = c if "(" in c else f"{c}()"
        sep = "" if i == 0 else (" may run " if is_dispatch(chain[i - 1]) else " -> ")
        out += sep + text
    return out


class Dispatch:
    """The calls through pointers of a set of definitions, resolved to ops members, and the
    members each definition implements (derive.py follows both in its may-sleep walk).

    ``field_type``: the struct type of a field (``("ns_common", "ops")`` ->
    ``"proc_ns_operations"``), from the sources scanned with these definitions or the
    base's facts; ``inits``: the designated initializers ("T.member" -> [(function,
    path)]) of the sources scanned, if any; ``resolve``: a function name seen from a path
    -> definition indexes (the definitions' graph)."""

    def __init__(self, defs: list[Definition], resolve: Callable[[str, str], list[int]],
                 field_type: Callable[[str, str], str | None],
                 inits: dict[str, list[tuple[str, str]]], tables: set[str] | None = None) -> None:
        self.impl_of: dict[int, set[str]] = {}  # definition -> members it implements
        self.callers: dict[str, list[tuple[int, str]]] = {}  # member -> [(caller, expression)]
        self.calls: dict[int, list[tuple[str, str]]] = {}  # caller -> [(expression, member)]
        self.implemented: dict[str, int] = {}  # member -> implementations found
        stores = [(key, fn, path) for key, impls in inits.items() for fn, path in impls]
        stores += [(key, fn, d.path) for d in defs for key, fn in d.fp_stores]
        for key, fn, path in stores:
            if tables is not None and key.split(".", 1)[0] not in tables:
                continue  # not an interface (MIN_OPS_MEMBERS)
            for t in resolve(fn, path)[:1]:
                if key not in self.impl_of.get(t, ()):
                    self.impl_of.setdefault(t, set()).add(key)
                    self.implemented[key] = self.implemented.get(key, 0) + 1
        for i, d in enumerate(defs):
            if not d.types:
                continue
            types = dict(d.types)
            for c in d.calls:
                if not is_dispatch(c.name) or not (c.top_level or d.macro):
                    continue
                member = member_key(c.name, types, field_type)
                if member is not None:
                    self.calls.setdefault(i, []).append((c.name, member))
                    self.callers.setdefault(member, []).append((i, c.name))


def relevant_fields(fields: dict[str, str], members: set[str]) -> dict[str, str]:
    """The fields on a path (at most MAX_PATH of them) to a struct with a member in
    ``members``: all a resolution can use (the rest of the tree's fields would only grow
    the cache)."""
    wanted = {m.split(".", 1)[0] for m in members}
    for _ in range(MAX_PATH):
        more = {k.split(".", 1)[0] for k, u in fields.items() if u in wanted} - wanted
        if not more:
            break
        wanted |= more
    return {k: u for k, u in fields.items() if u in wanted}
