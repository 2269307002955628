"""Claims across real processes (engine/claims.py): what one process holds another cannot take, a SIGKILL frees
it, and start-up recovery and the sweep leave alone what a live process (another replica) works on."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import sqlite3
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyfiledrop.domain.model import Protocol, UploadState
from pyfiledrop.engine.claims import FileClaims, holding
from pyfiledrop.engine.lifecycle import Lifecycle
from pyfiledrop.engine.service import Chunk, Limits, NewUpload, UploadService
from pyfiledrop.errors import UploadLocked
from pyfiledrop.meta.sqlite import SQLiteMetadataStore
from pyfiledrop.storage.local import LocalStorage
from tests.engine.test_service import pieces
from tests.holders import holders

_HOLDER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from pyfiledrop.engine.claims import FileClaims

    async def main() -> None:
        claims = FileClaims(Path(sys.argv[1]))
        await claims.begin()
        await claims.started()
        for key in sys.argv[2:]:
            assert await claims.take(key), key
        print("holding", flush=True)
        await asyncio.sleep(60)

    asyncio.run(main())
""")


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Started by ``hold(*keys)``: another process, live, holding the given claims on tmp_path/claims."""
    yield from holders(_HOLDER, str(tmp_path / "claims"))


def test_a_claim_held_by_another_process_is_refused_until_that_process_is_killed(
    tmp_path: Path, holder: Callable[..., subprocess.Popen[str]]
) -> None:
    process = holder("upload-1")

    async def main() -> None:
        claims = FileClaims(tmp_path / "claims")
        try:
            assert await claims.begin() is False  # another process is live
            await claims.started()
            assert not await claims.alone()
            assert not await claims.take("upload-1")
            assert await claims.take("upload-2")  # other keys are free
            assert not await claims.take("upload-2")  # and a key held here is not taken twice
            with pytest.raises(UploadLocked):
                async with holding(claims, "upload-1", 0.2, "upload-1"):
                    pass
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
            assert await claims.take("upload-1")  # the kernel dropped the dead process's locks
            assert await claims.alone()
            await claims.give_back("upload-1")
            await claims.give_back("upload-2")
        finally:
            claims.close()

    asyncio.run(main())


def _service(tmp_path: Path, claims: FileClaims) -> tuple[UploadService, SQLiteMetadataStore]:
    (tmp_path / ".partial").mkdir(exist_ok=True)
    storage = LocalStorage(tmp_path, tmp_path / ".partial", fsync_chunks=False, fsync_files=False)
    meta = SQLiteMetadataStore(tmp_path / "db.sqlite3")
    return UploadService(storage, meta, Limits(1 << 30), claims=claims), meta


def test_start_up_leaves_a_live_replicas_completion_and_fresh_files_alone(
    tmp_path: Path, holder: Callable[..., subprocess.Popen[str]]
) -> None:
    """An upload ``completing`` whose claim another live process holds is not resumed at start-up; a partial file
    without a record (another replica may be creating that upload right now) is not removed at start-up, only by
    the next sweep (a minute later in the server) if it still has no record then. Once that process is dead, the
    completion is resumed by a start-up."""

    async def prepare() -> str:
        service, meta = _service(tmp_path, FileClaims(tmp_path / "claims"))
        await meta.open()
        try:
            created = await service.create(NewUpload("f.bin", "o", 4, Protocol.TUS))
            await meta.record_range(created.id, 0, 4)
            await meta.transition(created.id, UploadState.COMPLETING, expect=UploadState.RECEIVING)
            (tmp_path / ".partial" / f"{'x' * 24}.part").write_bytes(b"")  # an id shape with no record
            return created.id
        finally:
            await meta.close()
            service.claims.close()

    upload_id = asyncio.run(prepare())
    (tmp_path / ".partial" / f"{upload_id}.part").write_bytes(b"abcd")
    process = holder(upload_id)

    async def start(sweeps: int) -> tuple[UploadState, bool]:
        service, meta = _service(tmp_path, FileClaims(tmp_path / "claims"))
        await meta.open()
        try:
            lifecycle = Lifecycle(service, stale_after=3600)
            await lifecycle.on_startup()
            for _ in range(sweeps):
                await lifecycle.sweep()
            upload = await meta.get(upload_id)  # type: ignore[arg-type]
            return upload.state, (tmp_path / ".partial" / f"{'x' * 24}.part").exists()
        finally:
            await meta.close()
            service.claims.close()

    assert asyncio.run(start(sweeps=0)) == (UploadState.COMPLETING, True)
    assert asyncio.run(start(sweeps=1)) == (UploadState.COMPLETING, False)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
    state, _ = asyncio.run(start(sweeps=0))
    assert state is UploadState.COMPLETE


def test_two_services_on_one_store_share_an_upload_like_two_replicas(tmp_path: Path) -> None:
    """Two engines on the same folder and database, as two replicas: A receives the first half in order (and
    hashes it as it passes), B the second half and completes the upload — B never saw the first half, so it reads
    it back for the sha256, which is right. A's sweep then forgets the hash state it kept for an upload it will
    never complete."""
    data = os.urandom(3_000_000)
    half = len(data) // 2

    async def main() -> None:
        (tmp_path / ".partial").mkdir()
        stores = []
        for _ in range(2):
            storage = LocalStorage(tmp_path, tmp_path / ".partial", fsync_chunks=False, fsync_files=False)
            meta = SQLiteMetadataStore(tmp_path / "db.sqlite3")
            await meta.open()
            stores.append((UploadService(storage, meta, Limits(1 << 30)), meta))
        (a, meta_a), (b, meta_b) = stores
        try:
            created = await a.create(NewUpload("f.bin", "o", len(data), Protocol.TUS))
            await a.write(created.id, Chunk(0, pieces(data[:half]), half, exact_offset=True))
            assert a._hashes.held() == [created.id]  # the prefix hash A made while the bytes passed
            done = await b.write(created.id, Chunk(half, pieces(data[half:]), len(data) - half, exact_offset=True))
            assert done.state is UploadState.COMPLETE
            assert done.sha256 == hashlib.sha256(data).hexdigest()
            await Lifecycle(a, stale_after=3600).sweep()
            assert a._hashes.held() == []
        finally:
            await meta_a.close()
            await meta_b.close()

    asyncio.run(main())


def test_video_jobs_of_a_live_replica_are_not_failed_at_start_up(
    tmp_path: Path, holder: Callable[..., subprocess.Popen[str]]
) -> None:
    """Start-up marks unfinished video jobs failed and empties the scratch folder — only when alone: with another
    replica live they are its jobs, running. Once alone, it cleans up as before."""
    from pyfiledrop.meta.jobs import Job, JobStatus, JobStore
    from pyfiledrop.video.jobs import VideoJobs

    scratch = tmp_path / ".partial" / "video-jobs"

    async def start() -> tuple[JobStatus, bool]:
        claims = FileClaims(tmp_path / "claims")
        service, meta = _service(tmp_path, claims)
        await meta.open()
        store = JobStore(meta)
        try:
            with contextlib.suppress(sqlite3.IntegrityError):  # made by the first start
                await store.insert(Job("job-1", "o", "u", {"op": "rotate", "degrees": 90}, JobStatus.RUNNING))
            scratch.mkdir(parents=True, exist_ok=True)
            (scratch / "job-1.mp4").touch(exist_ok=True)
            jobs = VideoJobs(service, store, scratch, 1)
            await jobs.open()
            await jobs.close()
            return (await store.get("job-1")).status, (scratch / "job-1.mp4").exists()
        finally:
            await meta.close()
            claims.close()

    process = holder()
    assert asyncio.run(start()) == (JobStatus.RUNNING, True)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)
    assert asyncio.run(start()) == (JobStatus.FAILED, False)
