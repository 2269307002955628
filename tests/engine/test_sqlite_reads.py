"""Point reads of the SQLite store run on the event loop's own connection (``SQLiteMetadataStore._read``): they see
every committed write at once, and when the database is locked they go to the store's thread instead of
blocking the loop."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

from pyfiledrop.domain.model import Protocol, Upload
from pyfiledrop.meta.sqlite import SQLiteMetadataStore


@contextlib.asynccontextmanager
async def open_store(tmp_path: Path) -> AsyncIterator[SQLiteMetadataStore]:
    store = SQLiteMetadataStore(tmp_path / "db.sqlite3")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def _upload(upload_id: str) -> Upload:
    now = time.time()
    return Upload(id=upload_id, filename="a.bin", owner="owner-1", size=10, protocol=Protocol.TUS,  # type: ignore[arg-type]
                  created_at=now, updated_at=now, content_type="application/octet-stream")  # fmt: skip


def test_a_read_on_the_loop_sees_each_committed_write(tmp_path: Path) -> None:
    async def main() -> None:
        async with open_store(tmp_path) as store:
            await store.insert(_upload("A" * 24))
            for end in range(1, 11):
                await store.record_range("A" * 24, end - 1, end)  # type: ignore[arg-type]
                assert (await store.get("A" * 24)).received.total == end  # type: ignore[arg-type]

    asyncio.run(main())


class _BusyOnce:
    """The loop's connection, answering 'database is locked' to the first statement (as a WAL reader may while
    another process recovers the database)."""

    def __init__(self, real: sqlite3.Connection) -> None:
        self.real = real
        self.refused = 0

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        if not self.refused:
            self.refused += 1
            exc = sqlite3.OperationalError("database is locked")
            exc.sqlite_errorcode = sqlite3.SQLITE_BUSY
            raise exc
        return self.real.execute(sql, params)


def test_a_read_refused_as_busy_on_the_loop_is_made_in_the_thread(tmp_path: Path) -> None:
    async def main() -> None:
        async with open_store(tmp_path) as store:
            await store.insert(_upload("B" * 24))
            assert store._reader is not None
            busy = _BusyOnce(store._reader)
            store._reader = busy  # type: ignore[assignment]
            called_from: list[int] = []
            real_call = store._call

            def spy(fn):  # type: ignore[no-untyped-def]
                called_from.append(threading.get_ident())
                return real_call(fn)

            store._call = spy  # type: ignore[method-assign]
            assert (await store.get("B" * 24)).filename == "a.bin"  # type: ignore[arg-type]
            assert busy.refused == 1 and len(called_from) == 1, "refused on the loop, then read in the thread"
            assert called_from[0] != threading.get_ident()
            assert (await store.get("B" * 24)).filename == "a.bin"  # type: ignore[arg-type]
            assert len(called_from) == 1, "the next read is on the loop again"
            store._reader = busy.real

    asyncio.run(main())
