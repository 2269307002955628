"""The SQL that the side stores (drops, shares, jobs, views, listing, settings) share between backends.

A store writes its statements once, with ``?`` placeholders, against ``Tx``; each backend runs them in one
transaction on its own connection thread (SQLite) or pooled connection (PostgreSQL), never on the event loop. The
few spellings that differ between the two dialects are the helpers at the end.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")
Row = tuple[Any, ...]
BATCH = 500  # bound parameters per IN (…) list: under SQLite's limit, and PostgreSQL's


class Dialect(StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class Tx(Protocol):
    """Statements of one transaction, ``?`` placeholders in every dialect."""

    dialect: Dialect

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...


@runtime_checkable
class Database(Protocol):
    """What a side store needs of a metadata backend."""

    dialect: Dialect

    async def transact(self, fn: Callable[[Tx], T]) -> T:
        """``fn`` in one read-write transaction (SQLite: BEGIN IMMEDIATE; PostgreSQL: READ COMMITTED, row locks)."""
        ...

    async def query(self, fn: Callable[[Tx], T]) -> T:
        """``fn`` for reads and single-statement writes (SQLite: autocommit, no write lock taken up front)."""
        ...


class SQLiteTx:
    dialect = Dialect.SQLITE

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.connection.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.connection.executemany(sql, rows)

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self.connection.execute(sql, params).fetchone()
        return row

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.connection.execute(sql, params).fetchall()


def to_format(sql: str) -> str:
    """``?`` → ``%s`` for psycopg (a literal ``%`` doubled). No statement of ours has a ``?`` inside a literal."""
    return sql.replace("%", "%%").replace("?", "%s")


def marks(count: int) -> str:
    return ", ".join("?" * count)


def batches(values: Sequence[T]) -> Iterable[list[T]]:
    for start in range(0, len(values), BATCH):
        yield list(values[start : start + BATCH])


def insert_or_ignore(dialect: Dialect, table: str, columns: str) -> str:
    """An insert that does nothing when a unique key is taken."""
    values = marks(len(columns.split(",")))
    if dialect is Dialect.SQLITE:
        return f"INSERT OR IGNORE INTO {table} ({columns}) VALUES ({values})"  # noqa: S608 - our table names
    return f"INSERT INTO {table} ({columns}) VALUES ({values}) ON CONFLICT DO NOTHING"  # noqa: S608


def insert_or_replace(dialect: Dialect, table: str, columns: str, key: str) -> str:
    """An insert that overwrites the row with the same ``key`` (the first column)."""
    names = [name.strip() for name in columns.split(",")]
    values = marks(len(names))
    if dialect is Dialect.SQLITE:
        return f"INSERT OR REPLACE INTO {table} ({columns}) VALUES ({values})"  # noqa: S608
    updates = ", ".join(f"{name} = excluded.{name}" for name in names if name != key)
    conflict = f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    return f"INSERT INTO {table} ({columns}) VALUES ({values}) {conflict}"  # noqa: S608 - our table names


def nocase(dialect: Dialect, column: str) -> str:
    """A column sorted without regard to case."""
    return f"{column} COLLATE NOCASE" if dialect is Dialect.SQLITE else f"lower({column})"


def like(dialect: Dialect) -> str:
    """SQLite's LIKE ignores ASCII case; PostgreSQL's ILIKE does the same."""
    return "LIKE" if dialect is Dialect.SQLITE else "ILIKE"


def is_postgres_url(url: str | None) -> bool:
    """``--database`` names PostgreSQL (told without importing its driver: a SQLite server never loads it)."""
    return url is not None and url.startswith(("postgresql://", "postgres://"))
