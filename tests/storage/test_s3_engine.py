"""The engine on S3 (a real SeaweedFS) and real SQLite: the whole-file sha256 checked before completion,
deduplication across two replicas, termination, expiry and stale sweeps, and start-up's orphan cleanup."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from pyfiledrop.domain.ids import new_upload_id
from pyfiledrop.domain.model import Protocol, UploadState
from pyfiledrop.engine.lifecycle import Lifecycle
from pyfiledrop.engine.service import Chunk, Limits, NewUpload, UploadService
from pyfiledrop.meta.sqlite import SQLiteMetadataStore
from pyfiledrop.storage.s3 import S3Storage
from pyfiledrop.units import MIB
from tests.storage.conftest import all_keys, body_of, open_multiparts, s3_storage
from tests.weed import S3Server

Body = Callable[[list[UploadService]], Awaitable[None]]


def run(server: S3Server, tmp_path: Path, body: Body, replicas: int = 1, expire_after: float | None = None) -> str:
    """``body`` gets ``replicas`` services over one bucket and one database: processes of one deployment."""
    bucket = server.new_bucket()

    async def main() -> None:
        stores: list[S3Storage] = []
        metas: list[SQLiteMetadataStore] = []
        services = []
        for index in range(replicas):
            stores.append(s3_storage(server, bucket, tmp_path / f"spool-{index}"))
            metas.append(SQLiteMetadataStore(tmp_path / "db.sqlite3"))
            await metas[-1].open()
            services.append(UploadService(stores[-1], metas[-1], Limits(1 << 40, expire_after=expire_after)))
        try:
            await body(services)
        finally:
            for meta in metas:
                await meta.close()
            for store in stores:
                store.close()

    asyncio.run(main())
    return bucket


def new(size: int | None) -> NewUpload:
    return NewUpload("f.bin", "owner-1", size, Protocol.DROPZONE)


async def send(service: UploadService, upload_id: Any, data: bytes, offset: int, length: int) -> Any:
    piece = data[offset : offset + length]
    return await service.write(upload_id, Chunk(offset, body_of(piece), len(piece)))


def test_shuffled_chunks_at_two_replicas_complete_with_the_right_sha256(s3_server: S3Server, tmp_path: Path) -> None:
    data = os.urandom(13 * MIB + 5)
    chunk = 2 * MIB + 3
    offsets = list(range(0, len(data), chunk))
    random.Random(5).shuffle(offsets)

    async def body(services: list[UploadService]) -> None:
        upload = await services[0].create(new(len(data)))
        results = await asyncio.gather(*(send(services[i % 2], upload.id, data, offset, chunk)
                                         for i, offset in enumerate(offsets)))  # fmt: skip
        done = await services[0].meta.get(upload.id)
        assert done.state is UploadState.COMPLETE, results
        assert done.sha256 == hashlib.sha256(data).hexdigest()
        assert done.blob is not None
        assert b"".join([b async for b in services[1].storage.read(done.blob)]) == data

    bucket = run(s3_server, tmp_path, body, replicas=2)
    assert not open_multiparts(s3_server, bucket)
    assert [k for k in all_keys(s3_server, bucket) if "/uploads/" in k] == []  # no staging left


def test_the_same_content_at_two_replicas_is_stored_once(s3_server: S3Server, tmp_path: Path) -> None:
    data = os.urandom(6 * MIB)

    async def body(services: list[UploadService]) -> None:
        first = await services[0].create(new(len(data)))
        await send(services[0], first.id, data, 0, len(data))
        second = await services[1].create(new(len(data)))
        await send(services[1], second.id, data, 0, len(data))
        a, b = await services[0].meta.get(first.id), await services[1].meta.get(second.id)
        assert a.blob == b.blob and a.sha256 == b.sha256
        await services[0].terminate(first.id)
        assert b.blob is not None and await services[1].storage.exists(b.blob)  # still referenced
        await services[1].terminate(second.id)

    bucket = run(s3_server, tmp_path, body, replicas=2)
    assert all_keys(s3_server, bucket) == [] and not open_multiparts(s3_server, bucket)


def test_termination_aborts_the_multipart_upload_and_removes_staging(s3_server: S3Server, tmp_path: Path) -> None:
    data = os.urandom(9 * MIB)

    async def body(services: list[UploadService]) -> None:
        upload = await services[0].create(new(len(data)))
        await send(services[0], upload.id, data, 0, 6 * MIB + 1)  # one part sent, a piece staged
        await services[0].terminate(upload.id)

    bucket = run(s3_server, tmp_path, body)
    assert all_keys(s3_server, bucket) == [] and not open_multiparts(s3_server, bucket)


def test_sweeps_free_expired_and_stale_uploads_in_s3(s3_server: S3Server, tmp_path: Path) -> None:
    data = os.urandom(7 * MIB)

    async def body(services: list[UploadService]) -> None:
        service = services[0]
        finished = await service.create(new(len(data)))
        await send(service, finished.id, data, 0, len(data))
        unfinished = await service.create(new(len(data)))
        await send(service, unfinished.id, data, 0, 3 * MIB)
        assert await Lifecycle(service, stale_after=3600).sweep(time.time() + 7200) == 2

    bucket = run(s3_server, tmp_path, body, expire_after=60)
    assert all_keys(s3_server, bucket) == [] and not open_multiparts(s3_server, bucket)


def test_start_up_removes_multipart_uploads_and_blobs_without_a_record(s3_server: S3Server, tmp_path: Path) -> None:
    async def body(services: list[UploadService]) -> None:
        storage = services[0].storage
        orphan = new_upload_id()
        await storage.allocate(orphan, 8 * MIB)  # a crash between the multipart upload and its record
        await storage.write(orphan, 0, body_of(os.urandom(MIB)))
        stray = new_upload_id()
        with storage.whole_buffer(10) as view:
            view[:] = b"0123456789"
            await storage.store_whole(stray, "x", view)  # a crash between a small upload and its record
        report = await Lifecycle(services[0], stale_after=3600).on_startup()
        assert report.partial_orphans and report.blob_orphans, report

    bucket = run(s3_server, tmp_path, body)
    assert all_keys(s3_server, bucket) == [] and not open_multiparts(s3_server, bucket)


def test_a_crash_between_sealing_and_recording_is_finished_at_start_up(s3_server: S3Server, tmp_path: Path) -> None:
    data = os.urandom(11 * MIB + 1)

    async def body(services: list[UploadService]) -> None:
        crashed, restarted = services  # the second: the process started after the first was killed
        upload = await crashed.create(new(len(data)))
        await crashed.storage.write(upload.id, 0, body_of(data))
        await crashed.meta.record_range(upload.id, 0, len(data))
        await crashed.meta.transition(upload.id, UploadState.COMPLETING, expect=UploadState.RECEIVING)
        await crashed.storage.seal(upload.id, len(data))  # killed here: completed in S3, not recorded
        report = await Lifecycle(restarted, stale_after=3600).on_startup()
        assert report.completed == 1
        done = await restarted.meta.get(upload.id)
        assert done.state is UploadState.COMPLETE and done.sha256 == hashlib.sha256(data).hexdigest()
        assert done.blob is not None
        assert b"".join([b async for b in restarted.storage.read(done.blob)]) == data

    bucket = run(s3_server, tmp_path, body, replicas=2)
    assert not open_multiparts(s3_server, bucket)
    assert [k for k in all_keys(s3_server, bucket) if "/uploads/" in k] == []


def test_the_running_sweep_removes_orphans_and_spares_live_uploads(s3_server: S3Server, tmp_path: Path) -> None:
    data = os.urandom(12 * MIB)
    half = len(data) // 2

    async def body(services: list[UploadService]) -> None:
        service = services[0]
        live = await service.create(new(len(data)))
        await send(service, live.id, data, 0, half)  # half received: a live upload
        orphan = new_upload_id()
        await service.storage.allocate(orphan, MIB)  # a replica killed before its record
        assert await Lifecycle(service, stale_after=3600).sweep_orphans() == 1
        assert await service.storage.partial_ids() == [live.id]
        await send(service, live.id, data, half, half)
        done = await service.meta.get(live.id)
        assert done.state is UploadState.COMPLETE and done.sha256 == hashlib.sha256(data).hexdigest()

    bucket = run(s3_server, tmp_path, body)
    assert not open_multiparts(s3_server, bucket)
