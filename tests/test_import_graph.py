"""The import graph of every package has no circle, counting imports inside functions too.

A lazy (function-level) import that dodges a circle still is one: the two modules need each
other, so what they share belongs in a third module both import (issue 13). The graph is read from
the AST of every file, so no module is imported to build it; O(files + imports).
"""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("spechub_theory", "lp", "empirical", "figures", "spechub_cli")


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _targets(node, module: str, is_package: bool) -> list:
    """First-party modules named by one ``import`` / ``from ... import`` node."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
        base = ".".join(anchor + ([node.module] if node.module else []))
    else:
        base = node.module or ""
    # ``from pkg import sub`` names the submodule when there is one, else the package itself
    subs = [f"{base}.{alias.name}" for alias in node.names if _is_module(f"{base}.{alias.name}")]
    return subs if len(subs) == len(node.names) else subs + [base]


def import_graph() -> dict:
    """Module -> set of first-party modules it imports anywhere in its file (functions included)."""
    graph = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = _module_name(path)
            edges = graph.setdefault(module, set())
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    edges.update(t for t in _targets(node, module, path.name == "__init__.py")
                                 if t.split(".")[0] in PACKAGES and _is_module(t) and t != module)
    return graph


def find_circle(graph: dict):
    """One circle of ``graph`` as a list of modules (first repeated at the end), or None. O(V + E)."""
    state, stack = {}, []

    def visit(v):
        state[v] = "open"
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if state.get(w) == "open":
                return stack[stack.index(w):] + [w]
            if w not in state and (found := visit(w)):
                return found
        state[v] = "done"
        stack.pop()
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_find_circle_finds_a_planted_circle():
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_function_level_imports():
    graph = import_graph()
    assert "lp.fast_torch" in graph["lp.fast"]  # imported inside optimal_acceptance only


def test_import_graph_has_no_circle():
    circle = find_circle(import_graph())
    assert circle is None, "import circle: " + " -> ".join(circle)
