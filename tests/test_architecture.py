"""The layout rules of docs/design.md that a review would otherwise have to check by hand.

- No import cycle between our modules, counting imports inside functions too (a lazy import hides a
  cycle from the interpreter, not from a reader). ``TYPE_CHECKING`` imports do not count.
- No module over 450 lines outside the tests (split along what it holds).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("stockflow", "flows", "tasks", "models", "deployments", "expectations", "bench")
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = f.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            mods[name] = f
    return mods


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST, mods: dict[str, Path]) -> set[str]:
    deps: set[str] = set()
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            skip.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            deps.update(r for a in node.names if (r := _resolve(a.name, mods)))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in mods]
            if subs and len(subs) == len(node.names):
                deps.update(subs)  # `from pkg import submodule`: the submodule, not the package
            elif (r := _resolve(node.module, mods)) is not None:
                deps.add(r)
    return deps


def import_graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports."""
    mods = _modules()
    graph = {name: _imports(ast.parse(path.read_text(encoding="utf-8")), mods) for name, path in mods.items()}
    for name, deps in graph.items():
        deps.discard(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles (break them: move the shared piece into a module both import): " + str(
        found
    )


def test_the_cycle_check_finds_a_planted_cycle() -> None:
    graph = import_graph()
    graph["stockflow.errors"] = {*graph["stockflow.errors"], "stockflow.config"}
    assert any("stockflow.errors" in c for c in cycles(graph))


def test_no_module_over_450_lines() -> None:
    long = {
        str(p.relative_to(ROOT)): n
        for p in _modules().values()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines (split along what they hold): {long}"
