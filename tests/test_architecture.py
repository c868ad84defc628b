"""The package's layering, read from its source: Ray imported only at the edges, no import
circle, and the report and the definition free of Ray and torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "bench"
# Where Ray may be imported: the Tune and Ray Train edges, job submission, and the driver's
# one door to the cluster (connect, resources, object store).
RAY_EDGES = ("bench/tune/", "bench/train/ray_train.py", "bench/cluster.py", "bench/driver.py")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(module: str, path: Path) -> set[str]:
    """Every module named by an import anywhere in the file (lazy imports included)."""
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: {n for n in _imports(m, p) if n in modules and n != m} for m, p in modules.items()}


def test_ray_is_imported_only_at_the_edges():
    outside = [
        str(path.relative_to(PACKAGE.parent))
        for module, path in _modules().items()
        if any(n == "ray" or n.startswith("ray.") for n in _imports(module, path))
        and not str(path.relative_to(PACKAGE.parent)).startswith(RAY_EDGES)
    ]
    assert outside == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), a package importing
    its own submodules aside."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = iter(range(10**9))

    def visit(v: str) -> None:
        index[v] = low[v] = next(counter)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            root = min(component, key=len)
            if len(component) > 1 and not all(c.startswith(root) for c in component):
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circle():
    assert _cycles(_graph()) == []


def test_the_circle_finder_finds_a_circle():
    """So that the test above can fail."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]


def test_the_registry_and_the_data_package_depend_one_way():
    graph = _graph()
    data = [m for m in graph if m.startswith("bench.data")]
    assert not any(n.startswith("bench.registry") for m in data for n in graph[m])


@pytest.mark.parametrize(
    "module",
    [
        "bench.config",
        "bench.plan",
        "bench.registry",
        "bench.report.build",
        "bench.export",
        "bench.progress",
    ],
)
def test_module_imports_neither_ray_nor_torch(module):
    code = f"import sys, {module}; print(sorted({{'ray', 'torch'}} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
