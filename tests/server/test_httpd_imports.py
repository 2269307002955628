"""The HTTP server is a room of its own: ``pyfiledrop.httpd`` imports nothing of pyfiledrop's app, engine or stores
(only the two low utilities beside it), and none of its modules import each other in a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pyfiledrop.httpd

PACKAGE = Path(pyfiledrop.httpd.__file__).parent
ALLOWED_OUTSIDE = {"pyfiledrop.sockets", "pyfiledrop.workers"}


def imports_of(path: Path) -> set[str]:
    """Every pyfiledrop module a file imports, at run time or for type checking alike."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pyfiledrop"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("pyfiledrop"))
    return found


def test_httpd_imports_only_itself_and_the_low_utilities() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) > 5
    for path in modules:
        outside = {m for m in imports_of(path) if not m.startswith("pyfiledrop.httpd")}
        assert outside <= ALLOWED_OUTSIDE, f"{path.name} imports {outside - ALLOWED_OUTSIDE}"


def test_httpd_modules_import_each_other_without_a_cycle() -> None:
    graph = {p.stem: {m.rsplit(".", 1)[1] for m in imports_of(p) if m.startswith("pyfiledrop.httpd.")}
             for p in PACKAGE.glob("*.py")}  # fmt: skip
    state: dict[str, str] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert state.get(name) != "open", f"import cycle: {' -> '.join((*trail, name))}"
        if state.get(name) == "done":
            return
        state[name] = "open"
        for other in graph.get(name, ()):
            visit(other, (*trail, name))
        state[name] = "done"

    for name in graph:
        visit(name, ())
    assert graph["server"] and graph["connection"] and "server" not in graph["connection"]
