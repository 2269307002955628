"""Fixtures for the interop tests: random source files, the Node tus-js-client driver, and the stored-file check."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

JS_DIR = Path(__file__).parent / "js"
NODE_MAJOR = 20
MiB = 1 << 20


@dataclass(frozen=True)
class Source:
    path: Path
    size: int
    sha256: str


@pytest.fixture
def make_source(tmp_path: Path) -> Callable[[int, str], Source]:
    """A file of random bytes (written in 1 MiB blocks) and its sha256."""

    def make(size: int, name: str = "source.bin") -> Source:
        path = tmp_path / name
        digest = hashlib.sha256()
        with path.open("wb") as out:
            remaining = size
            while remaining:
                block = os.urandom(min(MiB, remaining))
                digest.update(block)
                out.write(block)
                remaining -= len(block)
        return Source(path, size, digest.hexdigest())

    return make


def check_stored(client: httpx.Client, upload_id: str, source: Source, token: str) -> dict[str, Any]:
    """The server's copy is the source: by GET /download/{id} and by the sha256 /api/uploads/{id} reports."""
    digest = hashlib.sha256()
    with client.stream("GET", f"/download/{upload_id}") as response:
        assert response.status_code == 200, response.read()
        for block in response.iter_bytes():
            digest.update(block)
    client.cookies.clear()
    assert digest.hexdigest() == source.sha256, "the downloaded file differs from the source"
    info = client.get(f"/api/uploads/{upload_id}", headers={"X-Pyfiledrop-Token": token})
    client.cookies.clear()
    assert info.status_code == 200, info.text
    data: dict[str, Any] = info.json()
    assert data["complete"] is True
    assert data["size"] == source.size
    assert data["sha256"] == source.sha256
    return data


@dataclass
class NodeRun:
    returncode: int
    events: list[dict[str, Any]]
    stderr: str

    def last(self, event: str) -> dict[str, Any]:
        found = [e for e in self.events if e["event"] == event]
        assert found, f"no {event!r} event in {self.events}\nstderr:\n{self.stderr}"
        return found[-1]


class TusJsClient:
    """Runs ``tests/interop/js/upload.mjs`` (the real tus-js-client) in a new Node process per call."""

    def __init__(self, node: str) -> None:
        self.node = node

    def run(self, timeout: float = 120, **options: Any) -> NodeRun:
        options = {key: str(value) if isinstance(value, Path) else value for key, value in options.items()}
        completed = subprocess.run(
            [self.node, str(JS_DIR / "upload.mjs"), json.dumps(options)],
            cwd=JS_DIR, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        events = [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]
        return NodeRun(completed.returncode, events, completed.stderr)


@pytest.fixture(scope="session")
def tus_js() -> TusJsClient:
    """Node ≥ 20 with tus-js-client installed from the committed package-lock.json (``npm ci`` if missing)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("the interop tests need node (>= 20) and npm on PATH, e.g. apt-get install nodejs npm")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    assert int(version.lstrip("v").split(".")[0]) >= NODE_MAJOR, f"node {version} is older than v{NODE_MAJOR}"
    if not (JS_DIR / "node_modules" / "tus-js-client" / "package.json").is_file():
        installed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, capture_output=True, text=True, timeout=300,
            check=False,
        )  # fmt: skip
        assert installed.returncode == 0, f"npm ci failed:\n{installed.stdout}\n{installed.stderr}"
    return TusJsClient(node)
