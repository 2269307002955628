"""The engine on real SQLite and a real folder: order, duplicates, concurrency, restart."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from pyfiledrop.domain.model import Protocol, UploadState
from pyfiledrop.engine.service import Chunk, Limits, NewUpload, UploadService
from pyfiledrop.errors import BadRequest, ChecksumMismatch, OffsetMismatch, TooLarge, UploadGone
from pyfiledrop.meta.sqlite import SQLiteMetadataStore
from pyfiledrop.storage.local import LocalStorage

T = TypeVar("T")


def run(tmp_path: Path, body: Callable[[UploadService], Awaitable[T]], limit: int = 1 << 30) -> T:
    async def main() -> T:
        storage = LocalStorage(tmp_path, tmp_path / ".partial", fsync_chunks=False, fsync_files=False)
        (tmp_path / ".partial").mkdir(exist_ok=True)
        meta = SQLiteMetadataStore(tmp_path / "db.sqlite3")
        await meta.open()
        try:
            return await body(UploadService(storage, meta, Limits(limit)))
        finally:
            await meta.close()

    return asyncio.run(main())


async def pieces(data: bytes, size: int = 7919) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
        await asyncio.sleep(0)


def new(size: int | None, name: str = "f.bin") -> NewUpload:
    return NewUpload(name, "owner-1", size, Protocol.DROPZONE)


def final_bytes(tmp_path: Path, blob_key: str | None) -> bytes:
    assert blob_key is not None
    return (tmp_path / blob_key).read_bytes()


def test_chunks_in_shuffled_order_give_the_exact_file_and_sha256(tmp_path: Path) -> None:
    data = os.urandom(1_000_003)
    chunk = 65_536
    offsets = list(range(0, len(data), chunk))
    random.Random(7).shuffle(offsets)

    async def body(service: UploadService) -> None:
        upload = await service.create(new(len(data)))
        for offset in offsets:
            piece = data[offset : offset + chunk]
            upload = await service.write(upload.id, Chunk(offset, pieces(piece), len(piece), all_or_nothing=True))
        assert upload.state is UploadState.COMPLETE
        assert upload.sha256 == hashlib.sha256(data).hexdigest()
        assert final_bytes(tmp_path, upload.blob_key) == data

    run(tmp_path, body)


def test_duplicate_chunks_are_idempotent(tmp_path: Path) -> None:
    data = os.urandom(300_000)

    async def body(service: UploadService) -> None:
        upload = await service.create(new(len(data)))
        for offset in (0, 100_000, 0, 100_000, 200_000, 200_000):
            piece = data[offset : offset + 100_000]
            upload = await service.write(upload.id, Chunk(offset, pieces(piece), len(piece), all_or_nothing=True))
        assert upload.state is UploadState.COMPLETE
        assert upload.received.total == len(data)
        assert final_bytes(tmp_path, upload.blob_key) == data

    run(tmp_path, body)


def test_concurrent_chunks_complete_exactly_once(tmp_path: Path) -> None:
    data = os.urandom(2_000_000)
    chunk = 125_000

    async def body(service: UploadService) -> None:
        upload = await service.create(new(len(data)))
        writes = [
            service.write(upload.id, Chunk(o, pieces(data[o : o + chunk]), chunk, all_or_nothing=True))
            for o in range(0, len(data), chunk)
        ]
        results = await asyncio.gather(*writes, *writes[:3])  # and three duplicates racing the originals
        assert any(r.state is UploadState.COMPLETE for r in results)
        done = await service.status(upload.id)
        assert done.sha256 == hashlib.sha256(data).hexdigest()
        assert final_bytes(tmp_path, done.blob_key) == data
        assert not (tmp_path / ".partial" / f"{upload.id}.part").exists()

    run(tmp_path, body)


def test_restart_resumes_from_what_sqlite_recorded(tmp_path: Path) -> None:
    data = os.urandom(500_000)

    async def first(service: UploadService) -> str:
        upload = await service.create(NewUpload("r.bin", "o", len(data), Protocol.TUS))
        await service.write(upload.id, Chunk(0, pieces(data[:200_000]), exact_offset=True))
        return upload.id

    upload_id = run(tmp_path, first)

    async def second(service: UploadService) -> None:
        upload = await service.status(upload_id)  # type: ignore[arg-type]
        assert upload.offset == 200_000
        with pytest.raises(OffsetMismatch):
            await service.write(upload.id, Chunk(100_000, pieces(b"x"), exact_offset=True))
        upload = await service.write(upload.id, Chunk(200_000, pieces(data[200_000:]), exact_offset=True))
        assert upload.sha256 == hashlib.sha256(data).hexdigest()  # hashed from the file after the restart

    run(tmp_path, second)


def test_checksum_mismatch_discards_the_chunk(tmp_path: Path) -> None:
    data = os.urandom(100_000)

    async def body(service: UploadService) -> None:
        upload = await service.create(NewUpload("c.bin", "o", len(data), Protocol.TUS))
        wrong = ("sha1", hashlib.sha1(b"other").digest())
        with pytest.raises(ChecksumMismatch):
            await service.write(upload.id, Chunk(0, pieces(data), exact_offset=True, checksum=wrong))
        assert (await service.status(upload.id)).offset == 0
        right = ("sha1", hashlib.sha1(data).digest())
        done = await service.write(upload.id, Chunk(0, pieces(data), exact_offset=True, checksum=right))
        assert done.sha256 == hashlib.sha256(data).hexdigest()

    run(tmp_path, body)


def test_too_large_is_refused_at_creation(tmp_path: Path) -> None:
    async def body(service: UploadService) -> None:
        with pytest.raises(TooLarge):
            await service.create(new(2_000))

    run(tmp_path, body, limit=1_000)


def test_body_longer_than_the_upload_is_refused_and_not_recorded(tmp_path: Path) -> None:
    async def body(service: UploadService) -> None:
        upload = await service.create(new(10))
        with pytest.raises(BadRequest):
            await service.write(upload.id, Chunk(0, pieces(b"x" * 20), all_or_nothing=True))
        assert (await service.status(upload.id)).received.total == 0

    run(tmp_path, body)


def test_terminated_upload_is_gone(tmp_path: Path) -> None:
    async def body(service: UploadService) -> None:
        upload = await service.create(new(10))
        await service.terminate(upload.id)
        with pytest.raises(UploadGone):
            await service.status(upload.id)
        assert not (tmp_path / ".partial" / f"{upload.id}.part").exists()

    run(tmp_path, body)


def test_deferred_length_completes_when_declared(tmp_path: Path) -> None:
    data = os.urandom(50_000)

    async def body(service: UploadService) -> None:
        upload = await service.create(NewUpload("d.bin", "o", None, Protocol.TUS))
        upload = await service.write(upload.id, Chunk(0, pieces(data), exact_offset=True))
        assert upload.state is UploadState.RECEIVING
        done = await service.declare_size(upload.id, len(data))
        assert done.sha256 == hashlib.sha256(data).hexdigest()
        assert final_bytes(tmp_path, done.blob_key) == data

    run(tmp_path, body)
