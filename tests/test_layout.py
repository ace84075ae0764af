"""The layout the README promises: methods are plug-ins, and packages import each other one way."""

from __future__ import annotations

import ast
import re
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "tasks", "methods", "workers", "service", "cli")


def module_level_imports(path: Path) -> set[str]:
    """The arena packages a module imports at its top level (imports inside functions are deferred on purpose)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "arena" and len(parts) > 1 and parts[1] in PACKAGES:
                found.add(parts[1])
    return found


def test_packages_import_each_other_without_a_cycle():
    graph = {package: set() for package in PACKAGES}
    for package in PACKAGES:
        for path in (ROOT / "arena" / package).rglob("*.py"):
            graph[package] |= module_level_imports(path) - {package}

    def reaches(start: str, goal: str, seen: set) -> bool:
        return any(nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})) for nxt in graph[start])

    cycles = [package for package in PACKAGES if reaches(package, package, {package})]
    assert not cycles, graph
    assert "methods" not in graph["tasks"] and "service" not in graph["methods"] and "workers" not in graph["methods"]


def test_the_readme_method_example_is_a_working_plug_in(monkeypatch):
    """The README's "Adding a method" module, registered with its one line, trains through the public API."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Adding a method") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    module = types.ModuleType("random_search")
    exec(compile(code, "README:random_search", "exec"), module.__dict__)
    monkeypatch.setitem(sys.modules, "random_search", module)

    from arena import execute, resolve
    from arena.methods import ALGORITHMS, METHODS, Method

    monkeypatch.setitem(METHODS, "random_search", Method("random_search", "random search", module, module))
    monkeypatch.setitem(ALGORITHMS, "random_search", module)
    result = execute(resolve("xor", "random_search", {"evaluations": 200_000}), 0)
    assert result.solved and result.evaluations_to_solve <= 200_000
    assert resolve("xor", "random_search", settings={"step": 0.5}).settings.step == 0.5
