"""Versioned schema migrations, numbered from 1, for both backends; each is applied once, in its own transaction.

Version N of SQLite and version N of PostgreSQL make the same tables (in each one's types: BIGINT for sizes and
DOUBLE PRECISION for times on PostgreSQL). SQLite's versions 1..6 are the schema history from before migrations
were numbered (``PRAGMA user_version`` counted them), so an existing database upgrades in place. Applied versions
are listed in ``schema_version``; SQLite also keeps ``user_version`` in step, as before.

``pyfiledrop db upgrade`` applies what is missing (meta/upgrade.py); ``serve`` initialises an empty database but
refuses an outdated one (``SchemaOutdated``).
"""

from __future__ import annotations

import sqlite3
import time

SQLITE: list[str] = [
    """
    CREATE TABLE uploads (
        id TEXT PRIMARY KEY,
        alias TEXT UNIQUE,
        filename TEXT NOT NULL,
        owner TEXT NOT NULL,
        size INTEGER,
        protocol TEXT NOT NULL,
        state TEXT NOT NULL,
        received TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        sha256 TEXT,
        blob_key TEXT,
        content_type TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}',
        concat TEXT NOT NULL DEFAULT '',
        parts TEXT NOT NULL DEFAULT '[]',
        expires_at REAL
    );
    CREATE INDEX uploads_owner ON uploads (owner, created_at);
    CREATE INDEX uploads_state ON uploads (state, updated_at);
    """,
    # Deduplication: one file per content, counted references, so a blob lives until its last record goes.
    """
    CREATE TABLE blobs (
        key TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        refs INTEGER NOT NULL
    );
    CREATE INDEX blobs_sha256 ON blobs (sha256);
    INSERT INTO blobs (key, sha256, size, refs)
        SELECT blob_key, MAX(sha256), MAX(size), COUNT(*) FROM uploads
        WHERE state = 'complete' AND blob_key IS NOT NULL GROUP BY blob_key;
    """,
    # Share links: a revocable, optionally expiring download link for one upload; only the token's hash is kept.
    """
    CREATE TABLE shares (
        id TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE,
        upload_id TEXT NOT NULL REFERENCES uploads (id),
        created_at REAL NOT NULL,
        expires_at REAL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX shares_upload ON shares (upload_id);
    """,
    # Drop links: upload-only links made by the admin; their uploads are owned by "drop-<id>".
    """
    CREATE TABLE drops (
        id TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE,
        label TEXT NOT NULL,
        password_hash TEXT,
        max_bytes INTEGER,
        max_files INTEGER,
        created_at REAL NOT NULL,
        expires_at REAL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    """,
    # Video jobs (trim, rotate): a restart finds the unfinished ones here and marks them failed (meta/jobs.py).
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        upload_id TEXT NOT NULL,
        operation TEXT NOT NULL,
        status TEXT NOT NULL,
        progress REAL NOT NULL DEFAULT 0,
        error TEXT,
        result_upload TEXT,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX jobs_status ON jobs (status);
    """,
    # Share links grow a password, a download limit and several files (a selection, or a folder); the CRC-32 of
    # a content, which a zip of the selection needs, is kept once known (meta/shares.py).
    """
    ALTER TABLE shares ADD COLUMN label TEXT NOT NULL DEFAULT '';
    ALTER TABLE shares ADD COLUMN password_hash TEXT;
    ALTER TABLE shares ADD COLUMN max_downloads INTEGER;
    ALTER TABLE shares ADD COLUMN downloads INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE shares ADD COLUMN last_download_at REAL;
    ALTER TABLE shares ADD COLUMN several INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE share_files (
        share_id TEXT NOT NULL REFERENCES shares (id),
        position INTEGER NOT NULL,
        upload_id TEXT NOT NULL REFERENCES uploads (id),
        PRIMARY KEY (share_id, position)
    );
    CREATE TABLE content_crc32 (
        sha256 TEXT PRIMARY KEY,
        crc32 INTEGER NOT NULL
    );
    """,
    # Where each finished upload is named in the storage folder (meta/views.py); made by the server at start before
    # migrations were numbered, hence IF NOT EXISTS.
    """
    CREATE TABLE IF NOT EXISTS views (
        upload_id TEXT PRIMARY KEY,
        path TEXT NOT NULL UNIQUE
    );
    """,
    # Settings every replica must agree on: the signing key, the admin token's hash, limits (meta/settings.py).
    """
    CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        set_at REAL NOT NULL
    );
    """,
]

POSTGRESQL: list[str] = [
    """
    CREATE TABLE uploads (
        id TEXT PRIMARY KEY,
        alias TEXT UNIQUE,
        filename TEXT NOT NULL,
        owner TEXT NOT NULL,
        size BIGINT,
        protocol TEXT NOT NULL,
        state TEXT NOT NULL,
        received TEXT NOT NULL DEFAULT '',
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        sha256 TEXT,
        blob_key TEXT,
        content_type TEXT NOT NULL,
        metadata TEXT NOT NULL DEFAULT '{}',
        concat TEXT NOT NULL DEFAULT '',
        parts TEXT NOT NULL DEFAULT '[]',
        expires_at DOUBLE PRECISION
    );
    CREATE INDEX uploads_owner ON uploads (owner, created_at);
    CREATE INDEX uploads_state ON uploads (state, updated_at);
    CREATE INDEX uploads_blob ON uploads (blob_key);
    """,
    """
    CREATE TABLE blobs (
        key TEXT PRIMARY KEY,
        sha256 TEXT NOT NULL,
        size BIGINT NOT NULL,
        refs INTEGER NOT NULL
    );
    CREATE INDEX blobs_sha256 ON blobs (sha256);
    """,
    """
    CREATE TABLE shares (
        id TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE,
        upload_id TEXT NOT NULL REFERENCES uploads (id),
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX shares_upload ON shares (upload_id);
    """,
    """
    CREATE TABLE drops (
        id TEXT PRIMARY KEY,
        token_sha256 TEXT NOT NULL UNIQUE,
        label TEXT NOT NULL,
        password_hash TEXT,
        max_bytes BIGINT,
        max_files INTEGER,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    """,
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        upload_id TEXT NOT NULL,
        operation TEXT NOT NULL,
        status TEXT NOT NULL,
        progress DOUBLE PRECISION NOT NULL DEFAULT 0,
        error TEXT,
        result_upload TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX jobs_status ON jobs (status);
    """,
    """
    ALTER TABLE shares ADD COLUMN label TEXT NOT NULL DEFAULT '';
    ALTER TABLE shares ADD COLUMN password_hash TEXT;
    ALTER TABLE shares ADD COLUMN max_downloads INTEGER;
    ALTER TABLE shares ADD COLUMN downloads INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE shares ADD COLUMN last_download_at DOUBLE PRECISION;
    ALTER TABLE shares ADD COLUMN several INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE share_files (
        share_id TEXT NOT NULL REFERENCES shares (id),
        position INTEGER NOT NULL,
        upload_id TEXT NOT NULL REFERENCES uploads (id),
        PRIMARY KEY (share_id, position)
    );
    CREATE TABLE content_crc32 (
        sha256 TEXT PRIMARY KEY,
        crc32 BIGINT NOT NULL
    );
    """,
    """
    CREATE TABLE views (
        upload_id TEXT PRIMARY KEY,
        path TEXT NOT NULL UNIQUE
    );
    """,
    """
    CREATE TABLE settings (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        set_at DOUBLE PRECISION NOT NULL
    );
    """,
]

LATEST = len(SQLITE)
assert len(POSTGRESQL) == LATEST, "each version exists for both backends"

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at {time} NOT NULL)"


class SchemaOutdated(Exception):
    """The database's schema is older (or newer) than this pyfiledrop's; the message names the command to run."""


def statements(script: str) -> list[str]:
    """A migration's statements, one by one (no statement of ours has a ``;`` inside a literal)."""
    return [part.strip() for part in script.split(";") if part.strip()]


def check(version: int, *, upgrade_command: str) -> None:
    """Refuse a schema this code cannot use: older (upgrade it) or newer (a newer pyfiledrop made it)."""
    if version < LATEST:
        raise SchemaOutdated(
            f"the database schema is at version {version}, this pyfiledrop needs {LATEST}: "
            f"run `{upgrade_command}` (with the servers stopped, or one at a time), then start again"
        )
    if version > LATEST:
        raise SchemaOutdated(
            f"the database schema is at version {version}, newer than this pyfiledrop knows ({LATEST}): "
            "run the newer pyfiledrop that upgraded it"
        )


def sqlite_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def sqlite_open(db: sqlite3.Connection, *, upgrade_command: str) -> list[int]:
    """For ``serve``: an empty database gets every version in one transaction (two processes starting at once: the
    second waits, then finds it done); an outdated one is refused, naming ``upgrade_command``."""
    version = sqlite_version(db)
    if version != 0:  # the usual start: no write lock taken
        check(version, upgrade_command=upgrade_command)
        return []
    db.execute("BEGIN IMMEDIATE")
    try:
        version = sqlite_version(db)
        if version == 0:
            for number in range(1, LATEST + 1):
                _sqlite_apply(db, number)
            db.execute("COMMIT")
            return list(range(1, LATEST + 1))
        db.execute("ROLLBACK")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    check(version, upgrade_command=upgrade_command)
    return []


def sqlite_upgrade(db: sqlite3.Connection) -> list[int]:
    """For ``pyfiledrop db upgrade``: every missing version, each in its own transaction; the versions applied."""
    applied: list[int] = []
    for _ in range(LATEST + 1):  # bounded: one migration a turn
        db.execute("BEGIN IMMEDIATE")
        try:
            version = sqlite_version(db)
            if version >= LATEST:
                db.execute("ROLLBACK")
                check(version, upgrade_command="pyfiledrop db upgrade")  # newer than this code: refused
                break
            _sqlite_apply(db, version + 1)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        applied.append(version + 1)
    return applied


def _sqlite_apply(db: sqlite3.Connection, number: int) -> None:
    for statement in statements(SQLITE[number - 1]):
        db.execute(statement)
    db.execute(VERSION_TABLE.format(time="REAL"))
    db.execute("INSERT OR REPLACE INTO schema_version (version, applied_at) VALUES (?, ?)", (number, time.time()))
    db.execute(f"PRAGMA user_version={number}")
