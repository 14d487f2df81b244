"""The modules of ``actors`` and ``runtime`` import each other without a cycle.

The graph is read from the source (``ast``), not from an interpreter: an edge
is an ``import``/``from ... import`` of another module of the two packages
(``from package import name`` is an edge to ``package.name`` when that is a
module, else to the package's ``__init__``). Two graphs are checked: the one
Python runs at import time, and the whole one, where imports inside functions
and under ``if TYPE_CHECKING:`` count too, so that neither can hide a cycle. A
package's ``__init__`` importing its own modules is not a cycle (Python imports
a package before its modules).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("actors", "runtime")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _import_time_statements(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                yield from _import_time_statements(node.body)
                yield from _import_time_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, *(h.body for h in node.handlers), node.orelse,
                          node.finalbody):
                yield from _import_time_statements(block)
        elif isinstance(node, ast.With):
            yield from _import_time_statements(node.body)


def _targets(module: str, path: Path, node: ast.Import | ast.ImportFrom,
             modules: dict[str, Path]) -> Iterator[str]:
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
        return
    base = node.module or ""
    if node.level:
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([base] if base else [])])
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        yield sub if sub in modules else base


def _every_import(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node


def import_graph(whole: bool = False) -> dict[str, set[str]]:
    """Each module of the two packages, and the modules of theirs it imports.

    At import time by default; with ``whole``, also inside functions and under
    ``TYPE_CHECKING``. A package's ``__init__`` importing its own modules is no edge.
    """
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        statements = _every_import(tree) if whole else _import_time_statements(tree.body)
        for node in statements:
            graph[name].update(t for t in _targets(name, path, node, modules)
                               if t in modules and t != name
                               and not (path.name == "__init__.py" and t.startswith(name + ".")))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_import_graph_finds_a_cycle_when_there_is_one() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_the_import_graph_reads_every_module_of_both_packages() -> None:
    graph = import_graph()
    assert {"actors", "runtime", "runtime.system", "actors.records"} <= set(graph)
    assert "actors.records" in graph["actors.protocol._checkpoint"] or any(
        target.startswith("actors.records") for target in graph["actors.protocol._checkpoint"])


def test_no_module_of_actors_or_runtime_imports_itself_back_at_import_time() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles (each a set of modules that import each other): " + "; ".join(
        " <-> ".join(component) for component in found)


def test_no_cycle_hides_behind_a_function_local_or_type_checking_import() -> None:
    found = cycles(import_graph(whole=True))
    assert not found, "import cycles, counting every import statement: " + "; ".join(
        " <-> ".join(component) for component in found)


def test_the_whole_graph_sees_imports_inside_functions_and_type_checking_blocks() -> None:
    at_import_time, whole = import_graph(), import_graph(whole=True)
    assert all(at_import_time[module] <= whole[module] for module in whole)
    assert any(at_import_time[module] < whole[module] for module in whole)


def test_actors_never_imports_runtime() -> None:
    graph = import_graph(whole=True)
    leaks = sorted(f"{module} -> {target}" for module, targets in graph.items()
                   if module.startswith("actors") for target in targets
                   if target.startswith("runtime"))
    assert not leaks, leaks


def test_every_function_local_import_says_why_it_is_lazy() -> None:
    unexplained = [f"{path.relative_to(ROOT)}:{number}"
                   for path in _modules().values()
                   for number, line in enumerate(path.read_text().splitlines(), 1)
                   if "noqa: PLC0415" in line
                   and not line.split("noqa: PLC0415", 1)[1].lstrip(", ").startswith("- ")]
    assert not unexplained, f"lazy imports without `# noqa: PLC0415 - why`: {unexplained}"
