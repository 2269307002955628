"""Backends for the metadata-contract suite: real SQLite in a temporary folder, and a real PostgreSQL server
(tests/pg.py: the one ``PYFILEDROP_TEST_POSTGRES`` names, or a throw-away cluster), a fresh database per test.
The server itself is the session's (tests/backends.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pyfiledrop.meta.postgres import PostgresMetadataStore
from pyfiledrop.meta.sqlite import SQLiteMetadataStore

T = TypeVar("T")
Store = SQLiteMetadataStore | PostgresMetadataStore
StoreFactory = Callable[[], Store]


@pytest.fixture(params=["sqlite", "postgresql"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A function that makes a new (unopened) store on one database, so that a test may open several at once (as
    several replicas would)."""
    if request.param == "sqlite":
        return lambda: SQLiteMetadataStore(tmp_path / "meta.sqlite3")
    url = request.getfixturevalue("postgres_url")
    return lambda: PostgresMetadataStore(url)


def run(make: StoreFactory, body: Callable[[Any], Awaitable[T]]) -> T:
    """``body(store)`` on an opened store, closed afterwards, in a new event loop."""

    async def main() -> T:
        store = make()
        await store.open()
        try:
            return await asyncio.wait_for(body(store), 60)
        finally:
            await store.close()

    return asyncio.run(main())
