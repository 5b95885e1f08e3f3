"""The import structure of `looop/`, read from the source: layers that import only downwards, no
cycles, and the heavy libraries (actors, ptys, terminal emulation) only where the pulse (the `up`
process) and its workers need them."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "looop"
HEAVY = {
    "pykka": {"looop.supervisor", "looop.daemon.*", "looop.actors.*"},
    "pexpect": {"looop.workers.pty_session"},
    "pyte": {"looop.workers.terminal"},
}
LAYERS = ["base", "store", "world", "workers", "daemon", "cli"]
"""Lowest first: a module imports only modules of its own layer or of lower ones."""
DAEMON = {"actors", "supervisor"}  # the fixed top-level layout: part of the daemon layer


def layer(module: str) -> int | None:
    """The rank of `module`'s layer, or None for the package itself and `python -m looop`."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] == "__main__":
        return None
    top = "daemon" if parts[1] in DAEMON else parts[1]
    assert top in LAYERS, f"{module} is in no layer: put it in one of {', '.join(LAYERS)}"
    return LAYERS.index(top)


def _allowed(module: str, patterns: set[str]) -> bool:
    return any(module == p or (p.endswith(".*") and module.startswith(p[:-1])) for p in patterns)


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at its top or inside a function (a lazy import is still one)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: (_imports(path) & modules.keys()) - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> list[str] | None:
        if name in trail:
            return [*trail[trail.index(name) :], name]
        if name in done:
            return None
        for dep in sorted(graph[name]):
            if found := visit(dep, [*trail, name]):
                return found
        done.add(name)
        return None

    for name in sorted(graph):
        if found := visit(name, []):
            return found
    return None


def test_no_module_of_looop_closes_an_import_cycle() -> None:
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle_it_is_shown() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]


def test_no_module_of_looop_imports_a_higher_layer() -> None:
    upward = [
        f"{name} ({LAYERS[mine]}) imports {dep} ({LAYERS[theirs]})"
        for name, deps in _graph().items()
        if (mine := layer(name)) is not None
        for dep in sorted(deps)
        if (theirs := layer(dep)) is not None and theirs > mine
    ]
    assert not upward, "imports that point up:\n" + "\n".join(upward)


def test_the_layer_check_sees_an_import_that_points_up() -> None:
    assert layer("looop.store.asks") == 1 and layer("looop.world.client") == 2
    assert layer("looop.actors.session") == layer("looop.supervisor") == layer("looop.daemon.launch") == 4
    assert layer("looop") is None and layer("looop.__main__") is None


def test_heavy_libraries_are_imported_only_by_the_pulse_and_its_workers() -> None:
    for name, path in _modules().items():
        imported = {i.split(".")[0] for i in _imports(path)}
        for library, allowed in HEAVY.items():
            if library in imported:
                assert _allowed(name, allowed), f"{name} imports {library}"
