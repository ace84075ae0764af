"""The layout design.md promises: methods are plug-ins, and modules import each other one way, with no loop,
function-level imports included."""

from __future__ import annotations

import ast
import re
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARENA = ROOT / "arena"

# The layer order (design.md, "Layout"): a module may import its own package and any layer BELOW its
# own, never one above. cli -> service -> workers -> {store, verdict, studies}; workers -> runner -> runspec
# -> methods -> tasks -> models -> {contract, validation, errors}. store, verdict and studies sit side by
# side (the ledger reads the verdict's plain run table and a study's plan; the file-loop test keeps them
# from reaching each other both ways); methods are below them (they read names and labels from the registry).
# The root `arena` package (its version and the lazy public API) is the parent of every module, imported
# before any of them, so an import of it is no arrow.
LAYERS = {
    "__main__": 11, "cli": 10, "service": 9, "workers": 8, "runner": 7, "runspec": 6, "migrations": 6,
    "store": 5, "verdict": 5, "studies": 5, "methods": 4, "tasks": 3, "models": 2, "contract": 1, "validation": 1, "errors": 0,
}  # fmt: skip


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in ARENA.rglob("*.py")}


def layer_of(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def imports(module: str) -> dict[str, str]:
    """{arena module imported: "module level" or "in a function"}: every import statement of the file,
    those inside functions, methods and conditionals included; `from package import submodule` names the
    submodule's file, `from package import name` the package's __init__."""
    path = MODULES[module]
    tree = ast.parse(path.read_text())
    top_level = {id(node) for node in tree.body}
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..store import y
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:  # `import arena.tasks.car.sim as sim`: the file, `arena.x.NAME`: x
                target = target.rpartition(".")[0]
            if target.startswith("arena") and target not in (module, "arena"):
                where = "module level" if id(node) in top_level else "in a function"
                found[target] = "module level" if found.get(target) == "module level" else where
    return found


GRAPH = {module: imports(module) for module in MODULES}


def test_every_package_has_a_layer():
    assert {layer_of(module) for module in MODULES} - {""} <= set(LAYERS)


def test_no_import_runs_back_up_the_layers():
    """Function-level imports included: a deferred import is still a dependency."""
    upward = sorted(
        f"{module} -> {target} ({where})"
        for module, targets in GRAPH.items()
        for target, where in targets.items()
        if layer_of(module) != layer_of(target) and LAYERS[layer_of(target)] > LAYERS[layer_of(module)]
    )
    assert not upward, "imports that run back up the layer order:\n" + "\n".join(upward)


def test_no_import_loop_between_files():
    """No two files reach each other through imports, function-level ones included (Tarjan's strongly
    connected components of the file graph: every component must be a single file)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def visit(module: str) -> None:  # recursive; the graph is a few hundred files deep at most
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in GRAPH[module]:
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                loops.append(sorted(component))

    for module in GRAPH:
        if module not in index:
            visit(module)
    described = [
        " <-> ".join(loop) + ": " + "; ".join(f"{a} -> {b} ({GRAPH[a][b]})" for a in loop for b in GRAPH[a] if b in loop)
        for loop in loops
    ]
    assert not loops, "import loops between files:\n" + "\n".join(described)


def test_the_graph_sees_function_level_imports():
    """The test would be blind without these: known deferred imports, found."""
    assert GRAPH["arena.workers.worker"].get("arena.runner") == "in a function"  # torch only in the worker child
    assert GRAPH["arena.methods.es"]["arena.methods.loop"] == "module level"


def test_the_http_layer_never_imports_a_trainer_at_module_level():
    """What the API process loads stays torch-free: service modules reach methods only through the registry
    (plain data; each algorithm imports its heavy libraries inside functions)."""
    for module, targets in GRAPH.items():
        if layer_of(module) == "service":
            assert not any(target.startswith(("arena.runner", "arena.models.network")) for target in targets), module


def test_the_readme_method_example_is_a_working_plug_in(monkeypatch):
    """The "Adding a method" module (docs/methods.md), registered with its one line, trains through the public API."""
    readme = (ROOT / "docs" / "methods.md").read_text()
    section = readme[readme.index("### Adding a method") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    module = types.ModuleType("random_search")
    exec(compile(code, "docs/methods.md:random_search", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, "random_search", module)

    from arena import execute, resolve
    from arena.methods import ALGORITHMS, METHODS, Method

    monkeypatch.setitem(METHODS, "random_search", Method("random_search", "random search", module, module))
    monkeypatch.setitem(ALGORITHMS, "random_search", module)
    result = execute(resolve("xor", "random_search", {"evaluations": 200_000}), 0)
    assert result.solved and result.evaluations_to_solve <= 200_000
    assert resolve("xor", "random_search", settings={"step": 0.5}).settings.step == 0.5
