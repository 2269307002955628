"""Helpers over the session's SeaweedFS S3 server (the ``s3_server`` fixture in
tests/backends.py), and storage backends to run one contract against."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from pyfiledrop.storage.local import LocalStorage
from pyfiledrop.storage.parts import MIN_PART
from pyfiledrop.storage.s3 import S3Storage
from pyfiledrop.storage.s3_client import S3Options, parse_location
from tests.weed import S3Server

Backend = Callable[[], Any]


def s3_storage(server: S3Server, bucket: str, spool: Path, **options: Any) -> S3Storage:
    location = parse_location(f"s3://{bucket}/pfx/")
    options.setdefault("align", MIN_PART)  # 5 MiB parts: several parts in a few MiB of test data
    return S3Storage(location, S3Options(endpoint=server.endpoint), spool, orphan_grace=0, **options)


def open_multiparts(server: S3Server, bucket: str) -> list[str]:
    return [u["Key"] for u in server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


def all_keys(server: S3Server, bucket: str) -> list[str]:
    return [item["Key"] for item in server.client().list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Makes storage instances over one shared place (two S3 instances: two replicas of one deployment)."""
    made: list[Any] = []
    if request.param == "local":
        (tmp_path / ".partial").mkdir()

        def make() -> Any:
            storage = LocalStorage(tmp_path, tmp_path / ".partial", fsync_chunks=False, fsync_files=False)
            made.append(storage)
            return storage

    else:
        server: S3Server = request.getfixturevalue("s3_server")
        bucket = server.new_bucket()

        def make() -> Any:
            storage = s3_storage(server, bucket, tmp_path / f"spool-{len(made)}")
            storage.test_bucket = bucket  # type: ignore[attr-defined]
            made.append(storage)
            return storage

    yield make
    for storage in made:
        if isinstance(storage, S3Storage):
            storage.close()


async def body_of(data: bytes, piece: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), piece):
        yield data[start : start + piece]
        await asyncio.sleep(0)


@asynccontextmanager
async def nothing() -> AsyncIterator[None]:
    yield
