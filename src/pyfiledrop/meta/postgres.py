"""Upload records in PostgreSQL, shared by any number of replicas (``--database postgresql://…``).

Every method is one transaction (READ COMMITTED). What reads a record to change it locks its row first
(``SELECT … FOR UPDATE``), so two replicas changing one upload take turns: ranges recorded by two chunks at two
replicas are both kept, completion happens exactly once, and a blob's reference count is changed under its row's
lock. The sweepers of several replicas may list the same stale or expired uploads: ``terminate`` and ``purge`` are
idempotent under the row lock — only one caller sees an upload go from alive to terminated, and only that one is
handed the blob whose last reference went — so a file is deleted once however many sweepers race
(``claim_stale``/``claim_expired`` hand each sweeper a disjoint batch with ``FOR UPDATE SKIP LOCKED`` as well).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.domain.model import BlobRef, ConcatKind, Upload, UploadState
from pyfiledrop.errors import BlobGone, QuotaExceeded, TooManyFiles, UploadConflict, UploadNotFound
from pyfiledrop.meta.base import Usage
from pyfiledrop.meta.pgpool import PostgresPool, PostgresTx, open_schema
from pyfiledrop.meta.rows import INSERT, SELECT, UploadQueries, from_row, to_row
from pyfiledrop.meta.sql import Dialect, Tx

T = TypeVar("T")

_DROP_OWNER = "drop-"  # meta/drops.py: uploads through a drop link are owned by "drop-<id>"
_CLAIM_HOLD = 300.0  # seconds a claimed record is left to the sweeper that claimed it


class PostgresMetadataStore(UploadQueries):
    dialect = Dialect.POSTGRESQL

    def __init__(self, url: str, *, pool_size: int = 4, upgrade_command: str = "pyfiledrop db upgrade") -> None:
        self.url = url
        self.upgrade_command = upgrade_command
        self._pool = PostgresPool(url, pool_size)

    async def transact(self, fn: Callable[[Tx], T]) -> T:
        return await self._pool.run(fn)

    async def query(self, fn: Callable[[Tx], T]) -> T:
        return await self._pool.run(fn)

    async def open(self) -> None:
        def _open() -> None:
            connection = self._pool.connect()
            try:
                open_schema(connection, upgrade_command=self.upgrade_command)
            finally:
                connection.close()

        await asyncio.to_thread(_open)

    async def close(self) -> None:
        self._pool.close()

    async def insert(self, upload: Upload) -> Upload:
        def _insert(db: PostgresTx) -> Upload:
            if upload.alias is not None and (row := db.fetchone(SELECT + " WHERE alias = ?", (upload.alias,))):
                return from_row(row)
            if upload.owner.startswith(_DROP_OWNER) and upload.concat is not ConcatKind.PARTIAL:
                _check_drop(db, upload)
            if db.execute(INSERT + " ON CONFLICT (alias) DO NOTHING", to_row(upload)) == 0:
                return _fetch(db, upload.alias or upload.id, column="alias")  # another replica took the alias first
            return upload

        return await self._pool.run(_insert)

    async def get(self, upload_id: UploadId) -> Upload:
        return await self._pool.run(lambda db: _fetch(db, upload_id))

    async def get_by_alias(self, alias: str) -> Upload:
        return await self._pool.run(lambda db: _fetch(db, alias, column="alias"))

    async def record_range(self, upload_id: UploadId, start: int, end: int) -> Upload:
        def _record(db: PostgresTx) -> Upload:
            upload = _fetch(db, upload_id, lock=True)
            received = upload.received.add(start, end)
            if received == upload.received:
                return upload
            now = time.time()
            db.execute(
                "UPDATE uploads SET received = ?, updated_at = ? WHERE id = ?", (received.to_text(), now, upload_id)
            )
            return upload.evolve(received=received, updated_at=now)

        return await self._pool.run(_record)

    async def set_size(self, upload_id: UploadId, size: int) -> Upload:
        def _set(db: PostgresTx) -> Upload:
            upload = _fetch(db, upload_id, lock=True)
            if upload.size is not None:
                if upload.size == size:
                    return upload
                raise UploadConflict(f"the upload length is already set to {upload.size}")
            db.execute("UPDATE uploads SET size = ?, updated_at = ? WHERE id = ?", (size, time.time(), upload_id))
            return upload.evolve(size=size)

        return await self._pool.run(_set)

    async def transition(self, upload_id: UploadId, to: UploadState, *, expect: UploadState) -> Upload:
        def _transition(db: PostgresTx) -> Upload:
            now = time.time()
            row = db.fetchone(_TRANSITION, (to.value, now, upload_id, expect.value))
            if row is None:  # no such upload, or not in the expected state: another replica moved it first
                upload = _fetch(db, upload_id)
                raise UploadConflict(f"upload {upload_id} is {upload.state}, not {expect}")
            return from_row(row)

        return await self._pool.run(_transition)

    async def complete(
        self, upload_id: UploadId, sha256: str, blob: BlobRef | None, expires_at: float | None, *, shared: bool = False
    ) -> Upload:
        def _complete(db: PostgresTx) -> Upload:
            upload = _fetch(db, upload_id, lock=True)
            if upload.state is not UploadState.COMPLETING:
                raise UploadConflict(f"upload {upload_id} is {upload.state}, not completing")
            if blob is not None and shared:
                if db.execute("UPDATE blobs SET refs = refs + 1 WHERE key = ? AND refs > 0", (blob.key,)) == 0:
                    raise BlobGone(f"blob {blob.key} was deleted")
            elif blob is not None:
                _add_blob(db, blob, sha256)
            now = time.time()
            key = blob.key if blob is not None else None
            db.execute(
                "UPDATE uploads SET state = 'complete', sha256 = ?, blob_key = ?, updated_at = ?, expires_at = ? "
                "WHERE id = ?",
                (sha256, key, now, expires_at, upload_id),
            )
            return upload.evolve(
                state=UploadState.COMPLETE, sha256=sha256, blob_key=key, updated_at=now, expires_at=expires_at
            )

        return await self._pool.run(_complete)

    async def insert_complete(
        self, upload: Upload, sha256: str, blob: BlobRef, expires_at: float | None,
        reusable: Callable[[BlobRef], bool] | None = None,
    ) -> Upload:  # fmt: skip
        def _insert_complete(db: PostgresTx) -> Upload:
            stored = _reusable_twin(db, sha256, blob, reusable) if reusable is not None else None
            if stored is not None:
                db.execute("UPDATE blobs SET refs = refs + 1 WHERE key = ?", (stored.key,))
            else:
                _add_blob(db, blob, sha256)
            done = upload.evolve(
                state=UploadState.COMPLETE, sha256=sha256, blob_key=(stored or blob).key, updated_at=time.time(),
                expires_at=expires_at,
            )  # fmt: skip
            db.execute(INSERT, to_row(done))
            return done

        return await self._pool.run(_insert_complete)

    async def terminate(self, upload_id: UploadId) -> BlobRef | None:
        def _terminate(db: PostgresTx) -> BlobRef | None:
            upload = _fetch(db, upload_id, lock=True)
            if upload.state is UploadState.TERMINATED:
                return None  # another replica (a sweeper, a DELETE) was first: it has the blob, if any
            db.execute("UPDATE uploads SET state = 'terminated', updated_at = ? WHERE id = ?", (time.time(), upload_id))
            if upload.blob_key is None:
                return None
            row = db.fetchone("UPDATE blobs SET refs = refs - 1 WHERE key = ? RETURNING refs, size", (upload.blob_key,))
            if row is None or row[0] > 0:
                return None
            db.execute("DELETE FROM blobs WHERE key = ?", (upload.blob_key,))
            return BlobRef(upload.blob_key, int(row[1]))  # the last reference: the caller deletes the file

        return await self._pool.run(_terminate)

    async def find_blobs(self, sha256: str) -> Sequence[BlobRef]:
        def _find(db: PostgresTx) -> list[BlobRef]:
            rows = db.fetchall("SELECT key, size FROM blobs WHERE sha256 = ? AND refs > 0", (sha256,))
            return [BlobRef(key, size) for key, size in rows]

        return await self._pool.run(_find)

    async def blobs(self) -> Sequence[tuple[BlobRef, str, int]]:
        def _all(db: PostgresTx) -> list[tuple[BlobRef, str, int]]:
            rows = db.fetchall("SELECT key, size, sha256, refs FROM blobs ORDER BY key")
            return [(BlobRef(key, size), sha256, refs) for key, size, sha256, refs in rows]

        return await self._pool.run(_all)

    async def usage(self, owner: str | None) -> Usage:
        return await self._pool.run(lambda db: _usage(db, owner))

    async def update_fields(self, upload_id: UploadId, *, expires_at: float | None) -> Upload:
        def _update(db: PostgresTx) -> Upload:
            upload = _fetch(db, upload_id, lock=True)
            db.execute("UPDATE uploads SET expires_at = ? WHERE id = ?", (expires_at, upload_id))
            return upload.evolve(expires_at=expires_at)

        return await self._pool.run(_update)

    async def claim_stale(self, updated_before: float, limit: int = 100) -> Sequence[Upload]:
        """Like ``stale``, but each record goes to one sweeper: rows another replica's sweeper holds are skipped,
        and the claimed ones look fresh to the others for a while (``updated_at`` is pushed forward)."""
        return await self._claim("state = 'receiving' AND updated_at < ?", updated_before, limit)

    async def claim_expired(self, now: float, limit: int = 100) -> Sequence[Upload]:
        """Like ``expired``, each record to one sweeper (its expiry is pushed forward while it is deleted)."""
        return await self._claim("state = 'complete' AND expires_at IS NOT NULL AND expires_at <= ?", now, limit)

    async def purge(self, upload_id: UploadId) -> None:
        await self._pool.run(lambda db: db.execute("DELETE FROM uploads WHERE id = ?", (upload_id,)))

    async def _select(self, tail: str, params: Sequence[Any]) -> Sequence[Upload]:
        return await self._pool.run(lambda db: [from_row(row) for row in db.fetchall(f"{SELECT} {tail}", params)])

    async def _claim(self, where: str, moment: float, limit: int) -> Sequence[Upload]:
        column = "updated_at" if "receiving" in where else "expires_at"
        # The outer condition again: a row another sweeper claimed and committed after this statement's snapshot is
        # re-read at its new version and then no longer matches, so it is not claimed twice.
        statement = (
            f"UPDATE uploads SET {column} = ? WHERE {where} AND id IN "  # noqa: S608 - constant clauses
            f"(SELECT id FROM uploads WHERE {where} ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED) RETURNING {_RETURNING}"
        )

        def _run(db: PostgresTx) -> list[Upload]:
            rows = db.fetchall(statement, (time.time() + _CLAIM_HOLD, moment, moment, limit))
            return [from_row(row) for row in rows]

        return await self._pool.run(_run)


_RETURNING = SELECT.removeprefix("SELECT ").removesuffix(" FROM uploads")
_TRANSITION = f"UPDATE uploads SET state = ?, updated_at = ? WHERE id = ? AND state = ? RETURNING {_RETURNING}"  # noqa: S608


def _fetch(db: Tx, key: str, *, column: str = "id", lock: bool = False) -> Upload:
    row = db.fetchone(f"{SELECT} WHERE {column} = ?{' FOR UPDATE' if lock else ''}", (key,))
    if row is None:
        raise UploadNotFound(key)
    return from_row(row)


def _check_drop(db: Tx, upload: Upload) -> None:
    """A drop link's file limits, held across replicas: the drop's row is locked while its files are counted, so
    twelve uploads started at once through a link for three get three records, whichever replicas they reach."""
    drop = db.fetchone("SELECT max_files, max_bytes FROM drops WHERE id = ? FOR UPDATE",
                       (upload.owner.removeprefix(_DROP_OWNER),))  # fmt: skip
    if drop is None or (drop[0] is None and drop[1] is None):
        return
    usage = _usage(db, upload.owner)
    if drop[0] is not None and usage.files + 1 > drop[0]:
        raise TooManyFiles("this drop link", int(drop[0]))
    final = upload.concat is ConcatKind.FINAL  # its parts were counted as they came (engine/service.py)
    if drop[1] is not None and not final and upload.size is not None and usage.owner + upload.size > drop[1]:
        raise QuotaExceeded("this drop link", int(drop[1]), usage.owner, upload.size)


def _usage(db: Tx, owner: str | None) -> Usage:
    stored = db.fetchone("SELECT COALESCE(SUM(size), 0)::bigint FROM blobs")
    reserved = db.fetchone(
        "SELECT COALESCE(SUM(COALESCE(size, 0)), 0)::bigint FROM uploads WHERE state IN ('receiving', 'completing')"
    )
    owned = files = 0
    if owner is not None:
        row = db.fetchone(
            "SELECT COALESCE(SUM(COALESCE(size, 0)), 0)::bigint, COUNT(*) FILTER (WHERE concat != 'partial') "
            "FROM uploads WHERE owner = ? AND state != 'terminated'",
            (owner,),
        )
        owned, files = (int(row[0]), int(row[1])) if row else (0, 0)
    total = (int(stored[0]) if stored else 0) + (int(reserved[0]) if reserved else 0)
    return Usage(total=total, owner=owned, files=files)


def _reusable_twin(db: Tx, sha256: str, blob: BlobRef, reusable: Callable[[BlobRef], bool]) -> BlobRef | None:
    """A referenced blob with the same content, still stored (deduplication); its row locked, so that its last
    reference cannot go meanwhile."""
    rows = db.fetchall("SELECT key FROM blobs WHERE sha256 = ? AND size = ? AND refs > 0 AND key != ? FOR UPDATE",
                       (sha256, blob.size, blob.key))  # fmt: skip
    return next((twin for (key,) in rows if reusable(twin := BlobRef(key, blob.size))), None)


def _add_blob(db: Tx, blob: BlobRef, sha256: str) -> None:
    db.execute(
        "INSERT INTO blobs (key, sha256, size, refs) VALUES (?, ?, ?, 1) "
        "ON CONFLICT (key) DO UPDATE SET refs = blobs.refs + 1",
        (blob.key, sha256, blob.size),
    )
