"""The package's floors: no import cycles among `vae` modules, no `vae` import tucked inside a
function, and every module imports only from its own floor or the floors below it."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "vae"

# floor of each top-level module or package of `vae` (see vae/__init__.py and the README's layout)
FLOORS = {
    "vae.version": 0, "vae.errors": 0, "vae.registry": 0, "vae.config_sections": 0, "vae.config": 0, "vae.parallel": 0,
    "vae.memory": 0, "vae.checkpoint": 0, "vae.plots": 0,
    "vae.data": 1, "vae.models": 1,
    "vae.objectives": 2, "vae.variants": 3,
    "vae.step": 4,
    "vae.trained": 5, "vae.metrics": 6, "vae.samplers": 6, "vae.explore": 7,
    "vae.run": 8,
    "vae.quality": 9, "vae.synthesis": 9, "vae.evaluate": 10, "vae.presets": 9, "vae.cli": 11, "vae": 12,
}


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in PKG.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: pathlib.Path, package: str) -> tuple[set[str], list[str]]:
    """(vae modules imported at module level, `vae` imports found inside functions)."""
    tree = ast.parse(path.read_text())
    top, nested = set(), []

    def names(node) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        base = node.module or ""
        if node.level:  # relative import
            base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
        return [base] + [f"{base}.{a.name}" for a in node.names]

    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    nested += [n for n in names(inner) if n == "vae" or n.startswith("vae.")]
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            top.update(n for n in names(node) if n == "vae" or n.startswith("vae."))
        elif isinstance(node, ast.If):  # `if TYPE_CHECKING:` blocks and the like
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    top.update(n for n in names(inner) if n == "vae" or n.startswith("vae."))
    return top, nested


def _graph():
    modules = _modules()
    graph, nested = {}, {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        top, inner = _imports(path, package)
        graph[name] = {m for m in top if m in modules and m != name}
        nested[name] = inner
    return graph, nested


def _floor(module: str) -> int:
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in FLOORS:
            return FLOORS[key]
    raise AssertionError(f"{module} has no floor in tests/test_layout.py")


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _without_parents(graph):
    """A package's __init__ that imports its own submodules is not a cycle with them."""
    return {m: {d for d in deps if not m.startswith(d + ".")} for m, deps in graph.items()}


def test_no_import_cycles_among_vae_modules():
    graph, _ = _graph()
    assert _cycles(_without_parents(graph)) == []


def test_no_vae_import_inside_a_function():
    _, nested = _graph()
    assert {m: n for m, n in nested.items() if n} == {}


def test_every_module_imports_downward_only():
    graph, _ = _graph()
    upward = []
    for module, deps in _without_parents(graph).items():
        for dep in deps:
            if not dep.startswith(module + ".") and _floor(dep) > _floor(module):
                upward.append(f"{module} (floor {_floor(module)}) imports {dep} (floor {_floor(dep)})")
    assert upward == []


def test_the_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_modules_are_small():
    sizes = {name: len(path.read_text().splitlines()) for name, path in _modules().items()}
    too_big = {name: n for name, n in sizes.items() if n > 450}
    assert too_big == {}
