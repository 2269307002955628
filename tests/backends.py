"""Session-wide real back ends, shared by every suite that needs them (tests/meta, tests/storage, tests/replicas,
tests/engine): one PostgreSQL server (tests/pg.py) and one SeaweedFS S3 server (tests/weed.py) per test session —
each takes seconds to start (SeaweedFS about half a minute on two busy cores), so they are started once, on first
use, and each test gets its own database or bucket on them."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.pg import Cluster
from tests.weed import S3Server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Cluster]:
    try:
        cluster = Cluster.start()
    except FileNotFoundError as exc:
        hint = "install Debian's postgresql, or set PYFILEDROP_TEST_POSTGRES"
        pytest.skip(f"PostgreSQL tests need a server: {exc} ({hint})")
    yield cluster
    cluster.stop()


@pytest.fixture
def postgres_url(postgres: Cluster) -> str:
    """A fresh, empty database on the session's server."""
    return postgres.database()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server.from_environment() or S3Server().start()
    saved = {name: os.environ.get(name) for name in server.environment()}
    os.environ.update(server.environment())  # the storage under test (and any server it starts) finds its keys
    try:
        yield server
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if server.process is not None:
            server.stop()
