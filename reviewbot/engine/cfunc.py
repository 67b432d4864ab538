"""C functions as the rule engines see them: tree-sitter-c over kernel C, without cpp.

The source is first rewritten by :func:`reviewbot.engine.csource.prepare_source` (kernel
idioms made plain C, line numbers kept). A :class:`FunctionView` is one function with its
post-image line numbers, the lines the patch added, and ``partial`` when only what the
hunks show was available.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tree_sitter import Node, Range

from reviewbot.diff import FileDiff, Hunk, Line
from reviewbot.engine.csource import (
    FREE_PREFIX,
    GUARD_PREFIX,
    LOCK_MARKER,
    LOOP_MACRO,
    MAX_GUARDS,
    UNGUARD_PREFIX,
    parser,
    prepare_source,
    rewrite_cleanups,
    rewrite_guards,
)

# The source rewrites live in csource; the engines import them from here as they always did.
__all__ = [
    "FREE_PREFIX", "GUARD_PREFIX", "LOCK_MARKER", "LOOP_MACRO", "MAX_GUARDS", "UNGUARD_PREFIX",
    "FunctionView", "function_name", "has_error", "iter_functions", "node_text", "parser",
    "prepare_source", "rewrite_cleanups", "rewrite_guards", "views_from_hunks", "views_from_text",
]


def node_text(node: Node) -> str:
    # The engines ask for tens of thousands of texts per patch: positional arguments (a
    # keyword costs a dict per call) and no `or b""` for the text a parsed tree has.
    text = node.text
    return text.decode("utf-8", "replace") if text is not None else ""


def function_name(fn: Node) -> str | None:
    """Name declared by a function_definition node (through pointer declarators)."""
    decl = fn.child_by_field_name("declarator")
    while decl is not None and decl.type != "function_declarator":
        decl = decl.child_by_field_name("declarator")
    if decl is None:
        return None
    inner = decl.child_by_field_name("declarator")
    while inner is not None and inner.type not in ("identifier", "field_identifier"):
        inner = inner.child_by_field_name("declarator") or (
            inner.named_children[0] if inner.named_children else None
        )
    return node_text(inner) if inner is not None else None


def iter_functions(root: Node) -> Iterator[Node]:
    """Top-level function definitions in source order, also those under #ifdef blocks."""
    return iter(sorted(_function_nodes(root), key=lambda n: n.start_byte))


def _function_nodes(root: Node) -> Iterator[Node]:
    stack = [root]
    while stack:
        node = stack.pop()
        for child in reversed(node.children):
            if child.type == "function_definition":
                yield child
            elif child.type in (
                "translation_unit",
                "preproc_if",
                "preproc_ifdef",
                "preproc_else",
                "preproc_elif",
                "ERROR",
                "linkage_specification",
                "declaration_list",
            ):
                stack.append(child)


def has_error(node: Node) -> bool:
    return bool(node.has_error)


@dataclass
class FunctionView:
    """One function, post-image or base, with enough to map findings back to the patch."""

    file: str
    name: str
    node: Node
    first_row: int  # 0-based row of the node's source where the function starts
    rows: dict[int, int]  # 0-based source row -> file line number (post- or pre-image)
    added: frozenset[int]  # file line numbers the patch added (post-image views only)
    partial: bool  # only the lines shown by a hunk were available
    parse_errors: bool  # tree-sitter recovered from errors inside this function
    text_lines: list[str] = field(default_factory=list)  # source lines of the whole input
    # A function rebuilt on the nearest base (engine/rebuild.py): the lines the patch
    # itself shows (its hunks); the others are the base's and may differ in the author's tree.
    shown: frozenset[int] = frozenset()
    _lines: tuple[int, ...] | None = field(default=None, init=False, repr=False, compare=False)
    _line_set: frozenset[int] | None = field(default=None, init=False, repr=False, compare=False)
    _by_line: dict[int, int] | None = field(default=None, init=False, repr=False, compare=False)
    # Derived data an engine computes once per function (astq's RCU sections): keyed by the
    # engine, so that a per-node question is not a scan of the whole function each time.
    memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def line(self, node: Node) -> int | None:
        """File line number of a node (its first row)."""
        return self.rows.get(node.start_point[0])

    def row_text(self, line: int) -> str:
        if self._by_line is None:
            by_line: dict[int, int] = {}
            for row, ln in self.rows.items():
                if row < len(self.text_lines):
                    by_line.setdefault(ln, row)  # the first row of a line, as a scan finds
            self._by_line = by_line
        at = self._by_line.get(line)
        return self.text_lines[at] if at is not None else ""

    def lines(self) -> tuple[int, ...]:
        """File lines of the function, in order (cached: ``rows`` may map a whole file)."""
        if self._lines is None:
            start, end = self.node.start_point[0], self.node.end_point[0]
            self._lines = tuple(ln for row, ln in sorted(self.rows.items()) if start <= row <= end)
        return self._lines

    def line_set(self) -> frozenset[int]:
        if self._line_set is None:
            self._line_set = frozenset(self.lines())
        return self._line_set

    @property
    def touched(self) -> bool:
        return any(ln in self.added for ln in self.lines())


def views_from_text(
    file: str, text: str, *, added: frozenset[int] = frozenset(), wanted: set[int] | None = None
) -> list[FunctionView]:
    """Functions of a whole file; only those containing a line of ``wanted`` when given."""
    # A function read alone on its own rows (engine/rebuild.py) comes after one empty line
    # per row above it, thousands in a large file. No rewrite of prepare_source() matches
    # across those empty lines, and tree-sitter can be told where the code starts: the
    # same source and the same tree, without every regex and the lexer reading them.
    lead = len(text) - len(text.lstrip("\n"))
    src = "\n" * lead + prepare_source(text[lead:]) if lead else prepare_source(text)
    data = src.encode("utf-8", errors="replace")
    ts = parser()
    if lead:
        last = (src.count("\n"), len(data) - data.rfind(b"\n") - 1)
        ts.included_ranges = [Range((lead, 0), last, lead, len(data))]
    tree = ts.parse(data)
    # (The leading empty rows need no scan: the same list as splitting all of ``src``.)
    lines = [""] * lead + src[lead:].split("\n") if lead else src.split("\n")
    views = []
    for fn in iter_functions(tree.root_node):
        name = function_name(fn)
        if not name:
            continue
        start, end = fn.start_point[0], fn.end_point[0]
        if wanted is not None and not any(start + 1 <= w <= end + 1 for w in wanted):
            continue
        views.append(
            FunctionView(
                file=file,
                name=name,
                node=fn,
                first_row=start,
                rows={r: r + 1 for r in range(start, end + 1)},
                added=added,
                partial=False,
                parse_errors=has_error(fn),
                text_lines=lines,
            )
        )
    return views


_COMMENT_OR_STRING = re.compile(r'//.*$|/\*.*?\*/|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'')


def _brace_delta(line: str, in_comment: bool) -> tuple[int, bool]:
    if in_comment:
        end = line.find("*/")
        if end < 0:
            return 0, True
        line = line[end + 2 :]
    if "/" in line or '"' in line or "'" in line:  # (what every match starts with)
        line = _COMMENT_OR_STRING.sub("", line)
    start = line.find("/*")
    still = False
    if start >= 0:
        line, still = line[:start], True
    if line.lstrip().startswith("#"):
        return 0, still
    return line.count("{") - line.count("}"), still


def _first_code(body: list[Line]) -> str:
    return next((ln.text.strip() for ln in body if ln.text.strip()), "")


def _starts_indented(body: list[Line]) -> bool:
    for ln in body:
        text = ln.text
        if not text.strip():
            continue
        stripped = text.lstrip()
        if stripped.startswith(("*", "/*", "//", "#")):
            continue  # comments and preprocessor lines say nothing about the depth
        return text[0] in "\t " and not text.startswith(" *")
    return False


def views_from_hunks(fd: FileDiff, *, post: bool = True, hunks: Iterable[Hunk] | None = None,
                     ) -> list[FunctionView]:
    """Rebuild what the hunks show (post-image: context and added lines; pre-image: context
    and removed lines) into parseable C, one fragment per hunk, and return its functions.

    A hunk that starts inside a function is wrapped in a synthetic definition named after the
    function in its ``@@`` header; such a function is ``partial``. Functions whose header and
    closing brace are both inside the hunk (new functions) are complete. ``hunks`` limits
    the fragments to those hunks (of ``fd``, in its order).
    """
    views: list[FunctionView] = []
    added_all = frozenset(
        ln.new_lineno for h in fd.hunks for ln in h.lines if ln.kind == "+" and ln.new_lineno
    )
    for hunk in fd.hunks if hunks is None else hunks:
        views.extend(_hunk_views(fd.path, hunk, post, added_all if post else frozenset()))
    return views


def _outside_comment(body: list[Line]) -> list[Line]:
    """A hunk that starts inside a block comment (`` * directory to avoid ... */``, three
    lines of context often begin there) has its leading comment lines blanked: parsed as
    code they swallow the statements after them."""
    for i, ln in enumerate(body):
        text = ln.text
        close, open_ = text.find("*/"), text.find("/*")
        if close >= 0 and (open_ < 0 or open_ > close):
            blank = [Line(x.kind, "", x.old_lineno, x.new_lineno) for x in body[:i]]
            rest = Line(ln.kind, " " * (close + 2) + text[close + 2 :], ln.old_lineno, ln.new_lineno)
            return [*blank, rest, *body[i + 1 :]]
        stripped = text.strip()
        if stripped and not stripped.startswith("*"):
            return body  # code (or a comment that opens here) comes first
    return body


_CONTINUATION_LINES = 8  # a signature or condition continued over more lines is rare


def _outside_continuation(body: list[Line]) -> list[Line]:
    """A hunk whose three lines of context begin inside a parenthesis opened above it (the
    rest of a multi-line signature, `\t\t\t\t char *buf, size_t nbytes, loff_t off)`, or
    of an `if` condition) has those lines blanked: they close what the fragment never
    opened, and tree-sitter then loses the whole function (memory_high_write() in a
    2024 memcg patch). The lines up to where the running balance of parentheses is lowest
    (below zero) are the continuation."""
    balance, lowest, end = 0, 0, -1
    for i, ln in enumerate(body[:_CONTINUATION_LINES]):
        text = ln.text.split("//", 1)[0]
        balance += text.count("(") - text.count(")")
        if balance < lowest:
            lowest, end = balance, i
    if end < 0:
        return body
    return [*(Line(x.kind, "", x.old_lineno, x.new_lineno) for x in body[: end + 1]), *body[end + 1 :]]


def _hunk_views(path: str, hunk: Hunk, post: bool, added: frozenset[int]) -> list[FunctionView]:
    keep = (" ", "+") if post else (" ", "-")
    body = _outside_continuation(_outside_comment([ln for ln in hunk.lines if ln.kind in keep]))
    if not body:
        return []
    depth, low, in_comment, inner = 0, 0, False, 0
    for ln in body:
        delta, in_comment = _brace_delta(ln.text, in_comment)
        # `} else {` nets zero but closes first: its lowest point is inside the line.
        lowest = min(depth + delta, depth - 1 if ln.text.lstrip().startswith("}") else depth)
        depth += delta
        if lowest < low:
            # A brace closed that the hunk never opened. Kernel style again: indented, it
            # ends a block inside the function (`\t} else if (...) {`), not the function.
            if ln.text[:1] in "\t ":
                inner += low - lowest
            low = lowest
    outer = hunk.function or "__hunk"
    opened = -low
    if opened == 0 and _starts_indented(body):
        # Kernel style: code inside a function is indented, top-level code is not. The
        # @@ header names the last function *before* the hunk, which the hunk may have
        # already left (it then starts between functions and must not be wrapped).
        opened = 1
    elif opened and opened == inner:
        opened += 1  # every brace it closes is indented: the function body is still open
    # Each inner block it leaves is opened as `if (1) {`, so that a `} else {` after it
    # still has its `if`.
    header = (f"void {outer}(void) " + "{" + " if (1) {" * min(inner, opened - 1)) if opened else ""
    if not opened and _first_code(body) == "{":
        # The hunk starts at the body's opening brace: only the signature is missing.
        header = f"void {outer}(void)"
    closing = "}" * max(0, depth + opened)
    if closing:
        # Three lines of context often end mid-statement: after `if (!zalloc(...))` whose
        # body is below the hunk, after a label, inside a call's argument list. An empty
        # statement (and the parentheses left open) completes it; tree-sitter otherwise
        # marks the whole function as an error.
        parens = sum(ln.text.split("//", 1)[0].count("(") - ln.text.split("//", 1)[0].count(")")
                     for ln in body)
        last = _first_code(list(reversed(body)))
        # `if (a &&` with the rest of the condition below the hunk: an operand closes it.
        operand = "0" if last.endswith(("&&", "||", ",", "(", "=", "+", "-", "|", "&", "?", ":")) \
            and not last.endswith(("*/", "//")) and parens > 0 else ""
        closing = operand + ")" * max(0, min(parens, 8)) + ";" + closing
    if in_comment:
        # The hunk ends inside a block comment (its three lines of context often do):
        # close it, or the braces that close the fragment are commented out too.
        closing = "*/ " + closing
    src_lines = [header] + [ln.text for ln in body] + [closing]
    rows = {
        i + 1: (ln.new_lineno if post else ln.old_lineno) or 0 for i, ln in enumerate(body)
    }
    rows = {r: ln for r, ln in rows.items() if ln}
    src = prepare_source("\n".join(src_lines))
    tree = parser().parse(src.encode("utf-8", errors="replace"))
    lines = src.split("\n")
    last_row = len(src_lines) - 1
    views = []
    for fn in iter_functions(tree.root_node):
        name = function_name(fn)
        if not name:
            continue
        synthetic = fn.start_point[0] == 0 or fn.end_point[0] >= last_row
        views.append(
            FunctionView(
                file=path,
                name=name,
                node=fn,
                first_row=fn.start_point[0],
                rows=rows,
                added=added,
                partial=synthetic,
                parse_errors=has_error(fn),
                text_lines=lines,
            )
        )
    return views
