"""Drop links: upload-only links an admin hands out ("send me your footage"), with optional limits.

Only a hash of the link's token is kept. Uploads made through a link are owned by ``Drop.owner``, so the admin sees
them, the quota code counts them, and the link's holder sees nothing but the uploads they are making.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from pyfiledrop.errors import DropClosed, DropNotFound
from pyfiledrop.meta.shares import token_digest
from pyfiledrop.meta.sql import Database, Tx

DROP_OWNER_PREFIX = "drop-"  # web/auth.py never issues an owner id that starts so
_COLUMNS = "id, label, password_hash, max_bytes, max_files, created_at, expires_at, revoked"


@dataclass(frozen=True, slots=True)
class Drop:
    id: str
    label: str
    password_hash: str | None
    max_bytes: int | None
    max_files: int | None
    created_at: float
    expires_at: float | None
    revoked: bool

    @property
    def owner(self) -> str:
        return DROP_OWNER_PREFIX + self.id

    def check_open(self, now: float | None = None) -> None:
        if self.revoked:
            raise DropClosed("was revoked")
        if self.expires_at is not None and self.expires_at <= (time.time() if now is None else now):
            raise DropClosed("has expired")


@dataclass(frozen=True, slots=True)
class NewDrop:
    label: str
    password_hash: str | None = None
    max_bytes: int | None = None
    max_files: int | None = None
    expires_at: float | None = None


class DropStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, new: NewDrop) -> tuple[Drop, str]:
        token = secrets.token_urlsafe(24)  # 192 bits: the link is the capability
        drop = Drop(secrets.token_urlsafe(9), new.label, new.password_hash, new.max_bytes, new.max_files,
                    time.time(), new.expires_at, revoked=False)  # fmt: skip

        def _insert(db: Tx) -> None:
            db.execute(
                f"INSERT INTO drops (token_sha256, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
                (token_digest(token), drop.id, drop.label, drop.password_hash, drop.max_bytes, drop.max_files,
                 drop.created_at, drop.expires_at, 0),
            )  # fmt: skip

        await self._db.query(_insert)
        return drop, token

    async def resolve(self, token: str) -> Drop:
        """The open drop a token names: DropNotFound if none, DropClosed if revoked or expired."""
        drop = await self._one("token_sha256 = ?", token_digest(token))
        drop.check_open()
        return drop

    async def get(self, drop_id: str) -> Drop:
        return await self._one("id = ?", drop_id)

    async def _one(self, where: str, value: str) -> Drop:
        def _find(db: Tx) -> Drop | None:
            row = db.fetchone(f"SELECT {_COLUMNS} FROM drops WHERE {where}", (value,))  # noqa: S608
            return _drop(row) if row else None

        drop = await self._db.query(_find)
        if drop is None:
            raise DropNotFound()
        return drop

    async def list(self) -> list[Drop]:
        def _all(db: Tx) -> list[Drop]:
            rows = db.fetchall(f"SELECT {_COLUMNS} FROM drops ORDER BY created_at DESC")  # noqa: S608
            return [_drop(row) for row in rows]

        return await self._db.query(_all)

    async def revoke(self, drop_id: str) -> None:
        await self.get(drop_id)

        def _revoke(db: Tx) -> None:
            db.execute("UPDATE drops SET revoked = 1 WHERE id = ?", (drop_id,))

        await self._db.query(_revoke)


def _drop(row: tuple[Any, ...]) -> Drop:
    return Drop(row[0], row[1], row[2], row[3], row[4], row[5], row[6], bool(row[7]))
