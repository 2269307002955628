"""Imports only point down: the layering rule of docs/architecture.md, checked on the source itself.

Each module gets the rank of the longest entry of ``RANKS`` that names it or a package above it. A module may
import anything in its own package (the first two parts of its name: ``pyfiledrop.storage.*``) and anything of a
strictly lower rank, nothing else. ``cpupaint`` is a separate program and imports nothing of ``pyfiledrop``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"

# Lowest first. The foundation is pure or a small utility every floor may use; httpd (our HTTP/1.1 server) knows
# nothing of pyfiledrop's routes, stores or engine; extras hang off the engine and never reach into a protocol;
# protocols use the web kit (requests, context, auth, error rendering); web.app wires protocols to routes.
RANKS: dict[str, int] = {
    "pyfiledrop.errors": 0,
    "pyfiledrop.domain": 1,
    "pyfiledrop.workers": 1,
    "pyfiledrop.sockets": 1,
    "pyfiledrop.passwords": 1,
    "pyfiledrop.units": 1,
    "pyfiledrop.logs": 1,
    "pyfiledrop.listen": 1,
    "pyfiledrop.config": 2,
    "pyfiledrop.client": 2,
    "pyfiledrop.httpd": 3,
    "pyfiledrop.storage": 3,
    "pyfiledrop.meta": 3,
    "pyfiledrop.engine": 4,
    "pyfiledrop.video": 5,
    "pyfiledrop.awake": 5,
    "pyfiledrop.web": 6,
    "pyfiledrop.protocols": 7,
    "pyfiledrop.web.app": 8,
    "pyfiledrop.cli": 10,
    "pyfiledrop.__main__": 11,
}
# Modules of a package that the package's own command line pulls in lazily (kept in the package, ranked above it).
TOP = 9  # below cli.py, which registers each feature's sub-commands


def module_name(path: Path, root: Path = SRC) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def rank(module: str) -> int | None:
    if module == "pyfiledrop":
        return 0  # the package's __init__: a docstring and the version
    best: tuple[int, int] | None = None
    for prefix, value in RANKS.items():
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
            best = (len(prefix), value)
    if best is None:
        return None
    if module.endswith(".cli") and module != "pyfiledrop.cli":
        return TOP  # a feature's own sub-command parser sits beside cli.py, which registers it
    return best[1]


def package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def is_module(name: str, root: Path) -> bool:
    path = root.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports(path: Path, root: Path = SRC) -> Iterator[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = module_name(path, root).split(".")
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here if is_package else here[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield node.lineno, target
            for alias in node.names:  # `from pyfiledrop import web` imports the module web
                if is_module(f"{target}.{alias.name}", root):
                    yield node.lineno, f"{target}.{alias.name}"


def sources(top: str, root: Path = SRC) -> list[Path]:
    return sorted((root / top).rglob("*.py"))


def violations(root: Path = SRC) -> list[str]:
    found = []
    for path in sources("pyfiledrop", root):
        source = module_name(path, root)
        own = rank(source)
        assert own is not None, f"{source} has no rank: add its package to RANKS in {__file__}"
        for line, target in imports(path, root):
            if not target.startswith("pyfiledrop.") or package(target) == package(source):
                continue
            theirs = rank(target)
            if theirs is not None and theirs >= own:
                found.append(f"{path.relative_to(root)}:{line}: {source} (rank {own}) imports {target} (rank {theirs})")
    return sorted(set(found))


def test_every_import_points_down() -> None:
    assert violations() == []


@pytest.mark.parametrize("path", sources("cpupaint") or [None], ids=str)
def test_cpupaint_shares_nothing_with_the_server(path: Path | None) -> None:
    if path is None:
        pytest.skip("no cpupaint package in this tree")
    bad = [target for _, target in imports(path) if target == "pyfiledrop" or target.startswith("pyfiledrop.")]
    assert bad == []


def test_the_rule_catches_an_upward_import(tmp_path: Path) -> None:
    """The checker itself, on a small tree: engine → web.app is reported; engine → storage and web → engine are not."""
    files = {
        "pyfiledrop/__init__.py": "",
        "pyfiledrop/engine/__init__.py": "",
        "pyfiledrop/engine/service.py": "from pyfiledrop.web.app import create_app\nfrom ..storage import base\n",
        "pyfiledrop/storage/__init__.py": "",
        "pyfiledrop/storage/base.py": "from pyfiledrop.domain import ids\n",
        "pyfiledrop/domain/__init__.py": "",
        "pyfiledrop/domain/ids.py": "",
        "pyfiledrop/web/__init__.py": "",
        "pyfiledrop/web/app.py": "from pyfiledrop.engine import service\nfrom . import http\n",
        "pyfiledrop/web/http.py": "from pyfiledrop.web import app\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert violations(tmp_path) == [
        "pyfiledrop/engine/service.py:1: pyfiledrop.engine.service (rank 4) imports pyfiledrop.web.app (rank 8)",
    ]
    assert rank("pyfiledrop.video.cli") == TOP and rank("pyfiledrop.web.http") == 6
