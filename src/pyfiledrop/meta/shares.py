"""Share links: download links that work without a token, revocable, optionally expiring, password-protected or
limited to a number of downloads; for one file, or for several behind one link (a selection, a folder)."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.errors import ShareClosed, UploadNotFound
from pyfiledrop.meta.sql import Database, Tx, batches, insert_or_ignore, marks

RESUME_WINDOW = 24 * 3600.0  # a counted download may go on with Range requests this long after it started
_COLUMNS = "id, upload_id, created_at, expires_at, revoked, label, password_hash, max_downloads, downloads, " \
           "last_download_at, several"  # fmt: skip


@dataclass(frozen=True, slots=True)
class NewShare:
    upload_ids: tuple[UploadId, ...]
    expires_at: float | None = None
    password_hash: str | None = None
    max_downloads: int | None = None
    label: str = ""
    several: bool = False  # a download page and a zip, even for one file (a selection, a folder)


@dataclass(frozen=True, slots=True)
class Share:
    id: str
    upload_id: UploadId  # the first file
    created_at: float
    expires_at: float | None
    revoked: bool
    label: str = ""
    password_hash: str | None = None
    max_downloads: int | None = None
    downloads: int = 0
    last_download_at: float | None = None
    several: bool = False
    upload_ids: tuple[UploadId, ...] = ()

    @property
    def active(self) -> bool:
        return self.closed_because() is None

    def closed_because(self, now: float | None = None) -> str | None:
        now = time.time() if now is None else now
        if self.revoked:
            return "was revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "has expired"
        if self.max_downloads is not None and self.downloads >= self.max_downloads:
            return "has been downloaded as many times as it allows"
        return None

    def may_resume(self, now: float | None = None) -> bool:
        """Whether a Range request that does not start at byte 0 goes on a download already counted."""
        now = time.time() if now is None else now
        return self.last_download_at is not None and now - self.last_download_at < RESUME_WINDOW


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ShareStore:
    """Lives in the metadata database (meta/sql.py)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, new: NewShare) -> tuple[Share, str]:
        token = secrets.token_urlsafe(24)  # 192 bits: the link is the capability
        share = Share(secrets.token_urlsafe(9), new.upload_ids[0], time.time(), new.expires_at, revoked=False,
                      label=new.label, password_hash=new.password_hash, max_downloads=new.max_downloads,
                      several=new.several, upload_ids=new.upload_ids)  # fmt: skip

        def _insert(db: Tx) -> None:
            db.execute(
                "INSERT INTO shares (id, token_sha256, upload_id, created_at, expires_at, label, password_hash, "
                "max_downloads, several) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (share.id, token_digest(token), share.upload_id, share.created_at, share.expires_at, share.label,
                 share.password_hash, share.max_downloads, int(share.several)),
            )  # fmt: skip
            if share.several:
                db.executemany(
                    "INSERT INTO share_files (share_id, position, upload_id) VALUES (?, ?, ?)",
                    [(share.id, position, upload_id) for position, upload_id in enumerate(share.upload_ids)],
                )

        await self._db.transact(_insert)
        return share, token

    async def resolve(self, token: str) -> Share:
        """The share a token opens; UploadNotFound if none, ShareClosed if revoked, expired or used up."""
        share = await self._one("token_sha256 = ?", token_digest(token))
        if share is None:
            raise UploadNotFound("(share link)")
        if share.revoked:
            raise ShareClosed("was revoked")
        if share.expires_at is not None and share.expires_at <= time.time():
            raise ShareClosed("has expired")
        return share  # one whose downloads are used up still shows its page: web/shares.py refuses the files

    async def for_upload(self, upload_id: UploadId) -> list[Share]:
        return await self._many(
            f"SELECT {_COLUMNS} FROM shares WHERE upload_id = ? OR id IN "  # noqa: S608 - constant columns
            "(SELECT share_id FROM share_files WHERE upload_id = ?) ORDER BY created_at",
            (upload_id, upload_id),
        )

    async def for_owner(self, owner: str | None) -> list[Share]:
        """Every share of one owner's files (of everyone's when None), newest first."""
        if owner is None:
            return await self._many(f"SELECT {_COLUMNS} FROM shares ORDER BY created_at DESC", ())  # noqa: S608
        return await self._many(
            f"SELECT {_COLUMNS} FROM shares WHERE upload_id IN (SELECT id FROM uploads WHERE owner = ?) "  # noqa: S608
            "ORDER BY created_at DESC",
            (owner,),
        )

    async def get(self, share_id: str) -> Share:
        share = await self._one("id = ?", share_id)
        if share is None:
            raise UploadNotFound(share_id)
        return share

    async def revoke(self, share_id: str) -> None:
        def _revoke(db: Tx) -> None:
            db.execute("UPDATE shares SET revoked = 1 WHERE id = ?", (share_id,))

        await self._db.query(_revoke)

    async def count_download(self, share_id: str) -> bool:
        """One more download, if the link allows one more (atomic: two at once cannot both take the last)."""

        def _count(db: Tx) -> int:
            return db.execute(
                "UPDATE shares SET downloads = downloads + 1, last_download_at = ? WHERE id = ? AND revoked = 0 "
                "AND (max_downloads IS NULL OR downloads < max_downloads)",
                (time.time(), share_id),
            )

        return await self._db.query(_count) == 1

    async def known_crc32s(self, sha256s: Iterable[str]) -> dict[str, int]:
        wanted = sorted(set(sha256s))

        def _find(db: Tx) -> dict[str, int]:
            found: dict[str, int] = {}
            for batch in batches(wanted):
                query = f"SELECT sha256, crc32 FROM content_crc32 WHERE sha256 IN ({marks(len(batch))})"  # noqa: S608
                found.update((sha256, int(crc32)) for sha256, crc32 in db.fetchall(query, batch))
            return found

        return await self._db.query(_find)

    async def remember_crc32(self, sha256: str, crc32: int) -> None:
        def _put(db: Tx) -> None:
            db.execute(insert_or_ignore(db.dialect, "content_crc32", "sha256, crc32"), (sha256, crc32))

        await self._db.query(_put)

    async def _one(self, where: str, value: str) -> Share | None:
        found = await self._many(f"SELECT {_COLUMNS} FROM shares WHERE {where}", (value,))  # noqa: S608
        return found[0] if found else None

    async def _many(self, query: str, params: Sequence[str]) -> list[Share]:
        def _select(db: Tx) -> list[Share]:
            shares = [_share(row) for row in db.fetchall(query, params)]
            return [_with_files(db, share) for share in shares]

        return await self._db.query(_select)


def _with_files(db: Tx, share: Share) -> Share:
    if not share.several:
        return _evolve(share, (share.upload_id,))
    rows = db.fetchall("SELECT upload_id FROM share_files WHERE share_id = ? ORDER BY position", (share.id,))
    return _evolve(share, tuple(UploadId(upload_id) for (upload_id,) in rows))


def _evolve(share: Share, upload_ids: tuple[UploadId, ...]) -> Share:
    return Share(share.id, share.upload_id, share.created_at, share.expires_at, share.revoked, share.label,
                 share.password_hash, share.max_downloads, share.downloads, share.last_download_at, share.several,
                 upload_ids)  # fmt: skip


def _share(row: tuple[Any, ...]) -> Share:
    (id_, upload_id, created_at, expires_at, revoked, label, password_hash, max_downloads, downloads, last,
     several) = row  # fmt: skip
    return Share(id_, UploadId(upload_id), created_at, expires_at, bool(revoked), label, password_hash, max_downloads,
                 downloads, last, bool(several))  # fmt: skip
