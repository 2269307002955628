"""Dedup, quotas, expiry, stale uploads, verification and crash clean-up on real SQLite and disk."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from pyfiledrop.domain.model import Protocol, UploadState
from pyfiledrop.engine.lifecycle import Lifecycle
from pyfiledrop.engine.service import Chunk, Limits, NewUpload, UploadService
from pyfiledrop.errors import QuotaExceeded, UploadGone
from pyfiledrop.meta.sqlite import SQLiteMetadataStore
from pyfiledrop.storage.local import LocalStorage
from tests.engine.test_service import pieces

T = TypeVar("T")


def run(tmp_path: Path, body: Callable[[UploadService, Lifecycle], Awaitable[T]], **limits: object) -> T:
    async def main() -> T:
        (tmp_path / ".partial").mkdir(exist_ok=True)
        storage = LocalStorage(tmp_path, tmp_path / ".partial", fsync_chunks=False, fsync_files=False)
        meta = SQLiteMetadataStore(tmp_path / "db.sqlite3")
        await meta.open()
        service = UploadService(storage, meta, Limits(1 << 30, **limits))  # type: ignore[arg-type]
        try:
            return await body(service, Lifecycle(service, stale_after=3600))
        finally:
            await meta.close()

    return asyncio.run(main())


async def upload(service: UploadService, data: bytes, owner: str = "o", name: str = "f.bin") -> str:
    created = await service.create(NewUpload(name, owner, len(data), Protocol.PUT))
    done = await service.write(created.id, Chunk(0, pieces(data), len(data), exact_offset=True))
    assert done.state is UploadState.COMPLETE
    return done.id


def blob_files(tmp_path: Path) -> list[Path]:
    return [p for p in tmp_path.iterdir() if p.is_file() and "_" in p.name and not p.name.startswith(".")]


def test_same_bytes_twice_are_stored_once_and_live_until_the_last_record(tmp_path: Path) -> None:
    data = os.urandom(200_000)

    async def body(service: UploadService, _: Lifecycle) -> None:
        first = await upload(service, data, name="a.bin")
        second = await upload(service, data, owner="someone else", name="b.bin")
        a, b = await service.status(first), await service.status(second)  # type: ignore[arg-type]
        assert a.blob_key == b.blob_key and len(blob_files(tmp_path)) == 1
        await service.terminate(a.id)
        assert len(blob_files(tmp_path)) == 1  # still referenced by the second record
        assert (tmp_path / str(b.blob_key)).read_bytes() == data
        await service.terminate(b.id)
        assert blob_files(tmp_path) == []

    run(tmp_path, body)


def test_quota_refuses_at_creation_not_half_way(tmp_path: Path) -> None:
    async def body(service: UploadService, _: Lifecycle) -> None:
        await upload(service, os.urandom(600))
        with pytest.raises(QuotaExceeded, match="quota reached"):
            await service.create(NewUpload("big", "o", 500, Protocol.TUS))
        await service.create(NewUpload("fits", "o", 400, Protocol.TUS))

    run(tmp_path, body, quota_bytes=1000)


def test_owner_quota_counts_only_that_owner(tmp_path: Path) -> None:
    async def body(service: UploadService, _: Lifecycle) -> None:
        await upload(service, os.urandom(800), owner="alice")
        with pytest.raises(QuotaExceeded, match="your quota"):
            await service.create(NewUpload("x", "alice", 300, Protocol.TUS))
        await service.create(NewUpload("x", "bob", 900, Protocol.TUS))

    run(tmp_path, body, owner_quota_bytes=1000)


def test_expired_uploads_are_swept_with_their_file(tmp_path: Path) -> None:
    async def body(service: UploadService, lifecycle: Lifecycle) -> None:
        upload_id = await upload(service, os.urandom(1000))
        done = await service.status(upload_id)  # type: ignore[arg-type]
        assert done.expires_at is not None and done.expires_at > time.time()
        assert await lifecycle.sweep(now=time.time() + 30) == 0
        assert await lifecycle.sweep(now=time.time() + 120) == 1
        with pytest.raises(UploadGone):
            await service.status(done.id)
        assert blob_files(tmp_path) == []

    run(tmp_path, body, expire_after=60.0)


def test_stale_unfinished_uploads_are_swept(tmp_path: Path) -> None:
    async def body(service: UploadService, lifecycle: Lifecycle) -> None:
        created = await service.create(NewUpload("s", "o", 100, Protocol.TUS))
        await service.write(created.id, Chunk(0, pieces(b"x" * 10), exact_offset=True))
        assert await lifecycle.sweep(now=time.time() + 60) == 0
        assert await lifecycle.sweep(now=time.time() + 7200) == 1
        assert not (tmp_path / ".partial" / f"{created.id}.part").exists()

    run(tmp_path, body)


def test_verify_reports_a_file_changed_on_disk(tmp_path: Path) -> None:
    async def body(service: UploadService, lifecycle: Lifecycle) -> None:
        good = await service.status(await upload(service, os.urandom(5000), name="good"))  # type: ignore[arg-type]
        bad = await service.status(await upload(service, os.urandom(5000), name="bad"))  # type: ignore[arg-type]
        path = tmp_path / str(bad.blob_key)
        stored = path.read_bytes()
        path.write_bytes(bytes([stored[0] ^ 0xFF]) + stored[1:])  # b"X" + … was the same file 1 time in 256
        checks = {c.key: c for c in await lifecycle.verify()}
        assert checks[str(good.blob_key)].ok
        assert not checks[str(bad.blob_key)].ok
        assert checks[str(bad.blob_key)].actual_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()

    run(tmp_path, body)


def test_startup_removes_orphans_and_finishes_interrupted_completions(tmp_path: Path) -> None:
    data = os.urandom(10_000)

    async def crash(service: UploadService, _: Lifecycle) -> str:
        created = await service.create(NewUpload("c.bin", "o", len(data), Protocol.TUS))
        # All bytes written and recorded, then "killed" before completing: state left at COMPLETING.
        await service.storage.write(created.id, 0, pieces(data))
        await service.meta.record_range(created.id, 0, len(data))
        await service.meta.transition(created.id, UploadState.COMPLETING, expect=UploadState.RECEIVING)
        (tmp_path / ".partial" / ("Z" * 24 + ".part")).write_bytes(b"orphan partial")
        (tmp_path / ("Y" * 24 + "_lost.bin")).write_bytes(b"orphan blob")
        (tmp_path / "notes.txt").write_text("not ours: must survive")
        return created.id

    upload_id = run(tmp_path, crash)

    async def restart(service: UploadService, lifecycle: Lifecycle) -> None:
        report = await lifecycle.on_startup()
        assert (report.completed, report.partial_orphans, report.blob_orphans) == (1, 1, 1)
        done = await service.status(upload_id)  # type: ignore[arg-type]
        assert done.state is UploadState.COMPLETE and done.sha256 == hashlib.sha256(data).hexdigest()
        assert not (tmp_path / ("Y" * 24 + "_lost.bin")).exists()
        assert (tmp_path / "notes.txt").exists()

    run(tmp_path, restart)
