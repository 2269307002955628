"""Which metadata backend a server uses: PostgreSQL for ``--database postgresql://…``, else SQLite in the storage
folder (the default). Both are ``MetadataStore`` (meta/base.py) and ``Database`` (meta/sql.py) for the side stores."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

from pyfiledrop.config import Settings
from pyfiledrop.meta.sql import is_postgres_url
from pyfiledrop.meta.sqlite import SQLiteMetadataStore

if TYPE_CHECKING:  # psycopg is loaded only by a server that uses PostgreSQL (~11 MiB of RSS otherwise)
    from pyfiledrop.meta.postgres import PostgresMetadataStore

Store: TypeAlias = "SQLiteMetadataStore | PostgresMetadataStore"


def upgrade_command(settings: Settings) -> str:
    """The command that brings this server's database up to date, to name when its schema is outdated."""
    if is_postgres_url(settings.database):
        return f"pyfiledrop db upgrade --database {shlex.quote(_without_password(settings.database or ''))}"
    return f"pyfiledrop db upgrade --storage {shlex.quote(str(settings.storage))}"


def make_store(settings: Settings, *, synchronous: str = "FULL", on_full: Callable[[], bool] | None = None) -> Store:
    """The store (not yet opened: ``open`` initialises an empty database and refuses an outdated one)."""
    command = upgrade_command(settings)
    if settings.database is not None and is_postgres_url(settings.database):
        from pyfiledrop.meta.postgres import PostgresMetadataStore

        return PostgresMetadataStore(settings.database, upgrade_command=command)
    return SQLiteMetadataStore(settings.sqlite_path, synchronous=synchronous, on_full=on_full, upgrade_command=command)


def _without_password(url: str) -> str:
    """A password in the URL is not repeated in a message (PGPASSWORD or ~/.pgpass can give it instead)."""
    scheme, _, rest = url.partition("://")
    credentials, at, place = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}@{place}"
