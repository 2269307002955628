"""Upload records in SQLite (WAL): every acknowledged range is committed before the client hears 2xx."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.domain.model import BlobRef, Upload, UploadState
from pyfiledrop.errors import BlobGone, StorageFull, UploadConflict, UploadNotFound
from pyfiledrop.meta import migrations
from pyfiledrop.meta.base import Usage
from pyfiledrop.meta.rows import INSERT as _INSERT
from pyfiledrop.meta.rows import SELECT as _SELECT
from pyfiledrop.meta.rows import UploadQueries
from pyfiledrop.meta.rows import from_row as _from_row
from pyfiledrop.meta.rows import to_row as _to_row
from pyfiledrop.meta.sql import Dialect, SQLiteTx, Tx
from pyfiledrop.workers import wrap_job

log = logging.getLogger("pyfiledrop.meta")

_CHECKPOINT_EVERY = 256  # commits on the loop's connection between checkpoints (SQLite's own: 1000 pages)

T = TypeVar("T")


class SQLiteMetadataStore(UploadQueries):
    dialect = Dialect.SQLITE

    def __init__(self, path: Path, *, synchronous: str = "FULL", on_full: Callable[[], bool] | None = None,
                 upgrade_command: str = "pyfiledrop db upgrade") -> None:  # fmt: skip
        self.path = path
        self.upgrade_command = upgrade_command  # named when the schema is outdated (meta/migrations.py)
        self.synchronous = synchronous
        # Called when a write finds the disk full: True if it freed room (the disk reserve), and the write is tried
        # once more. Deletions must still be recordable on a full disk, or nothing could ever free it.
        self.on_full = on_full
        # One thread owns the writing connection: statements run in order, never on the event loop.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._db: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None  # point reads, on the event loop (see ``_read``)
        self._writer: sqlite3.Connection | None = None  # short writes, on the event loop (see ``_write``)
        self._loop_commits = 0

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on the store's connection thread (for stores of other records in the same database)."""
        return await self._run(fn)

    async def transact(self, fn: Callable[[Tx], T]) -> T:
        """``fn`` in one BEGIN IMMEDIATE transaction, for the side stores (meta/sql.py)."""

        def _in_transaction(db: sqlite3.Connection) -> T:
            with _transaction(db):
                return fn(SQLiteTx(db))

        return await self._run(_in_transaction)

    async def query(self, fn: Callable[[Tx], T]) -> T:
        return await self._run(lambda db: fn(SQLiteTx(db)))

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await wrap_job(self._executor.submit(self._call, fn))
        except StorageFull:
            if self.on_full is None or not self.on_full():
                raise
        return await wrap_job(self._executor.submit(self._call, fn))  # a failed write was rolled back: run it again

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A point read (one row by key) on the event loop's own read-only connection. It takes a few µs, where a
        hop to the database thread and back costs ~120 µs of CPU on the 2-core VMs we measure on — several per
        request. WAL readers do not wait for the writer and see every committed write; should the database be
        busy all the same (another process recovering it), the read goes to the thread, which may wait."""
        if self._reader is not None:
            try:
                return fn(self._reader)
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise
        return await self._run(fn)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A short write transaction on the event loop's own writing connection (as ``_read``: the hop to the
        database thread and back costs more CPU than the insert itself, and on a busy server every thread hand-off
        is a GIL hand-off). Only where a commit does not wait for the disk (synchronous=NORMAL: WAL appends, the
        fsync comes with checkpoints, which the database thread runs); the database busy (the thread, or another
        process, is writing) → the thread does it, waiting its turn."""
        if self._writer is not None:
            try:
                result = _full_as_domain_error(fn, self._writer)
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise
            except StorageFull:
                pass  # the thread tries it again, after making room (``_run``)
            else:
                self._loop_commits += 1
                if self._loop_commits % _CHECKPOINT_EVERY == 0:
                    self._executor.submit(self._call, _checkpoint).add_done_callback(_log_failure)
                return result
        return await self._run(fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        assert self._db is not None, "store is not open"
        return _full_as_domain_error(fn, self._db)

    async def open(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._open)
        reader = sqlite3.connect(self.path, isolation_level=None, timeout=0)  # busy: the thread reads instead
        reader.execute("PRAGMA query_only=ON")
        self._reader = reader
        if self.synchronous == "NORMAL":
            writer = sqlite3.connect(self.path, isolation_level=None, timeout=0)  # busy: the thread writes instead
            writer.execute("PRAGMA synchronous=NORMAL")
            writer.execute("PRAGMA wal_autocheckpoint=0")  # a checkpoint fsyncs: in the thread, not on the loop
            self._writer = writer

    def _open(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        try:
            migrations.sqlite_open(db, upgrade_command=self.upgrade_command)
        except BaseException:
            db.close()
            raise
        self._db = db

    async def close(self) -> None:
        def _close(db: sqlite3.Connection) -> None:
            db.close()

        for connection in (self._reader, self._writer):
            if connection is not None:
                connection.close()
        self._reader = self._writer = None
        if self._db is not None:
            await self._run(_close)
            self._db = None
        self._executor.shutdown(wait=True)

    async def insert(self, upload: Upload) -> Upload:
        def _insert(db: sqlite3.Connection) -> Upload:
            with _transaction(db):
                if upload.alias is not None:
                    row = db.execute(_SELECT + " WHERE alias = ?", (upload.alias,)).fetchone()
                    if row is not None:
                        return _from_row(row)
                db.execute(_INSERT, _to_row(upload))
                return upload

        return await self._run(_insert)

    async def get(self, upload_id: UploadId) -> Upload:
        return await self._read(lambda db: _fetch(db, upload_id))

    async def get_by_alias(self, alias: str) -> Upload:
        def _get(db: sqlite3.Connection) -> Upload:
            row = db.execute(_SELECT + " WHERE alias = ?", (alias,)).fetchone()
            if row is None:
                raise UploadNotFound(alias)
            return _from_row(row)

        return await self._read(_get)

    async def record_range(self, upload_id: UploadId, start: int, end: int) -> Upload:
        def _record(db: sqlite3.Connection) -> Upload:
            with _transaction(db):
                upload = _fetch(db, upload_id)
                received = upload.received.add(start, end)
                if received == upload.received:
                    return upload  # a duplicate chunk: nothing new, no write
                now = time.time()
                db.execute(
                    "UPDATE uploads SET received = ?, updated_at = ? WHERE id = ?",
                    (received.to_text(), now, upload_id),
                )
                return upload.evolve(received=received, updated_at=now)

        return await self._run(_record)

    async def set_size(self, upload_id: UploadId, size: int) -> Upload:
        def _set(db: sqlite3.Connection) -> Upload:
            with _transaction(db):
                upload = _fetch(db, upload_id)
                if upload.size is not None:
                    if upload.size == size:
                        return upload
                    raise UploadConflict(f"the upload length is already set to {upload.size}")
                db.execute("UPDATE uploads SET size = ?, updated_at = ? WHERE id = ?", (size, time.time(), upload_id))
                return upload.evolve(size=size)

        return await self._run(_set)

    async def transition(self, upload_id: UploadId, to: UploadState, *, expect: UploadState) -> Upload:
        def _transition(db: sqlite3.Connection) -> Upload:
            with _transaction(db):
                upload = _fetch(db, upload_id)
                if upload.state is not expect:
                    raise UploadConflict(f"upload {upload_id} is {upload.state}, not {expect}")
                now = time.time()
                db.execute("UPDATE uploads SET state = ?, updated_at = ? WHERE id = ?", (to.value, now, upload_id))
                return upload.evolve(state=to, updated_at=now)

        return await self._run(_transition)

    async def complete(
        self, upload_id: UploadId, sha256: str, blob: BlobRef | None, expires_at: float | None, *, shared: bool = False
    ) -> Upload:
        def _complete(db: sqlite3.Connection) -> Upload:
            with _transaction(db):
                upload = _fetch(db, upload_id)
                if upload.state is not UploadState.COMPLETING:
                    raise UploadConflict(f"upload {upload_id} is {upload.state}, not completing")
                return _record_completion(db, upload, sha256, blob, expires_at, shared)

        return await self._run(_complete)

    async def insert_complete(
        self, upload: Upload, sha256: str, blob: BlobRef, expires_at: float | None,
        reusable: Callable[[BlobRef], bool] | None = None,
    ) -> Upload:  # fmt: skip
        def _insert_complete(db: sqlite3.Connection) -> Upload:
            with _transaction(db):
                stored = _reusable_twin(db, sha256, blob, reusable) if reusable is not None else None
                if stored is not None:
                    db.execute("UPDATE blobs SET refs = refs + 1 WHERE key = ?", (stored.key,))
                else:
                    _add_blob(db, blob, sha256)
                # The row goes in complete at once (one statement less: each one hands the GIL over).
                done = upload.evolve(
                    state=UploadState.COMPLETE, sha256=sha256, blob_key=(stored or blob).key, updated_at=time.time(),
                    expires_at=expires_at,
                )  # fmt: skip
                db.execute(_INSERT, _to_row(done))
                return done

        return await self._write(_insert_complete)

    async def terminate(self, upload_id: UploadId) -> BlobRef | None:
        def _terminate(db: sqlite3.Connection) -> BlobRef | None:
            with _transaction(db):
                upload = _fetch(db, upload_id)
                if upload.state is UploadState.TERMINATED:
                    return None
                db.execute(
                    "UPDATE uploads SET state = 'terminated', updated_at = ? WHERE id = ?", (time.time(), upload_id)
                )
                if upload.blob_key is None:
                    return None
                row = db.execute("SELECT size, refs FROM blobs WHERE key = ?", (upload.blob_key,)).fetchone()
                if row is None or row[1] > 1:
                    db.execute("UPDATE blobs SET refs = refs - 1 WHERE key = ?", (upload.blob_key,))
                    return None
                db.execute("DELETE FROM blobs WHERE key = ?", (upload.blob_key,))
                return BlobRef(upload.blob_key, row[0])  # the last reference: the caller deletes the file

        return await self._run(_terminate)

    async def find_blobs(self, sha256: str) -> Sequence[BlobRef]:
        def _find(db: sqlite3.Connection) -> list[BlobRef]:
            rows = db.execute("SELECT key, size FROM blobs WHERE sha256 = ? AND refs > 0", (sha256,))
            return [BlobRef(key, size) for key, size in rows]

        return await self._read(_find)

    async def blobs(self) -> Sequence[tuple[BlobRef, str, int]]:
        def _all(db: sqlite3.Connection) -> list[tuple[BlobRef, str, int]]:
            rows = db.execute("SELECT key, size, sha256, refs FROM blobs ORDER BY key")
            return [(BlobRef(key, size), sha256, refs) for key, size, sha256, refs in rows]

        return await self._run(_all)

    async def usage(self, owner: str | None) -> Usage:
        def _usage(db: sqlite3.Connection) -> Usage:
            (stored,) = db.execute("SELECT COALESCE(SUM(size), 0) FROM blobs").fetchone()
            (reserved,) = db.execute(
                "SELECT COALESCE(SUM(COALESCE(size, 0)), 0) FROM uploads WHERE state IN ('receiving', 'completing')"
            ).fetchone()
            owned = files = 0
            if owner is not None:
                (owned, files) = db.execute(
                    "SELECT COALESCE(SUM(COALESCE(size, 0)), 0), COUNT(*) FILTER (WHERE concat != 'partial') "
                    "FROM uploads WHERE owner = ? AND state != 'terminated'",
                    (owner,),
                ).fetchone()
            return Usage(total=stored + reserved, owner=owned, files=files)

        return await self._run(_usage)

    async def update_fields(self, upload_id: UploadId, *, expires_at: float | None) -> Upload:
        def _update(db: sqlite3.Connection) -> Upload:
            with _transaction(db):
                upload = _fetch(db, upload_id)
                db.execute("UPDATE uploads SET expires_at = ? WHERE id = ?", (expires_at, upload_id))
                return upload.evolve(expires_at=expires_at)

        return await self._run(_update)

    async def purge(self, upload_id: UploadId) -> None:
        def _purge(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM uploads WHERE id = ?", (upload_id,))

        await self._run(_purge)

    async def _select(self, tail: str, params: Sequence[Any]) -> Sequence[Upload]:
        def _query(db: sqlite3.Connection) -> list[Upload]:
            return [_from_row(row) for row in db.execute(f"{_SELECT} {tail}", params)]

        return await self._run(_query)


def _full_as_domain_error(fn: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    """SQLITE_FULL from any statement (not only a COMMIT) → StorageFull, which ``_run`` knows how to answer."""
    try:
        return fn(db)
    except sqlite3.OperationalError as exc:
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
            raise StorageFull("the server's disk is full (the database could not be written)") from exc
        raise


def _checkpoint(db: sqlite3.Connection) -> None:
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")


def _log_failure(job: concurrent.futures.Future[None]) -> None:
    if not job.cancelled() and (error := job.exception()) is not None:
        log.warning("checkpoint of the database failed: %s", error)


class _transaction:
    """BEGIN IMMEDIATE … COMMIT: the read-modify-write of a record is atomic across processes too."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is not None:
            self.db.execute("ROLLBACK")
            return
        try:
            self.db.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL:
                raise StorageFull("the server's disk is full (the database could not be written)") from exc
            raise


def _record_completion(
    db: sqlite3.Connection, upload: Upload, sha256: str, blob: BlobRef | None, expires_at: float | None, shared: bool
) -> Upload:
    """COMPLETING → COMPLETE with one more reference to ``blob``, inside the caller's transaction."""
    if blob is not None and shared:
        added = db.execute("UPDATE blobs SET refs = refs + 1 WHERE key = ? AND refs > 0", (blob.key,))
        if added.rowcount == 0:
            raise BlobGone(f"blob {blob.key} was deleted")
    elif blob is not None:
        _add_blob(db, blob, sha256)
    now = time.time()
    key = blob.key if blob is not None else None
    db.execute(
        "UPDATE uploads SET state = ?, sha256 = ?, blob_key = ?, updated_at = ?, expires_at = ? WHERE id = ?",
        (UploadState.COMPLETE.value, sha256, key, now, expires_at, upload.id),
    )
    return upload.evolve(state=UploadState.COMPLETE, sha256=sha256, blob_key=key, updated_at=now, expires_at=expires_at)


def _reusable_twin(
    db: sqlite3.Connection, sha256: str, blob: BlobRef, reusable: Callable[[BlobRef], bool]
) -> BlobRef | None:
    """A referenced blob with the same content as ``blob`` that is still stored (deduplication)."""
    rows = db.execute("SELECT key FROM blobs WHERE sha256 = ? AND size = ? AND refs > 0 AND key != ?",
                      (sha256, blob.size, blob.key)).fetchall()  # fmt: skip
    return next((twin for (key,) in rows if reusable(twin := BlobRef(key, blob.size))), None)


def _add_blob(db: sqlite3.Connection, blob: BlobRef, sha256: str) -> None:
    db.execute(
        "INSERT INTO blobs (key, sha256, size, refs) VALUES (?, ?, ?, 1) "
        "ON CONFLICT (key) DO UPDATE SET refs = refs + 1",
        (blob.key, sha256, blob.size),
    )


def _fetch(db: sqlite3.Connection, upload_id: str) -> Upload:
    row = db.execute(_SELECT + " WHERE id = ?", (upload_id,)).fetchone()
    if row is None:
        raise UploadNotFound(upload_id)
    return _from_row(row)
