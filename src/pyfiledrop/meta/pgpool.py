"""Connections to PostgreSQL: a small pool of psycopg 3 connections, one per worker thread, so that a statement
never runs on the event loop; and the schema's migrations, serialised across replicas by an advisory lock.

Threads rather than psycopg's async connections because the side stores' SQL is written once, as plain functions
of a transaction (meta/sql.py), for SQLite's connection thread and for these alike.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors

from pyfiledrop.errors import ConfigError
from pyfiledrop.meta import migrations
from pyfiledrop.meta.sql import Dialect, Row, to_format
from pyfiledrop.workers import wrap_job

log = logging.getLogger("pyfiledrop.meta")

T = TypeVar("T")

POOL_SIZE = 4  # connections (and threads) per process: a replica's statements are short
_RETRIES = 5  # a transaction that lost a deadlock or a serialisation race is run again, this many times at most
_MIGRATION_LOCK = 0x70796664_6D696772  # pg_advisory_lock key: "pyfdmigr", one migration run at a time
_CONNECT_TIMEOUT = 10


def describe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    where = f"{info.get('host', '')}:{info.get('port', 5432)}"
    return f"postgresql://{info.get('user', '')}@{where}/{info.get('dbname', '')}"


class PostgresTx:
    """``Tx`` (meta/sql.py) over a psycopg connection, ``?`` placeholders translated once per statement text."""

    dialect = Dialect.POSTGRESQL

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self.cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.cursor.execute(_translated(sql), params)
        return self.cursor.rowcount

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.cursor.executemany(_translated(sql), list(rows))

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        self.cursor.execute(_translated(sql), params)
        return self.cursor.fetchone()

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self.cursor.execute(_translated(sql), params)
        return self.cursor.fetchall()


@functools.lru_cache(maxsize=512)
def _translated(sql: str) -> str:
    return to_format(sql)


class PostgresPool:
    """Runs functions of a ``PostgresTx``, each in one transaction, on a pool of connections (one per thread)."""

    def __init__(self, url: str, size: int = POOL_SIZE) -> None:
        self.url = url
        self._executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="postgres")
        self._local = threading.local()
        self._connections: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()

    def connect(self) -> psycopg.Connection[Any]:
        try:
            connection = psycopg.connect(self.url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT)
        except psycopg.OperationalError as exc:
            raise ConfigError(f"cannot connect to the database {describe(self.url)}: {exc}".strip()) from exc
        with self._lock:
            self._connections.append(connection)
        return connection

    def _connection(self) -> psycopg.Connection[Any]:
        connection: psycopg.Connection[Any] | None = getattr(self._local, "connection", None)
        if connection is None or connection.closed or connection.broken:
            connection = self._local.connection = self.connect()
        return connection

    def call(self, fn: Callable[[PostgresTx], T]) -> T:
        """In the calling (worker) thread: ``fn`` in one transaction, run again after a deadlock or a lost
        serialisation race (the database rolled it back), or once after a dropped connection."""
        for attempt in range(_RETRIES):
            connection = self._connection()
            try:
                with connection.transaction(), connection.cursor() as cursor:
                    return fn(PostgresTx(cursor))
            except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure):
                if attempt == _RETRIES - 1:
                    raise
                time.sleep(0.005 * (attempt + 1))
            except psycopg.OperationalError:
                if not connection.broken or attempt > 0:
                    raise
                log.warning("the connection to the database broke: connecting again")
        raise AssertionError("unreachable")

    async def run(self, fn: Callable[[PostgresTx], T]) -> T:
        return await wrap_job(self._executor.submit(self.call, fn))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()


def schema_version(connection: psycopg.Connection[Any]) -> int:
    found = connection.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not found or not found[0]:
        return 0
    row = connection.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def open_schema(connection: psycopg.Connection[Any], *, upgrade_command: str) -> list[int]:
    """For ``serve``: an empty database gets every version, all in one transaction (a replica killed meanwhile
    leaves it empty, not half made); an outdated one is refused, naming the command."""
    with _migration_lock(connection):
        version = schema_version(connection)
        if version == 0:
            with connection.transaction():  # each migration's own transaction becomes a savepoint inside it
                return _apply(connection, 0)
    migrations.check(version, upgrade_command=upgrade_command)
    return []


def upgrade_schema(connection: psycopg.Connection[Any]) -> list[int]:
    """For ``pyfiledrop db upgrade``: every missing version, each in its own transaction."""
    with _migration_lock(connection):
        version = schema_version(connection)
        if version > migrations.LATEST:
            migrations.check(version, upgrade_command="pyfiledrop db upgrade")
        return _apply(connection, version)


def _apply(connection: psycopg.Connection[Any], version: int) -> list[int]:
    applied = []
    for number in range(version + 1, migrations.LATEST + 1):
        with connection.transaction():
            for statement in migrations.statements(migrations.POSTGRESQL[number - 1]):
                connection.execute(statement.encode())
            connection.execute(migrations.VERSION_TABLE.format(time="DOUBLE PRECISION").encode())
            connection.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (%s, %s)", (number, time.time())
            )
        applied.append(number)
    return applied


class _migration_lock:
    """A session advisory lock: three replicas starting at once (or a ``db upgrade`` beside them) migrate in turn,
    and each finds the work of the one before it done."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection

    def __enter__(self) -> None:
        self.connection.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))

    def __exit__(self, *_: object) -> None:
        self.connection.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))
