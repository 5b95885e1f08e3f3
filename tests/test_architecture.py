"""The import structure of `looop/`, read from the source: no cycles, and the heavy libraries
(actors, ptys, terminal emulation) only where the `up` process and its workers need them."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "looop"
HEAVY = {
    "pykka": {"looop.supervisor", "looop.daemon", "looop.fleet"},  # and looop.actors.*
    "pexpect": {"looop.babysit"},
    "pyte": {"looop.term"},
}


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


def test_heavy_libraries_are_imported_only_by_the_up_process_and_its_workers() -> None:
    for name, path in _modules().items():
        imported = {i.split(".")[0] for i in _imports(path)}
        for library, allowed in HEAVY.items():
            if library in imported:
                assert name in allowed or (library == "pykka" and name.startswith("looop.actors.")), (
                    f"{name} imports {library}"
                )
