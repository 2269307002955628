"""``pyfiledrop db upgrade`` and ``pyfiledrop db status``: the schema version of a server's database, and its
migrations applied (meta/migrations.py). Plain functions; cli.py prints what they return."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyfiledrop.config import Settings
from pyfiledrop.errors import ConfigError
from pyfiledrop.meta import migrations
from pyfiledrop.meta.factory import upgrade_command
from pyfiledrop.meta.settings import LIMIT_PREFIX
from pyfiledrop.meta.sql import is_postgres_url

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True, slots=True)
class SchemaReport:
    backend: str  # "sqlite" or "postgresql"
    where: str  # the file, or the URL without its password
    version: int  # before an upgrade
    applied: list[int] = field(default_factory=list)
    limits: dict[str, str] = field(default_factory=dict)  # the replicas' shared limits (meta/settings.py)

    @property
    def latest(self) -> int:
        return migrations.LATEST

    @property
    def current(self) -> int:
        return self.applied[-1] if self.applied else self.version

    @property
    def up_to_date(self) -> bool:
        return self.current == migrations.LATEST


def upgrade(settings: Settings) -> SchemaReport:
    """Apply every missing migration (an empty or missing database is created)."""
    if is_postgres_url(settings.database):
        from pyfiledrop.meta import pgpool  # psycopg is loaded only where PostgreSQL is used

        with _postgres(settings) as connection:
            before = pgpool.schema_version(connection)
            applied = pgpool.upgrade_schema(connection)
            return SchemaReport("postgresql", _where(settings), before, applied, _pg_limits(connection))
    path = settings.sqlite_path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, timeout=30)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"cannot open the database {path}: {exc}") from exc
    try:
        db.execute("PRAGMA journal_mode=WAL")
        before = migrations.sqlite_version(db)
        applied = migrations.sqlite_upgrade(db)
        return SchemaReport("sqlite", str(path), before, applied, _sqlite_limits(db))
    finally:
        db.close()


def status(settings: Settings) -> SchemaReport:
    """The schema version, read only (a missing SQLite database is version 0)."""
    if is_postgres_url(settings.database):
        from pyfiledrop.meta import pgpool  # psycopg is loaded only where PostgreSQL is used

        with _postgres(settings) as connection:
            version = pgpool.schema_version(connection)
            return SchemaReport("postgresql", _where(settings), version, limits=_pg_limits(connection, version))
    path = settings.sqlite_path
    if not path.exists():
        return SchemaReport("sqlite", str(path), 0)
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open the database {path}: {exc}") from exc
    try:
        version = migrations.sqlite_version(db)
        return SchemaReport("sqlite", str(path), version, limits=_sqlite_limits(db) if version >= 8 else {})
    finally:
        db.close()


def check_before_serve(settings: Settings) -> str | None:
    """Why ``serve`` must not start on this database (an outdated or too new schema), or None. An empty or missing
    database is fine: the server initialises it."""
    report = status(settings)
    if report.version == 0:
        return None
    try:
        migrations.check(report.version, upgrade_command=upgrade_command(settings))
    except migrations.SchemaOutdated as exc:
        return str(exc)
    return None


def _where(settings: Settings) -> str:
    from pyfiledrop.meta import pgpool

    return pgpool.describe(settings.database or "")


class _postgres:
    def __init__(self, settings: Settings) -> None:
        self.url = settings.database or ""
        self.connection: psycopg.Connection[Any] | None = None

    def __enter__(self) -> psycopg.Connection[Any]:
        import psycopg

        from pyfiledrop.meta import pgpool

        try:
            self.connection = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise ConfigError(f"cannot connect to the database {pgpool.describe(self.url)}: {exc}".strip()) from exc
        return self.connection

    def __exit__(self, *_: object) -> None:
        if self.connection is not None:
            self.connection.close()


def _pg_limits(connection: psycopg.Connection[Any], version: int | None = None) -> dict[str, str]:
    from pyfiledrop.meta import pgpool

    if (version if version is not None else pgpool.schema_version(connection)) < 8:
        return {}
    rows = connection.execute(
        "SELECT name, value FROM settings WHERE name LIKE %s ORDER BY name", (LIMIT_PREFIX + "%",)
    )
    return {str(name): str(value) for name, value in rows.fetchall()}


def _sqlite_limits(db: sqlite3.Connection) -> dict[str, str]:
    rows = db.execute("SELECT name, value FROM settings WHERE name LIKE ? ORDER BY name", (LIMIT_PREFIX + "%",))
    return {str(name): str(value) for name, value in rows.fetchall()}
