"""Resume state: which server-side uploads hold the bytes of a local file, in one small JSON file.

An entry is keyed by server + absolute path + size + mtime, so a changed file never resumes into
old bytes. The file is ``$PYFILEDROP_STATE`` or ``~/.cache/pyfiledrop/uploads.json``; each
read-modify-write holds an advisory lock, so parallel ``pyfiledrop upload`` runs do not lose entries.
It also remembers one owner token per server, so a user's uploads stay theirs across runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, the last writer wins
    fcntl = None  # type: ignore[assignment]

_MAX_AGE = 14 * 24 * 3600  # entries untouched this long are dropped (the server forgets them sooner)


def default_path() -> Path:
    configured = os.environ.get("PYFILEDROP_STATE")
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "pyfiledrop" / "uploads.json"


def entry_key(server: str, path: str, size: int, mtime_ns: int) -> str:
    return f"{server}|{path}|{size}|{mtime_ns}"


class StateStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.with_name(self.path.name + ".lock").open("a") as lock:
            if fcntl is not None:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            data = self._read()
            before = json.dumps(data, sort_keys=True)
            yield data
            if json.dumps(data, sort_keys=True) != before:
                self._write(data)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {"uploads": {}, "tokens": {}}
        if not isinstance(data, dict):
            return {"uploads": {}, "tokens": {}}
        data.setdefault("uploads", {})
        data.setdefault("tokens", {})
        return data

    def _write(self, data: dict[str, Any]) -> None:
        now = time.time()
        data["uploads"] = {k: v for k, v in data["uploads"].items() if now - v.get("updated", now) < _MAX_AGE}
        fd, temporary = tempfile.mkstemp(prefix=".uploads.", dir=self.path.parent)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        Path(temporary).replace(self.path)

    def get(self, key: str) -> dict[str, Any] | None:
        with self._locked() as data:
            entry = data["uploads"].get(key)
        return entry if isinstance(entry, dict) else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        with self._locked() as data:
            data["uploads"][key] = {**entry, "updated": time.time()}

    def update(self, key: str, change: Callable[[dict[str, Any]], None]) -> None:
        with self._locked() as data:
            entry = data["uploads"].get(key)
            if isinstance(entry, dict):
                change(entry)
                entry["updated"] = time.time()

    def remove(self, key: str) -> None:
        with self._locked() as data:
            data["uploads"].pop(key, None)

    def token(self, server: str) -> str | None:
        with self._locked() as data:
            token = data["tokens"].get(server)
        return token if isinstance(token, str) else None

    def set_token(self, server: str, token: str) -> None:
        with self._locked() as data:
            data["tokens"][server] = token
