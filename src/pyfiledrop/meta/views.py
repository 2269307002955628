"""Where each finished upload can be read under its own name in the storage folder (engine/views.py): one row per
upload, its path below the named tree; and the records the tree is rebuilt from."""

from __future__ import annotations

from collections.abc import Sequence

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.meta.sql import Database, Tx, batches, insert_or_replace, marks


class ViewStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def open(self) -> None:
        """Nothing to do: the table is made by the schema's migrations (meta/migrations.py, version 7)."""

    async def record(self, rows: Sequence[tuple[UploadId, str]]) -> None:
        def _insert(db: Tx) -> None:
            db.executemany(insert_or_replace(db.dialect, "views", "upload_id, path", key="upload_id"), rows)

        await self._db.transact(_insert)

    async def path_of(self, upload_id: UploadId) -> str | None:
        def _find(db: Tx) -> str | None:
            row = db.fetchone("SELECT path FROM views WHERE upload_id = ?", (upload_id,))
            return None if row is None else str(row[0])

        return await self._db.query(_find)

    async def forget(self, upload_id: UploadId) -> None:
        def _delete(db: Tx) -> None:
            db.execute("DELETE FROM views WHERE upload_id = ?", (upload_id,))

        await self._db.query(_delete)

    async def named(self, upload_ids: Sequence[UploadId]) -> set[UploadId]:
        def _find(db: Tx) -> set[UploadId]:
            found: set[UploadId] = set()
            for batch in batches(upload_ids):
                query = f"SELECT upload_id FROM views WHERE upload_id IN ({marks(len(batch))})"  # noqa: S608
                found.update(UploadId(upload_id) for (upload_id,) in db.fetchall(query, batch))
            return found

        return await self._db.query(_find)

    async def taken(self, paths: Sequence[str]) -> set[str]:
        def _find(db: Tx) -> set[str]:
            found: set[str] = set()
            for batch in batches(paths):
                query = f"SELECT path FROM views WHERE path IN ({marks(len(batch))})"  # noqa: S608
                found.update(path for (path,) in db.fetchall(query, batch))
            return found

        return await self._db.query(_find)

    async def unnamed(self) -> list[UploadId]:
        """Finished uploads (files, not tus parts) with no view yet: after a crash, or a store made before views."""

        def _find(db: Tx) -> list[UploadId]:
            rows = db.fetchall(
                "SELECT id FROM uploads WHERE state = 'complete' AND concat != 'partial' AND blob_key IS NOT NULL "
                "AND id NOT IN (SELECT upload_id FROM views) ORDER BY created_at"
            )
            return [UploadId(upload_id) for (upload_id,) in rows]

        return await self._db.query(_find)

    async def every(self) -> list[tuple[UploadId, str]]:
        def _all(db: Tx) -> list[tuple[UploadId, str]]:
            return [(UploadId(upload_id), path) for upload_id, path in db.fetchall("SELECT upload_id, path FROM views")]

        return await self._db.query(_all)

    async def stale(self) -> list[tuple[UploadId, str]]:
        """Views of uploads that are gone (a crash between the delete and the unlink)."""

        def _find(db: Tx) -> list[tuple[UploadId, str]]:
            rows = db.fetchall(
                "SELECT v.upload_id, v.path FROM views v LEFT JOIN uploads u ON u.id = v.upload_id "
                "WHERE u.id IS NULL OR u.state != 'complete'"
            )
            return [(UploadId(upload_id), path) for upload_id, path in rows]

        return await self._db.query(_find)

    async def successor(self, upload_id: UploadId, blob_key: str) -> tuple[UploadId, str] | None:
        """Another finished upload that shares this blob (deduplication), to take over its name."""

        def _find(db: Tx) -> tuple[UploadId, str] | None:
            row = db.fetchone(
                "SELECT id, filename FROM uploads WHERE blob_key = ? AND state = 'complete' AND id != ? "
                "ORDER BY created_at LIMIT 1",
                (blob_key, upload_id),
            )
            return None if row is None else (UploadId(row[0]), str(row[1]))

        return await self._db.query(_find)

    async def rekey(self, old: str, new: str) -> None:
        """The blob's file is now known by ``new`` (a name of one of its uploads), in one transaction."""

        def _rekey(db: Tx) -> None:
            db.execute("UPDATE blobs SET key = ? WHERE key = ?", (new, old))
            db.execute("UPDATE uploads SET blob_key = ? WHERE blob_key = ?", (new, old))

        await self._db.transact(_rekey)
