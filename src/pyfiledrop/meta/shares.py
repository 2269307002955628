"""Share links: per-file download links that work without a token, revocable, optionally expiring."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import time
from dataclasses import dataclass

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.errors import UploadGone, UploadNotFound
from pyfiledrop.meta.sqlite import SQLiteMetadataStore


@dataclass(frozen=True, slots=True)
class Share:
    id: str
    upload_id: UploadId
    created_at: float
    expires_at: float | None
    revoked: bool

    @property
    def active(self) -> bool:
        return not self.revoked and (self.expires_at is None or self.expires_at > time.time())


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ShareStore:
    """Lives in the metadata database, on its connection thread."""

    def __init__(self, db: SQLiteMetadataStore) -> None:
        self._db = db

    async def create(self, upload_id: UploadId, expires_at: float | None) -> tuple[Share, str]:
        token = secrets.token_urlsafe(24)  # 192 bits: the link is the capability
        share = Share(secrets.token_urlsafe(9), upload_id, time.time(), expires_at, revoked=False)

        def _insert(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO shares (id, token_sha256, upload_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                (share.id, token_digest(token), upload_id, share.created_at, expires_at),
            )

        await self._db.run(_insert)
        return share, token

    async def resolve(self, token: str) -> Share:
        """The share a token opens; UploadNotFound if none, UploadGone if revoked or expired."""

        def _find(db: sqlite3.Connection) -> Share | None:
            row = db.execute(
                "SELECT id, upload_id, created_at, expires_at, revoked FROM shares WHERE token_sha256 = ?",
                (token_digest(token),),
            ).fetchone()
            return _share(row) if row else None

        share = await self._db.run(_find)
        if share is None:
            raise UploadNotFound("(share link)")
        if not share.active:
            raise UploadGone(share.upload_id)
        return share

    async def for_upload(self, upload_id: UploadId) -> list[Share]:
        def _list(db: sqlite3.Connection) -> list[Share]:
            rows = db.execute(
                "SELECT id, upload_id, created_at, expires_at, revoked FROM shares WHERE upload_id = ? "
                "ORDER BY created_at",
                (upload_id,),
            )
            return [_share(row) for row in rows]

        return await self._db.run(_list)

    async def get(self, share_id: str) -> Share:
        def _get(db: sqlite3.Connection) -> Share | None:
            row = db.execute(
                "SELECT id, upload_id, created_at, expires_at, revoked FROM shares WHERE id = ?", (share_id,)
            ).fetchone()
            return _share(row) if row else None

        share = await self._db.run(_get)
        if share is None:
            raise UploadNotFound(share_id)
        return share

    async def revoke(self, share_id: str) -> None:
        def _revoke(db: sqlite3.Connection) -> None:
            db.execute("UPDATE shares SET revoked = 1 WHERE id = ?", (share_id,))

        await self._db.run(_revoke)


def _share(row: tuple[str, str, float, float | None, int]) -> Share:
    return Share(row[0], UploadId(row[1]), row[2], row[3], bool(row[4]))
