"""The package's import graph, read from the source with ``ast``: no circle of imports, no
arrow back up to the package's front door (or another ancestor package) from inside it, and
the model contract as the only way a module outside ``fatsr.models`` asks a model anything.

Imports under ``if TYPE_CHECKING:`` are left out (they never run); imports inside functions
count (they run when the function does)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "fatsr"
# what ModelInfo describes, and the attributes models carried before it did
CONTRACT_FIELDS = {
    "info", "name", "scale", "channels", "in_channels", "out_channels", "mapping", "seed", "metadata", "size",
    "tile", "float16", "bfloat16", "architecture", "size_multiple", "padded_size",
}  # fmt: skip


def modules() -> dict[str, Path]:
    """Module name -> file of every module of the package (the QGIS plugin, not a package of it, left out)."""
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if any("-" in part for part in parts):
            continue
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` outside ``if TYPE_CHECKING:`` blocks."""
    found: list[ast.AST] = []
    stack = [tree]
    while stack:
        node = stack.pop()
        found.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                stack.extend(child.orelse)
            else:
                stack.append(child)
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that module ``name`` imports at run time; ``from a import b`` names
    the module ``a.b`` where that is one, else ``a``."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + is_package]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.add(sub if sub in known else source)
    return {m for m in found if m in known}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, set(known)) for name, path in known.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module, or of one that imports itself (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges[v]:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_circle_and_an_arrow_up():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []
    edges = graph()
    assert "fatsr.models.zoo" in edges["fatsr.models.loading"]  # `from fatsr.models import zoo` is the module
    assert "fatsr.version" in edges["fatsr"]


def test_no_import_circle():
    assert circles(graph()) == []


def test_no_import_runs_back_up_to_an_ancestor_package():
    up = sorted(
        (name, target)
        for name, targets in graph().items()
        for target in targets
        if name != target and name.startswith(target + ".")
    )
    assert up == []


def test_no_module_outside_models_asks_a_model_by_getattr():
    """Outside ``fatsr.models`` a model is asked through its ``info`` (the contract), never
    with ``getattr``/``hasattr`` on a contract field."""
    found = []
    for name, path in modules().items():
        if name.startswith("fatsr.models"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in ("getattr", "hasattr")
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
                and node.args[1].value in CONTRACT_FIELDS
            ):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)}")
    assert found == []


def test_models_do_not_import_data_or_inference():
    edges = graph()
    below = {n: {t for t in ts if t.startswith(("fatsr.data", "fatsr.inference", "fatsr.training"))}
             for n, ts in edges.items() if n.startswith("fatsr.models")}  # fmt: skip
    assert {n: ts for n, ts in below.items() if ts} == {}
