"""Numbered migrations on both backends: an old SQLite database upgrades in place, ``serve`` refuses an outdated
schema and names the command, ``pyfiledrop db upgrade`` applies what is missing, replicas racing to initialise an
empty PostgreSQL database (or to upgrade it) do no harm."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from pyfiledrop.meta import migrations
from pyfiledrop.meta.postgres import PostgresMetadataStore
from pyfiledrop.meta.sqlite import SQLiteMetadataStore
from tests.conftest import free_port


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFILEDROP_")}
    return subprocess.run([sys.executable, "-m", "pyfiledrop", *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)  # fmt: skip


def old_sqlite(storage: Path, version: int = 6) -> Path:
    """A database as the pyfiledrop before numbered migrations left it: ``user_version`` counting its scripts, the
    views table made at start, one finished upload in it."""
    storage.mkdir(parents=True, exist_ok=True)
    path = storage / ".pyfiledrop.sqlite3"
    with sqlite3.connect(path) as db:
        for script in migrations.SQLITE[:version]:
            db.executescript(script)
        db.execute(f"PRAGMA user_version={version}")
        db.execute("CREATE TABLE IF NOT EXISTS views (upload_id TEXT PRIMARY KEY, path TEXT NOT NULL UNIQUE)")
        db.execute(
            "INSERT INTO uploads (id, filename, owner, size, protocol, state, created_at, updated_at, sha256, "
            "blob_key, content_type) VALUES ('u1', 'kept.bin', 'o', 3, 'put', 'complete', 1, 1, 'aa', 'k', 'x')"
        )
    db.close()
    return path


def test_an_old_sqlite_database_is_refused_then_upgraded_in_place(tmp_path: Path) -> None:
    storage = tmp_path / "s"
    path = old_sqlite(storage)
    refused = cli("serve", "--host", "127.0.0.1", "-p", str(free_port()), "-s", str(storage))
    assert refused.returncode == 2
    assert "pyfiledrop db upgrade --storage" in refused.stderr and "version 6" in refused.stderr
    status = cli("db", "status", "-s", str(storage))
    assert status.returncode == 1 and "outdated" in status.stdout
    upgraded = cli("db", "upgrade", "-s", str(storage))
    assert upgraded.returncode == 0, upgraded.stderr
    assert "applied migration 7" in upgraded.stdout and f"applied migration {migrations.LATEST}" in upgraded.stdout
    assert cli("db", "status", "-s", str(storage)).returncode == 0
    assert "already current" in cli("db", "upgrade", "-s", str(storage)).stdout
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT filename FROM uploads").fetchall() == [("kept.bin",)]
        assert db.execute("PRAGMA user_version").fetchone() == (migrations.LATEST,)
        assert [v for (v,) in db.execute("SELECT version FROM schema_version ORDER BY version")] == [7, 8]
    db.close()


def test_a_much_older_sqlite_database_upgrades_through_every_version(tmp_path: Path) -> None:
    path = old_sqlite(tmp_path / "s", version=1)
    with pytest.raises(migrations.SchemaOutdated, match="pyfiledrop db upgrade"):
        asyncio.run(SQLiteMetadataStore(path).open())
    upgraded = cli("db", "upgrade", "-s", str(tmp_path / "s"))
    assert upgraded.returncode == 0, upgraded.stderr
    assert "upgraded from version 1 to 8" in upgraded.stdout

    async def check() -> None:
        store = SQLiteMetadataStore(path)
        await store.open()
        assert [u.filename for u in await store.list()] == ["kept.bin"]
        assert [(ref.key, refs) for ref, _, refs in await store.blobs()] == [("k", 1)]  # counted by version 2
        await store.close()

    asyncio.run(check())


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    sqlite3.connect(path).execute("PRAGMA user_version=99").connection.close()
    with pytest.raises(migrations.SchemaOutdated, match="newer"):
        asyncio.run(SQLiteMetadataStore(path).open())


def test_a_fresh_sqlite_database_is_made_by_the_server(tmp_path: Path) -> None:
    async def main() -> None:
        store = SQLiteMetadataStore(tmp_path / "fresh.sqlite3")
        await store.open()
        await store.close()

    asyncio.run(main())
    with sqlite3.connect(tmp_path / "fresh.sqlite3") as db:
        assert db.execute("SELECT COUNT(*) FROM schema_version").fetchone() == (migrations.LATEST,)
    db.close()


def test_an_outdated_postgresql_database_is_refused_then_upgraded(postgres_url: str, tmp_path: Path) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(migrations.VERSION_TABLE.format(time="DOUBLE PRECISION").encode())
        for number in range(1, 6):
            for statement in migrations.statements(migrations.POSTGRESQL[number - 1]):
                connection.execute(statement.encode())
            connection.execute("INSERT INTO schema_version VALUES (%s, 0)", (number,))
    refused = cli("serve", "--host", "127.0.0.1", "-p", str(free_port()), "-s", str(tmp_path / "s"),
                  "--database", postgres_url)  # fmt: skip
    assert refused.returncode == 2
    assert f"pyfiledrop db upgrade --database {postgres_url}" in refused.stderr
    assert cli("db", "status", "--database", postgres_url).returncode == 1
    upgraded = cli("db", "upgrade", "--database", postgres_url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "upgraded from version 5 to 8" in upgraded.stdout
    assert cli("db", "status", "--database", postgres_url).returncode == 0


def test_replicas_and_upgrades_racing_on_an_empty_postgresql_database(postgres: object, tmp_path: Path) -> None:
    from tests.pg import Cluster

    assert isinstance(postgres, Cluster)
    upgrades_url, opens_url = postgres.database(), postgres.database()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYFILEDROP_")}
    racing = [subprocess.Popen([sys.executable, "-m", "pyfiledrop", "db", "upgrade", "--database", upgrades_url],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for _ in range(3)]  # fmt: skip
    outputs = [process.communicate(timeout=60) for process in racing]
    assert [process.returncode for process in racing] == [0, 0, 0], outputs
    assert sum(out.count(b"applied migration") for out, _ in outputs) == migrations.LATEST  # each applied once

    async def open_three() -> None:
        stores = [PostgresMetadataStore(opens_url) for _ in range(3)]
        await asyncio.gather(*(store.open() for store in stores))
        for store in stores:
            await store.close()

    asyncio.run(open_three())
    with psycopg.connect(opens_url) as connection:
        assert connection.execute("SELECT COUNT(*) FROM schema_version").fetchone() == (migrations.LATEST,)


def test_a_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    bad = cli("serve", "-s", str(tmp_path / "s"), "--database", "mysql://x@y/z")
    assert bad.returncode == 2 and "--database takes a PostgreSQL URL" in bad.stderr
    unreachable = cli("db", "status", "--database", f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    assert unreachable.returncode == 2 and "cannot connect to the database" in unreachable.stderr
