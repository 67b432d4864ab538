"""What one expression does to references, for the ``refcount`` engine's path walk.

:class:`RefOps` turns a call, a store or a branch condition into the operations the walk
(:class:`reviewbot.engine.refcount.Analysis`) applies to a path state: acquire, release,
transfer (stored or handed on), handoff (to a callee that consumes on some paths only),
drop (a NULL or IS_ERR branch) and assign (a name now denotes a new object). The answers
depend on the node and the aliases only, so they are memoised per node.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tree_sitter import Node

from reviewbot.engine.cfunc import node_text
from reviewbot.engine.cnodes import assigned_to, stored_identifiers
from reviewbot.engine.fnmemo import FunctionMemo
from reviewbot.engine.refspec import NULL_RE, CallSpec, Config, Pair, normalize
from reviewbot.engine.refstate import Held, Ops
from reviewbot.facts.refs import GET_NAME
from reviewbot.facts.tables import Facts

if TYPE_CHECKING:  # consumers.py builds on refcount, which builds on this module
    from reviewbot.engine.consumers import Consumers

_STORE_CALLS = re.compile(
    r"^(rcu_assign_pointer|RCU_INIT_POINTER|WRITE_ONCE|xchg|cmpxchg|rcu_replace_pointer|"
    r"smp_store_release|atomic_long_set|list_add\w*|hlist_add\w*)$"
)


# Calls that link a node into a structure that outlives the function (a list, a queue, a
# tree, an RCU callback): the object embedding the node is handed on.
_PUBLISH = re.compile(
    r"^(list_add\w*|hlist_add\w*|llist_add\w*|list_splice\w*|rb_link_node|rb_insert\w*|"
    r"queue_work\w*|queue_delayed_work\w*|schedule_work|schedule_delayed_work|mod_delayed_work\w*|"
    r"kthread_queue_\w+|call_rcu\w*|kfree_rcu|irq_work_queue\w*|"
    r"add_wait_queue\w*|xa_store\w*|xa_insert\w*|idr_alloc\w*|idr_replace|radix_tree_insert|"
    r"kobject_init_and_add|device_add)$"
)
# ...and any call named for linking something in (rq_qos_add(), register_shrinker()).
_PUBLISH_WORD = re.compile(r"(^|_)(add|insert|queue|register|link|attach|enqueue|push|install|publish|"
                           r"free|put|release|destroy)(_|$)")  # ...or for freeing it (drmcg_css_free())
_SPACES = re.compile(r"\s+")
_MEMBER_OF = re.compile(r"^&\(?([A-Za-z_]\w*)(->|\.)")


# A value that makes a function fail when returned (uses._ERROR_RETURN, without NULL/false:
# `ret = NULL` is a pointer being reset, not an error code).
_ERROR_VALUE = re.compile(r"^\(?\s*(-\s*E[A-Z0-9]+|ERR_PTR\s*\(.*|-\s*\d+)\s*\)?$", re.S)


# What a call's name alone says, asked for every call of every analysis: answered once per
# name (bounded: names come from the patches).
@functools.lru_cache(maxsize=8192)
def _stores_by_call(name: str) -> bool:
    return _STORE_CALLS.match(name) is not None


@functools.lru_cache(maxsize=8192)
def _publishes(name: str) -> bool:
    return bool(_PUBLISH.match(name) or _PUBLISH_WORD.search(name))


class RefOps(FunctionMemo):
    """The expression-to-operations half of :class:`~reviewbot.engine.refcount.Analysis`
    (which sets these attributes in its ``__init__``)."""

    c: Config
    facts: Facts
    partial: Mapping[str, list[Any]] | Consumers
    released_keys: set[tuple[str, str]]
    _released_params: dict[str, dict[int, str]]
    _acquired_params: dict[str, dict[int, str]]
    _returned_refs: dict[str, str]
    _inert_names: dict[str, bool]
    _store_ops: dict[tuple[int, bool], Ops]
    _effects: dict[int, Ops]
    _conds: dict[int, tuple[list[Ops], list[Ops]]]

    def _released_keys(self) -> set[tuple[str, str]]:
        keys = set()
        for call in self.calls_of(self.view.node):
            name = self.name_of(call)
            found, released = self.c.matching(name), self.released_params(name)
            if not found and not released:
                continue  # (most calls: their arguments are not needed)
            args = self.args_of(call)
            for matched in found:
                pair = matched.pair
                for spec in matched.release:
                    key = "" if pair.keyless else (
                        self.key(args[spec.arg]) if spec.arg is not None and spec.arg < len(args) else None
                    )
                    if key is not None:
                        keys.add((key, pair.name))
            # A put helper the facts know (put_io_context(ioc)) releases like the put.
            for index, obj in released.items():
                if index < len(args):
                    keys.add((self.key(args[index]), obj))
        return keys

    def _owned(self, key: str, pair: Pair, spec: CallSpec) -> bool:
        """Whether a leak of this reference is the function's fault.

        A `css_get(param)` in a function that never puts that object is a function whose
        job is to take a reference for someone else (cgroup_get_live(), kill_css()); the
        base tree has dozens. A reference the function asked for itself (a lookup that
        returns it, a tryget) or puts on some other path is its own.
        """
        # A tryget the function never puts is, like a get, taken for someone else (a
        # struct that already points at the object: blkg_create()'s blkcg).
        return spec.returns or pair.keyless or (key, pair.name) in self.released_keys

    def is_local(self, name: str) -> bool:
        # A hunk rarely shows the declarations at the top of the function: in a partial
        # view an undeclared lower-case identifier is most likely a local variable.
        return name in self.locals or (self.view.partial and bool(re.fullmatch(r"[a-z_]\w*", name)))
    def acquired_params(self, name: str) -> dict[int, str]:
        """facts.acquired_params(), once per name."""
        found = self._acquired_params.get(name)
        if found is None:
            # Only a name that says "get" can be one (facts/refs.py): no lookup for the rest.
            found = self._acquired_params[name] = (
                self.facts.acquired_params(name) if GET_NAME.search(name) else {})
        return found

    def returned_ref(self, name: str) -> str:
        """The object of the reference ``name`` returns per the tree facts (a function
        whose every returned value is one: facts/returnrefs.py) when the rule counts it;
        "" otherwise. Once per name."""
        found = self._returned_refs.get(name)
        if found is None:
            ref = self.facts.returned_ref(name)
            found = ref[0] if ref and any(p.name == ref[0] for p in self.c.pairs) else ""
            self._returned_refs[name] = found
        return found

    def released_params(self, name: str) -> dict[int, str]:
        """facts.released_params(), once per name (the use check asks at every path state)."""
        found = self._released_params.get(name)
        if found is None:
            found = self._released_params[name] = self.facts.released_params(name)
        return found

    def line(self, node: Node | None) -> int | None:
        return self.view.line(node) if node is not None else None

    # --- effects of one expression -------------------------------------------------
    def effects(self, node: Node | None) -> Ops:
        """What evaluating ``node`` does to references (a pure function of the node once
        the aliases are known: memoised, as every path state reaching the node asks again;
        callers never change the list they get)."""
        if node is None:
            return []
        done = self._effects.get(node.id)
        if done is None:
            done = self._effects[node.id] = self._effects_of(node)
        return done

    def _effects_of(self, node: Node) -> Ops:
        ops: Ops = []
        for call in self.calls_of(node):
            ops.extend(self.call_ops(call))
        ops.extend(self.store_ops(node))
        return ops

    def call_ops(self, call: Node, in_condition: bool = False) -> Ops:
        name = self.name_of(call)
        if self._inert(name):
            return []
        args = self.args_of(call)
        ops: Ops = []
        released: set[tuple[str, str]] = set()  # one release per call, pair and object
        for matched in self.c.matching(name):
            pair = matched.pair
            for spec in matched.release:
                if pair.keyless:
                    key = ""
                elif spec.arg is not None and spec.arg < len(args):
                    key = self.key(args[spec.arg])
                else:
                    continue
                if (key, pair.name) not in released:
                    released.add((key, pair.name))
                    ops.append(("release", (key, pair.name, self.line(call))))
            for spec in matched.acquire:
                if spec.conditional and in_condition:
                    continue
                held_key = None
                if pair.keyless:
                    held_key = ""
                elif spec.returns:
                    # A result stored straight into a field or global is handed on.
                    target = assigned_to(call)
                    if (
                        target is not None
                        and target.type == "identifier"
                        and self.is_local(node_text(target))
                    ):
                        held_key = self.key(target)
                elif spec.arg is not None and spec.arg < len(args):
                    held_key = self.key(args[spec.arg])
                if held_key is not None and not NULL_RE.match(held_key):
                    owned = self._owned(held_key, pair, spec)
                    ops.append(
                        ("acquire", Held(held_key, pair.name, self.line(call) or 0, name, owned))
                    )
                break  # one acquire per call and pair, however many specs match
        if not any(kind == "acquire" for kind, _ in ops):
            # A get helper the facts know (get_io_context(ioc), a kref'd object's foo_get()).
            for index, obj in self.acquired_params(name).items():
                if index < len(args) and any(p.name == obj for p in self.c.pairs):
                    key = self.key(args[index])
                    if not NULL_RE.match(key):
                        ops.append(("acquire", Held(key, obj, self.line(call) or 0, name,
                                                    (key, obj) in self.released_keys)))
        if not any(kind == "acquire" for kind, _ in ops) and (obj := self.returned_ref(name)):
            # A function of the tree that returns a reference (mem_cgroup_get_oom_group(),
            # get_proc_task()): its result is the caller's, like a lookup the rule names.
            target = assigned_to(call)
            if target is not None and target.type == "identifier" and self.is_local(node_text(target)):
                ops.append(("acquire", Held(self.key(target), obj, self.line(call) or 0, name, True)))
        for spec in self.c.consumers:
            if spec.call.match(name) and spec.arg is not None and spec.arg < len(args):
                ops.append(("transfer", self.key(args[spec.arg])))
        for partial in self.partial.get(name, ()):
            if partial.index < len(args):
                ops.append(("handoff", (self.key(args[partial.index]), partial, self.line(call))))
        if not released:
            # A put helper the tree (or the patch) defines: bfq_put_queue(bfqq) releases.
            for index, obj in self.released_params(name).items():
                if index < len(args):
                    key = self.key(args[index])
                    pair_name = obj if any(p.name == obj for p in self.c.pairs) else ""
                    ops.append(("release", (key, pair_name, self.line(call))) if pair_name
                               else ("transfer", key))
                    ops.extend(("transfer", k) for k in self._container(args[index]))
        if self.c.transfer_store and _stores_by_call(name) and len(args) >= 2:
            ops.append(("transfer", self.key(args[1])))
        if self.c.transfer_store and _publishes(name):
            # list_add(&ev->list, head), queue_work(wq, &mwork->work), call_rcu(&x->rcu, f):
            # the object that embeds the node now lives in a list, a queue or a callback.
            for arg in args:
                ops.extend(("transfer", k) for k in self._container(arg))
        return ops

    def _inert(self, name: str) -> bool:
        """A call by this name does nothing call_ops() tracks, whatever its arguments: no
        pair, consumer, partial consumer or put helper names it, and it stores or links
        nothing in (most calls of a function; asked once per name, not once per call)."""
        found = self._inert_names.get(name)
        if found is None:
            store = self.c.transfer_store and (_stores_by_call(name) or _publishes(name))
            found = self._inert_names[name] = not (
                store or self.c.matching(name)
                or (self.c.consumers and any(s.call.match(name) for s in self.c.consumers))
                or self.partial.get(name, ()) or self.released_params(name)
                or self.acquired_params(name) or self.returned_ref(name))
        return found

    def _container(self, arg: Node) -> list[str]:
        """``&ev->list`` names a member embedded in ``ev``: handing the member on hands on
        the object (its container) too."""
        m = _MEMBER_OF.match(_SPACES.sub("", node_text(arg)))
        return [self.alias.find(m.group(1))] if m else []

    def store_ops(self, node: Node) -> Ops:
        """``obj->field = x``: the reference in x now belongs to obj (a transfer);
        ``x = ...``: x names a new object from here on. (The answer depends on the function
        and on whether stores transfer, not on the pairs: kept for all its analyses.)"""
        key = (node.id, self.c.transfer_store)
        done = self._store_ops.get(key)
        if done is None:
            done = self._store_ops[key] = self._store_ops_of(node)
        return done

    def _store_ops_of(self, node: Node) -> Ops:
        ops: Ops = []
        for n in self.store_nodes(node):
            if n.type != "assignment_expression":
                # `struct x *p = ...;` and DECLARE_BITMAP(mask, n): a new object by that name
                name = n.child_by_field_name("declarator") if n.type == "init_declarator" else \
                    next(iter(self.args_of(n)), None)
                while name is not None and name.type == "pointer_declarator":
                    name = name.child_by_field_name("declarator")
                if name is not None and name.type == "identifier":
                    ops.append(("assign", self.alias.find(node_text(name))))
                continue
            left, right = n.child_by_field_name("left"), n.child_by_field_name("right")
            if left is None or right is None:
                continue
            target = normalize(node_text(left))
            if left.type == "identifier" and node_text(n.children[1]) == "=":
                ops.append(("assign", self.alias.find(target)))  # a new value: not released
            if left.type == "identifier" and node_text(n.children[1]) == "=" \
                    and _ERROR_VALUE.match(node_text(right).strip()):
                ops.append(("error-set", target))  # `ret = -ENOMEM;`: returning it fails
            if self.c.transfer_store and (left.type != "identifier" or not self.is_local(target)) \
                    and not self._local_aggregate(left):
                # `page->memcg_data = (unsigned long)objcg | FLAG` stores objcg too; the
                # arguments of a call on the right are not stored (blkg_lookup(blkcg)).
                keys = {self.key(right)} | {self.alias.find(i) for i in stored_identifiers(right)}
                # `fc->fs_private = &ctx->kfc`: container_of() gets ctx back from its member.
                keys.update(self._container(right))
                # `*ptr = h_cg;` through a `T **ptr` parameter hands the reference to the
                # caller only if the function succeeds (refcount.Analysis: "out").
                if self._out_param(left):
                    ops.extend(("out", (k, self.line(n) or 0)) for k in sorted(keys))
                else:
                    ops.extend(("transfer", k) for k in sorted(keys))
        return ops

    def _out_param(self, left: Node) -> bool:
        """``*ptr`` (or ``ptr[0]``) of a parameter declared ``T **ptr``: the caller's variable."""
        if left.type == "pointer_expression" or left.type == "subscript_expression" and node_text(left).endswith("[0]"):
            inner = left.child_by_field_name("argument")
        else:
            return False
        return inner is not None and inner.type == "identifier" and node_text(inner) in self.out_params()

    def out_params(self) -> frozenset[str]:
        """The function's ``T **name`` parameters (once per function)."""
        found = self.view.memo.get("out-params")
        if found is None:
            names = set()
            decl = self.view.node.child_by_field_name("declarator")
            while decl is not None and decl.type not in ("function_declarator",):
                decl = decl.child_by_field_name("declarator")
            params = decl.child_by_field_name("parameters") if decl is not None else None
            for p in params.named_children if params is not None else ():
                d = p.child_by_field_name("declarator")
                if d is not None and d.type == "pointer_declarator":
                    inner = d.child_by_field_name("declarator")
                    if inner is not None and inner.type == "pointer_declarator":
                        name = inner.child_by_field_name("declarator")
                        if name is not None and name.type == "identifier":
                            names.add(node_text(name))
            found = self.view.memo["out-params"] = frozenset(names)
        return found

    def _local_aggregate(self, left: Node) -> bool:
        """``wo.wo_pid = pid``: a field of a struct on this function's stack is not a
        place the reference can outlive the function in."""
        while left.type in ("field_expression", "subscript_expression"):
            op = left.child_by_field_name("operator")
            if op is not None and node_text(op) == "->":
                return False
            inner = left.child_by_field_name("argument")
            if inner is None:
                return False
            left = inner
        return left.type == "identifier" and node_text(left) in self.locals

    def _error_codes(self) -> dict[str, tuple[str, ...]]:
        """Variables assigned ``PTR_ERR_OR_ZERO(p)`` in the function:
        name -> the objects ``p`` it tells the error of (once per function)."""
        found = self.view.memo.get("refcount-error-codes")
        if not isinstance(found, dict):
            codes: dict[str, set[str]] = {}
            for call in self.calls_of(self.view.node):
                if self.name_of(call) != "PTR_ERR_OR_ZERO":  # (PTR_ERR() of a good pointer is not 0)
                    continue
                target, args = assigned_to(call), self.args_of(call)
                if target is not None and target.type == "identifier" and args:
                    codes.setdefault(node_text(target), set()).add(self.key(args[0]))
            found = self.view.memo["refcount-error-codes"] = {k: tuple(sorted(v)) for k, v in codes.items()}
        return found

    # --- conditions -----------------------------------------------------------------
    def cond(self, expr: Node | None) -> tuple[list[Ops], list[Ops]]:
        """Alternative effect lists for the true and the false branch of a condition
        (memoised like :meth:`effects`)."""
        if expr is None:
            return [[]], [[]]
        done = self._conds.get(expr.id)
        if done is None:
            done = self._conds[expr.id] = self._cond_of(expr)
        return done

    def _cond_of(self, expr: Node) -> tuple[list[Ops], list[Ops]]:
        while expr.type == "parenthesized_expression" and expr.named_children:
            expr = expr.named_children[0]
        if expr.type == "call_expression" and self.name_of(expr) in ("likely", "unlikely"):
            args = self.args_of(expr)
            if args:
                return self.cond(args[0])
        if expr.type == "unary_expression" and node_text(expr.children[0]) == "!":
            t, f = self.cond(expr.child_by_field_name("argument"))
            return f, t
        if expr.type == "assignment_expression":
            # `while ((memcg = mem_cgroup_iter(NULL, memcg, NULL)))`: effects, then truth.
            left = expr.child_by_field_name("left")
            ops = self.effects(expr)
            if left is not None:
                return [ops], [ops + [("drop", self.key(left))]]
            return [ops], [ops]
        if expr.type == "binary_expression":
            op = node_text(expr.children[1])
            left, right = expr.child_by_field_name("left"), expr.child_by_field_name("right")
            if op in ("&&", "||"):
                lt, lf = self.cond(left)
                rt, rf = self.cond(right)
                if op == "&&":
                    return [a + b for a in lt for b in rt], lf + [a + b for a in lt for b in rf]
                return lt + [a + b for a in lf for b in rt], [a + b for a in lf for b in rf]
            if op in ("==", "!=") and left is not None and right is not None:
                for var, other in ((left, right), (right, left)):
                    # `p == NULL`, and `p == &static_obj` (blkcg == &blkcg_root): on the
                    # equal branch p is not something this function got a reference to.
                    if NULL_RE.match(node_text(other).strip()) or \
                            re.fullmatch(r"&\s*[A-Za-z_][\w.>-]*", node_text(other).strip()) and \
                            node_text(other).strip().lstrip("&").split("-")[0].split(".")[0].strip() \
                            not in self.locals:
                        base = self.effects(var)
                        target = var
                        while target.type == "parenthesized_expression" and target.named_children:
                            target = target.named_children[0]
                        if target.type == "assignment_expression":
                            target = target.child_by_field_name("left") or target
                        null = base + [("drop", self.key(target))]
                        return ([null], [base]) if op == "==" else ([base], [null])
        if expr.type == "identifier":
            # `ret = PTR_ERR_OR_ZERO(task); if (ret) goto out;`: where ret is set, task
            # was an error pointer (nothing to put); where it is 0, task is what it was.
            erred = [("drop", key) for key in self._error_codes().get(node_text(expr), ())]
            return [erred], [[("drop", self.key(expr))]]
        if expr.type == "call_expression" and self.name_of(expr) in ("IS_ERR", "IS_ERR_OR_NULL"):
            args = self.args_of(expr)
            if args:
                return [[("drop", self.key(args[0]))]], [[]]
        if expr.type == "call_expression":
            # A conditional acquire holds the reference only when it succeeded.
            inner = [op for c in self.calls_of(expr)[:-1] for op in self.call_ops(c)]
            own = self.call_ops(expr, in_condition=True)
            on_true: Ops = []
            on_false: Ops = []  # mutex_lock_interruptible() holds the lock when it returned 0
            for matched in self.c.matching(self.name_of(expr)):
                pair = matched.pair
                for spec in matched.acquire:
                    if not spec.conditional:
                        continue
                    args = self.args_of(expr)
                    key = "" if pair.keyless else (
                        self.key(args[spec.arg]) if spec.arg is not None and spec.arg < len(args) else "")
                    held = ("acquire", Held(key, pair.name, self.line(expr) or 0, self.name_of(expr)))
                    (on_false if spec.zero else on_true).append(held)
                    if key:
                        # Where it failed, no reference was taken: a put on that branch
                        # drops one somebody else holds (`if (!css_tryget(css)) {
                        # css_put(css); ...}`).
                        failed = ("failed", (key, pair.name, self.line(expr), self.name_of(expr)))
                        (on_true if spec.zero else on_false).append(failed)
            if on_true or on_false:
                return [inner + own + on_true], [inner + own + on_false]
        ops = self.effects(expr)
        return [ops], [ops]
