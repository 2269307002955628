"""The engine in-process on a real folder and SQLite file, with crashes injected at exact points.

A :class:`Crash` is a ``BaseException``: raised from inside a call, it unwinds like a kill -9 would stop the process
there. No ``except Exception`` handler sees it and nothing after it runs; only what was committed to SQLite and
written to files stays. The next :func:`running` block opens the same folder afresh (no in-memory state survives,
as after a restart) and runs the start-up recovery.

The folder has the server's layout (``.pyfiledrop.sqlite3``, ``.partial/``), so ``crashkit.check_storage`` checks it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyfiledrop.domain.model import Protocol
from pyfiledrop.engine.lifecycle import Lifecycle, StartupReport
from pyfiledrop.engine.service import Limits, NewUpload, UploadService
from pyfiledrop.meta.sqlite import SQLiteMetadataStore
from pyfiledrop.storage.local import LocalStorage


class Crash(BaseException):
    """The process died here."""


@dataclass
class Engine:
    root: Path
    service: UploadService
    report: StartupReport | None  # what start-up recovery did

    @property
    def meta(self) -> SQLiteMetadataStore:
        return self.service.meta  # type: ignore[return-value]

    @property
    def storage(self) -> LocalStorage:
        return self.service.storage  # type: ignore[return-value]


@asynccontextmanager
async def running(root: Path, *, limit: int = 1 << 30, startup: bool = True) -> AsyncIterator[Engine]:
    """A fresh UploadService on ``root``, start-up recovery run first; closed at the end, even after a Crash."""
    (root / ".partial").mkdir(parents=True, exist_ok=True)
    storage = LocalStorage(root, root / ".partial", fsync_chunks=False, fsync_files=False)
    meta = SQLiteMetadataStore(root / ".pyfiledrop.sqlite3", synchronous="NORMAL")
    await meta.open()
    service = UploadService(storage, meta, Limits(limit, expire_after=3600))
    try:
        report = await Lifecycle(service, 3600).on_startup() if startup else None
        yield Engine(root, service, report)
    finally:
        for task in asyncio.all_tasks() - {asyncio.current_task()}:  # background hashing of the dead "process"
            task.cancel()
        await meta.close()


def crash_at(obj: object, name: str, *, after: int = 0, before: bool = True) -> None:
    """Make ``obj.name`` (an async method) crash: before it runs, or after it did its work; ``after`` calls pass."""
    original: Callable[..., Awaitable[Any]] = getattr(obj, name)
    calls = [0]

    async def crashing(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        if calls[0] <= after:
            return await original(*args, **kwargs)
        if before:
            raise Crash(f"{name} (call {calls[0]})")
        await original(*args, **kwargs)
        raise Crash(f"after {name} (call {calls[0]})")

    setattr(obj, name, crashing)


async def body(
    data: bytes, piece: int = 7919, *, fail_after: int | None = None, exc: BaseException | None = None
) -> AsyncIterator[bytes]:
    """``data`` in pieces; with ``fail_after`` < len(data), raise ``exc`` once that many bytes were handed over."""
    limit = len(data) if fail_after is None else min(fail_after, len(data))
    for i in range(0, limit, piece):
        yield data[i : min(i + piece, limit)]
        await asyncio.sleep(0)
    if exc is not None and limit < len(data):
        raise exc


def new(content_index: int, size: int | None, protocol: Protocol = Protocol.TUS, **kwargs: Any) -> NewUpload:
    """An upload named as crashkit expects (``c<content>-…``), so the checks know what bytes it must hold."""
    return NewUpload(f"c{content_index}-engine.bin", "owner-1", size, protocol, **kwargs)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
