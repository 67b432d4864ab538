"""The package's import structure (issue 11): no cycles, no importlib for our own modules,
and every import inside a function says why it is not at the top."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "reviewbot"


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _targets(node: ast.Import | ast.ImportFrom, known: dict[str, Path]) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in known]
    base = node.module or ""
    names = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known]
    return names or ([base] if base in known else [])


def _graph() -> tuple[dict[str, set[str]], list[tuple[Path, ast.stmt]]]:
    known = _modules()
    graph: dict[str, set[str]] = {m: set() for m in known}
    local: list[tuple[Path, ast.stmt]] = []
    for name, path in known.items():
        tree = ast.parse(path.read_text())
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) \
                    and not _type_checking_only(tree, node):  # for mypy: not a runtime edge
                graph[name].update(t for t in _targets(node, known) if t != name)
                if id(node) not in top:
                    local.append((path, node))
    return graph, local


def _type_checking_only(tree: ast.Module, node: ast.stmt) -> bool:
    return any(isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
               and node in n.body for n in tree.body)


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_import_cycles_even_through_imports_inside_functions() -> None:
    graph, _ = _graph()
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_no_importlib_for_the_projects_own_modules() -> None:
    users = [p.relative_to(PACKAGE.parent) for p in PACKAGE.rglob("*.py")
             if "importlib" in p.read_text()]
    assert users == []


def test_every_import_inside_a_function_says_why() -> None:
    _, local = _graph()
    silent = []
    for path, node in local:
        lines = path.read_text().splitlines()
        i = node.lineno - 1
        # The reason is on the line, or on a comment line above the group of imports.
        while i > 0 and "#" not in lines[i] and (
                lines[i - 1].strip().startswith(("import ", "from ")) or not lines[i - 1].strip()):
            i -= 1
        if "#" not in lines[i] and not lines[i - 1].strip().startswith("#") \
                and "commands/__init__.py" not in str(path):
            silent.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert silent == []


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_reading_mail_and_rendering_do_not_load_the_stages() -> None:
    """`reviewbot series` and the renderers start without the rule engines, tree-sitter,
    the kernel build or git: they read the model and the results only (start-up and memory:
    importing the pipeline there cost 0.2 s and 9 MiB per `reviewbot series`)."""
    graph, _ = _graph()
    for light in ("reviewbot.mail", "reviewbot.report.json", "reviewbot.report.text",
                  "reviewbot.results", "reviewbot.model"):
        heavy = {m for m in _reach(graph, light)
                 if m == "reviewbot.pipeline" or m.startswith(("reviewbot.engine",
                                                               "reviewbot.boot",
                                                               "reviewbot.tree"))}
        assert not heavy, (light, sorted(heavy))
