"""Settings every replica must agree on, kept in the metadata database (table ``settings``, migration 8).

- ``signing_key``: the HMAC key of owner tokens, ``/download/ID?key=`` capabilities and upload passes. Made once,
  atomically (INSERT … ON CONFLICT DO NOTHING, then SELECT: when two replicas start at once, both read the one
  that won). A storage folder's older ``.pyfiledrop.secret`` file is taken over, so links made before keep working.
- ``admin_token_sha256``: on PostgreSQL, the first replica's admin token (its hash), accepted by every replica.
- ``limit.*``: limits that decide what is accepted (``--max-size``, quotas, expiry). On PostgreSQL the first
  replica's values are stored and a replica started with other values logs a WARNING naming the setting and both
  values (it keeps its own). On SQLite — one machine — the running server's values are simply recorded.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

from pyfiledrop.config import Settings
from pyfiledrop.meta.sql import Database, Dialect, Tx, insert_or_ignore, insert_or_replace

log = logging.getLogger("pyfiledrop.meta")

SIGNING_KEY = "signing_key"
ADMIN_TOKEN_SHA256 = "admin_token_sha256"  # noqa: S105 - a setting's name
LIMIT_PREFIX = "limit."
_KEY_BYTES = 32
_COLUMNS = "name, value, set_at"


def limits_of(settings: Settings) -> dict[str, str]:
    """The limits replicas must share, as text (bytes and seconds, "none" when unset)."""
    values: dict[str, object] = {
        "max_size": settings.max_size_bytes,
        "quota": settings.quota_bytes,
        "owner_quota": settings.owner_quota_bytes,
        "expire_after": settings.expire_after_seconds,
        "stale_after": settings.stale_after,
        "allow_downloads": settings.allow_downloads,
    }
    return {LIMIT_PREFIX + name: "none" if value is None else str(value) for name, value in values.items()}


class SettingsStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, name: str) -> str | None:
        def _get(db: Tx) -> str | None:
            row = db.fetchone("SELECT value FROM settings WHERE name = ?", (name,))
            return None if row is None else str(row[0])

        return await self._db.query(_get)

    async def all(self) -> dict[str, str]:
        rows = await self._db.query(lambda db: db.fetchall("SELECT name, value FROM settings ORDER BY name"))
        return {str(name): str(value) for name, value in rows}

    async def put_once(self, name: str, value: str) -> str:
        """Store ``value`` unless the setting has one; the stored value (the first writer's) either way."""

        def _put(db: Tx) -> str:
            db.execute(insert_or_ignore(db.dialect, "settings", _COLUMNS), (name, value, time.time()))
            row = db.fetchone("SELECT value FROM settings WHERE name = ?", (name,))
            assert row is not None, "inserted or already there"
            return str(row[0])

        return await self._db.transact(_put)

    async def put(self, name: str, value: str) -> None:
        def _put(db: Tx) -> None:
            db.execute(insert_or_replace(db.dialect, "settings", _COLUMNS, key="name"), (name, value, time.time()))

        await self._db.transact(_put)

    async def forget(self, prefix: str) -> int:
        """Drop the settings whose names start so (``limit.``: the next replica to start stores its own)."""
        return await self._db.query(lambda db: db.execute("DELETE FROM settings WHERE name LIKE ?", (prefix + "%",)))

    async def signing_key(self, legacy: Path | None = None) -> bytes:
        """The key, made by the first process that asks; ``legacy``: a key file to take over if it holds one."""
        stored = await self.get(SIGNING_KEY)
        if stored is not None:
            return bytes.fromhex(stored)
        candidate = _legacy_key(legacy) or secrets.token_bytes(_KEY_BYTES)
        return bytes.fromhex(await self.put_once(SIGNING_KEY, candidate.hex()))

    async def agree(self, mine: Mapping[str, str]) -> list[str]:
        """Compare this process's limits with the stored ones (module docstring); the names that differ."""

        def _agree(db: Tx) -> dict[str, str]:
            write = insert_or_replace(db.dialect, "settings", _COLUMNS, key="name") if db.dialect is Dialect.SQLITE \
                else insert_or_ignore(db.dialect, "settings", _COLUMNS)  # fmt: skip
            now = time.time()
            db.executemany(write, [(name, value, now) for name, value in mine.items()])
            return {str(name): str(value) for name, value in db.fetchall("SELECT name, value FROM settings")}

        stored_values = await self._db.transact(_agree)  # one transaction: a server's start stays quick
        differing = []
        for name, value in mine.items():
            stored = stored_values.get(name, value)
            if stored != value:
                differing.append(name)
                log.warning(
                    "setting %s differs from the other replicas': this replica has %s, the database has %s "
                    "(the first replica's); start every replica with the same value",
                    name.removeprefix(LIMIT_PREFIX).replace("_", "-"), value, stored,
                )  # fmt: skip
        return differing


def _legacy_key(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        key = path.read_bytes()
    except OSError:
        return None
    return key if len(key) >= _KEY_BYTES else None  # a short one (a crash while it was written) is no key


async def shared_settings(db: Database, settings: Settings, admin_token: str) -> tuple[bytes, str | None]:
    """At start: the signing key, the limits compared (module docstring), and on PostgreSQL the sha256 of the admin
    token every replica accepts (the first replica's), besides this replica's own."""
    store = SettingsStore(db)
    key = await store.signing_key(legacy=settings.storage / ".pyfiledrop.secret")
    await store.agree(limits_of(settings))
    if db.dialect is Dialect.SQLITE or not admin_token:
        return key, None  # one machine: the admin token stays this start's own, as it always was
    mine = hashlib.sha256(admin_token.encode()).hexdigest()
    stored = await store.put_once(ADMIN_TOKEN_SHA256, mine)
    if stored != mine:
        log.warning(
            "setting admin-token differs from the other replicas': the first replica's (in the database) is accepted "
            "by every replica, this one's only here; start every replica with the same --admin-token"
        )
    return key, stored
