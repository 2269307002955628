"""Small uploads stored whole (``create_whole``) and the buffer writer under awkward offsets and bodies."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import functools
import gc
import hashlib
import os
import random
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.domain.model import BlobRef, Protocol, Upload, UploadState
from pyfiledrop.engine.lifecycle import Lifecycle
from pyfiledrop.engine.service import WHOLE_BUFFERS, WHOLE_MAX_BYTES, Chunk, Limits, NewUpload, UploadService
from pyfiledrop.errors import QuotaExceeded
from pyfiledrop.meta.sqlite import SQLiteMetadataStore
from pyfiledrop.storage.buffers import BUFFER_BYTES as POOL_BUFFER
from pyfiledrop.storage.buffers import POOL, BufferPool
from pyfiledrop.storage.local import LocalStorage
from pyfiledrop.workers import in_thread
from tests.socketlike import PumpingSocketLike, SocketLike


async def open_service(tmp_path: Path, *, fsync_chunks: bool = False, **limits: int) -> UploadService:
    storage = LocalStorage(tmp_path, tmp_path / ".partial", fsync_chunks=fsync_chunks, fsync_files=True)
    (tmp_path / ".partial").mkdir(exist_ok=True)
    meta = SQLiteMetadataStore(tmp_path / "db.sqlite3")
    await meta.open()
    return UploadService(storage, meta, Limits(1 << 30, **limits))


@contextlib.asynccontextmanager
async def service_at(tmp_path: Path, *, fsync_chunks: bool = False, **limits: int) -> AsyncIterator[UploadService]:
    service = await open_service(tmp_path, fsync_chunks=fsync_chunks, **limits)
    try:
        yield service
    finally:
        await service.meta.close()


def stored_files(tmp_path: Path) -> list[Path]:
    return sorted(p for p in tmp_path.iterdir() if p.is_file() and not p.name.startswith(("db.", ".")))


async def whole(service: UploadService, data: bytes, owner: str = "owner-1") -> Upload:
    new = NewUpload("small.bin", owner, len(data), Protocol.PUT)
    with service.whole_buffer(len(data)) as buffer:
        assert buffer is not None

        def fill_then(job: Callable[[], str]) -> str:  # as the server does: the thread that reads stores
            buffer[:] = data
            return job()

        return await service.create_whole(new, buffer, functools.partial(in_thread, fill_then))


def test_a_whole_small_upload_is_stored_hashed_and_recorded_at_once(tmp_path: Path) -> None:
    data = os.urandom(1_000_003)  # not a multiple of the page size: the tail goes through the page cache

    async def main() -> None:
        async with service_at(tmp_path) as service:
            done = await whole(service, data)
            record = await service.meta.get(done.id)
            assert record.state is UploadState.COMPLETE
            assert record.sha256 == hashlib.sha256(data).hexdigest()
            assert record.received.total == len(data) and record.offset == len(data)
            assert (tmp_path / (record.blob_key or "")).read_bytes() == data
            assert list((tmp_path / ".partial").iterdir()) == [], "no partial file is left behind"

    asyncio.run(main())


def test_the_same_bytes_twice_share_one_file(tmp_path: Path) -> None:
    data = os.urandom(300_000)

    async def main() -> None:
        async with service_at(tmp_path) as service:
            first, second = await whole(service, data), await whole(service, data, owner="owner-2")
            assert first.blob_key == second.blob_key
            assert len(stored_files(tmp_path)) == 1
            await service.terminate(first.id)
            assert len(stored_files(tmp_path)) == 1, "the other upload still refers to it"
            third = await whole(service, data)
            assert third.sha256 == second.sha256

    asyncio.run(main())


def test_a_twin_whose_file_is_gone_is_not_reused_and_the_check_runs_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(300_000)
    checked_in: list[str] = []

    async def main() -> None:
        async with service_at(tmp_path) as service:
            holds = service.storage.holds

            def watched(blob: BlobRef) -> bool:
                checked_in.append(threading.current_thread().name)
                return holds(blob)

            monkeypatch.setattr(service.storage, "holds", watched)
            first = await whole(service, data)
            (tmp_path / (first.blob_key or "")).unlink()  # lost outside pyfiledrop
            second = await whole(service, data)
            assert second.blob_key != first.blob_key
            assert (tmp_path / (second.blob_key or "")).read_bytes() == data
            third = await whole(service, data)
            assert third.blob_key == second.blob_key and len(stored_files(tmp_path)) == 1

    asyncio.run(main())
    assert checked_in and all(name.startswith("sqlite") for name in checked_in)


def test_a_whole_upload_over_the_quota_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    async def main() -> None:
        async with service_at(tmp_path, quota_bytes=500_000) as service:
            await whole(service, os.urandom(400_000))
            with pytest.raises(QuotaExceeded):
                await whole(service, os.urandom(200_000))
            assert len(stored_files(tmp_path)) == 1
            assert list((tmp_path / ".partial").iterdir()) == []

    asyncio.run(main())


def test_a_file_stored_but_never_recorded_is_removed_at_start_up(tmp_path: Path) -> None:
    """A crash between the rename and the record: the client had no answer and sends again; the file goes."""

    async def main() -> None:
        async with service_at(tmp_path) as service:
            with POOL.borrow() as buffer:
                view = memoryview(buffer)[:5000]
                view[:] = os.urandom(5000)
                await service.storage.store_whole(UploadId("A" * 24), "lost.bin", view)
            assert len(stored_files(tmp_path)) == 1
            report = await Lifecycle(service, 3600).on_startup()
            assert report.blob_orphans == 1
            assert stored_files(tmp_path) == []

    asyncio.run(main())


def test_the_buffer_budget_sends_big_or_too_many_bodies_to_the_streaming_path(tmp_path: Path) -> None:
    async def main() -> None:
        async with service_at(tmp_path) as service:
            with service.whole_buffer(WHOLE_MAX_BYTES + 1) as too_big:
                assert too_big is None
            held: list[memoryview | None] = []
            with contextlib.ExitStack() as stack:
                for _ in range(WHOLE_BUFFERS):
                    held.append(stack.enter_context(service.whole_buffer(1000)))
                assert all(b is not None for b in held)
                assert stack.enter_context(service.whole_buffer(1)) is None, "all allowed are held"
            with service.whole_buffer(1) as again:
                assert again is not None, "returned buffers make room again"

    asyncio.run(main())


async def in_pieces(data: bytes, rng: random.Random) -> AsyncIterator[bytes]:
    view = memoryview(data)
    while view:
        n = rng.randint(1, 300_000)
        yield bytes(view[:n])
        view = view[n:]
        await asyncio.sleep(0)


def test_a_file_system_that_refuses_o_direct_still_stores_whole_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As tmpfs before Linux 6.6: the create with O_DIRECT fails (after making the file); the page cache it is."""
    real_open = os.open
    refused = []

    def no_direct(path: str | Path, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if flags & os.O_DIRECT:
            if flags & os.O_CREAT:
                refused.append(path)
                os.close(real_open(path, flags & ~os.O_DIRECT, mode))  # the kernel creates it, then refuses
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, mode, dir_fd=dir_fd)

    async def main() -> None:
        async with service_at(tmp_path) as service:
            monkeypatch.setattr(os, "open", no_direct)
            first, second = os.urandom(64 << 10), os.urandom(8 << 10)  # whole pages both
            done = [await whole(service, first), await whole(service, second)]
            assert len(refused) == 1  # once known, the create is not tried with O_DIRECT again
            for upload, data in zip(done, (first, second), strict=True):
                assert upload.state is UploadState.COMPLETE
                assert (tmp_path / (upload.blob_key or "")).read_bytes() == data
            assert list((tmp_path / ".partial").iterdir()) == []

    asyncio.run(main())


@pytest.mark.parametrize("fsync_files", [True, False])
def test_a_whole_pages_body_is_written_synchronously_only_when_files_are_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync_files: bool
) -> None:
    real_open, real_fsync = os.open, os.fsync
    created: list[int] = []
    fsynced: list[int] = []

    def watching_open(path: str | Path, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if str(path).endswith(".part"):
            created.append(flags)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    def watching_fsync(fd: int) -> None:
        if os.path.isfile(f"/proc/self/fd/{fd}"):  # a file, not the folder
            fsynced.append(fd)
        real_fsync(fd)

    storage = LocalStorage(tmp_path, tmp_path / ".partial", fsync_chunks=False, fsync_files=fsync_files)
    (tmp_path / ".partial").mkdir()
    with POOL.borrow() as buffer:
        view = memoryview(buffer)[: 64 << 10]
        view[:] = os.urandom(len(view))
        monkeypatch.setattr(os, "open", watching_open)
        monkeypatch.setattr(os, "fsync", watching_fsync)
        stored = asyncio.run(storage.store_whole(UploadId("B" * 24), "x.bin", view))
        assert (tmp_path / stored.blob.key).read_bytes() == bytes(view)
        assert stored.sha256 == hashlib.sha256(view).hexdigest()
    assert len(created) == 1 and created[0] & os.O_DIRECT
    assert bool(created[0] & os.O_DSYNC) is fsync_files  # durable as the write returns, or left to the OS
    assert fsynced == []  # O_DSYNC made the fsync call needless


def test_a_refused_direct_write_goes_on_through_the_page_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_pwrite = os.pwrite
    refused = []

    def picky(fd: int, data: memoryview, offset: int) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            refused.append(offset)
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, data, offset)

    async def main() -> None:
        async with service_at(tmp_path) as service:
            monkeypatch.setattr(os, "pwrite", picky)
            data = os.urandom(1 << 20)
            upload = await whole(service, data)
            assert refused == [0]
            assert (tmp_path / (upload.blob_key or "")).read_bytes() == data
            assert upload.sha256 == hashlib.sha256(data).hexdigest()

    asyncio.run(main())


def test_the_storage_folder_is_opened_once_for_its_fsyncs_and_closed_with_the_storage(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not Path("/proc/self/fd").exists():
        pytest.skip("needs /proc")
    real_open = os.open
    folder_opens = []

    def counting(path: str | Path, flags: int, mode: int = 0o777, *, dir_fd: int | None = None) -> int:
        if Path(path) == tmp_path:
            folder_opens.append(flags)
        return real_open(path, flags, mode, dir_fd=dir_fd)

    async def main() -> int:
        async with service_at(tmp_path, fsync_chunks=True) as service:  # --durability chunk: names are fsynced
            monkeypatch.setattr(os, "open", counting)
            await whole(service, os.urandom(5000))  # the database opens its log files with the first write
            before = len(os.listdir("/proc/self/fd"))
            for _ in range(10):
                await whole(service, os.urandom(5000))
            assert len(folder_opens) == 1  # for the folder's fsync after each rename: once, not per file
            assert len(os.listdir("/proc/self/fd")) == before
            storage = service.storage
            assert isinstance(storage, LocalStorage)
            return storage.files._storage_dir_fd()

    fd = asyncio.run(main())
    gc.collect()
    with contextlib.suppress(OSError):  # closed, or the number reused for something else: not our folder
        assert os.readlink(f"/proc/self/fd/{fd}") != str(tmp_path)


def test_with_durability_file_a_whole_file_is_renamed_without_a_folder_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bytes are durable (O_DSYNC) before the rename; the name is left to the journal (see ``refinalize``)."""
    real_fsync = os.fsync
    fsynced: list[str] = []

    def watching(fd: int) -> None:
        fsynced.append(os.readlink(f"/proc/self/fd/{fd}") if Path("/proc/self/fd").exists() else str(fd))
        real_fsync(fd)

    async def main() -> None:
        async with service_at(tmp_path) as service:
            await whole(service, os.urandom(5000))  # the database's first write may fsync its own files
            monkeypatch.setattr(os, "fsync", watching)
            await whole(service, os.urandom(8192))
            assert str(tmp_path) not in fsynced

    asyncio.run(main())


def test_a_finished_file_whose_rename_was_lost_is_checked_and_renamed_at_start_up(tmp_path: Path) -> None:
    """Power lost after the record reached the disk but before the rename did: the bytes are under the partial
    name. Start-up renames them if their sha256 is the record's; bytes that differ are not taken for the file."""

    async def main() -> None:
        async with service_at(tmp_path) as service:
            good, bad = await whole(service, os.urandom(70_000)), await whole(service, os.urandom(9000))
            for upload in (good, bad):  # as if the renames had never reached the disk
                (tmp_path / (upload.blob_key or "")).replace(tmp_path / ".partial" / f"{upload.id}.part")
            damaged = tmp_path / ".partial" / f"{bad.id}.part"
            damaged.write_bytes(b"x" * 9000)
            report = await Lifecycle(service, 3600).on_startup()
            assert report.renamed == 1
            assert report.partial_orphans == 1  # the damaged one: not taken, removed
            content = (tmp_path / (good.blob_key or "")).read_bytes()
            assert hashlib.sha256(content).hexdigest() == good.sha256
            assert not (tmp_path / (bad.blob_key or "")).exists() and not damaged.exists()
            assert (await Lifecycle(service, 3600).on_startup()).renamed == 0  # done once

    asyncio.run(main())


def test_the_pool_keeps_a_burst_of_buffers_warm_and_gives_them_back_once_idle() -> None:
    pool = BufferPool(keep_busy=6, keep_idle=2, idle_after_s=30.0)
    with contextlib.ExitStack() as burst:
        held = [burst.enter_context(pool.borrow()) for _ in range(8)]
        for buffer in held:
            buffer[:4096] = os.urandom(4096)
    assert pool.free == 6  # two over keep_busy were unmapped at once
    again = []
    with contextlib.ExitStack() as second:
        again = [second.enter_context(pool.borrow()) for _ in range(6)]
        assert all(buffer in held for buffer in again)  # the warm ones: no fresh mapping, no page faults
    assert not any(buffer.closed for buffer in again)
    busy_at = time.monotonic()
    assert pool.trim(busy_at + 10) == 0  # the burst was just now: keep them
    assert pool.free == 6
    assert pool.trim(busy_at + 31) == 4
    assert pool.free == 2
    assert sum(buffer.closed for buffer in again) == 4
    with pool.borrow(), pool.borrow():  # at most keep_idle at once is not a burst: trim takes nothing more
        pass
    assert pool.trim(time.monotonic() + 31) == 0 and pool.free == 2


@pytest.mark.parametrize("chunk_size", [1_000_000, 4 << 20, 3 * 4096 + 17])
@pytest.mark.parametrize("body_kind", ["pieces", "fillable", "pumping"])
def test_parallel_chunks_at_unaligned_offsets_give_the_exact_file(
    tmp_path: Path, chunk_size: int, body_kind: str
) -> None:
    """O_DIRECT for whole pages, the page cache for the partial pages where two chunks meet: written in
    parallel and out of order, with bodies that come in odd sizes, the file and its sha256 are exact."""
    rng = random.Random(f"{chunk_size}-{body_kind}")
    data = os.urandom(9_500_001)

    async def main() -> None:
        async with service_at(tmp_path) as service:
            upload = await service.create(NewUpload("f.bin", "o", len(data), Protocol.DROPZONE))
            offsets = list(range(0, len(data), chunk_size))
            rng.shuffle(offsets)

            async def send(offset: int) -> Upload:
                piece = data[offset : offset + chunk_size]
                sizes = (1, 4096, 65_536, 700_000)
                body = {"pieces": lambda: in_pieces(piece, rng), "fillable": lambda: SocketLike(piece, rng, sizes),
                        "pumping": lambda: PumpingSocketLike(piece, rng, sizes)}[body_kind]()  # fmt: skip
                return await service.write(upload.id, Chunk(offset, body, len(piece), all_or_nothing=True))

            for start in range(0, len(offsets), 4):
                await asyncio.gather(*(send(o) for o in offsets[start : start + 4]))
            done = await service.meta.get(upload.id)
            assert done.state is UploadState.COMPLETE
            assert done.sha256 == hashlib.sha256(data).hexdigest()
            assert (tmp_path / (done.blob_key or "")).read_bytes() == data

    asyncio.run(main())


@pytest.mark.parametrize("size", [5 << 20, (9 << 20) + 5])
@pytest.mark.parametrize("body_kind", [SocketLike, PumpingSocketLike])
def test_an_unexpected_write_error_gives_the_hasher_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body_kind: type[SocketLike], size: int
) -> None:
    """EIO in the middle of a write: the error goes up, and the whole-file hasher is not left claimed by the write
    (else the next write could not hash inline and completion would wait for it). A pumping body meets the error
    in its reading thread, which stops; the event loop raises it. With more body behind the failed buffer, writing
    stops at the failure."""
    import errno

    from pyfiledrop.storage import writer

    data = os.urandom(size)
    real = writer.write_span
    calls = 0

    def failing_span(*args: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError(errno.EIO, "I/O error")
        real(*args)  # type: ignore[arg-type]

    async def main() -> None:
        async with service_at(tmp_path) as service:
            upload = await service.create(NewUpload("eio.bin", "owner-1", len(data), Protocol.TUS))
            monkeypatch.setattr(writer, "write_span", failing_span)
            with pytest.raises(OSError):
                await service.write(upload.id, Chunk(0, body_kind(data, random.Random(3), (1 << 20,))))
            monkeypatch.setattr(writer, "write_span", real)
            assert not service._hashes._states[upload.id].busy, "the hasher was given back"
            kept = (await service.meta.get(upload.id)).offset
            rest = body_kind(data[kept:], random.Random(4), (1 << 20,))
            done = await asyncio.wait_for(service.write(upload.id, Chunk(kept, rest, exact_offset=True)), 20)
            assert done.sha256 == hashlib.sha256(data).hexdigest()

    asyncio.run(main())


@pytest.mark.parametrize("body_kind", [SocketLike, PumpingSocketLike])
def test_a_long_request_checkpoints_what_reached_the_file_as_it_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body_kind: type[SocketLike]
) -> None:
    """Checkpoints (once a second; here at every buffer) record only bytes already written, in order — also when
    the body pumps itself in a worker thread and must hand back to the event loop for each one."""
    from pyfiledrop.storage import writer

    monkeypatch.setattr(writer, "_PROGRESS_EVERY", 0.0)
    data = os.urandom((7 << 20) + 123)

    async def main() -> None:
        async with service_at(tmp_path) as service:
            upload = await service.create(NewUpload("cp.bin", "owner-1", len(data), Protocol.TUS))
            recorded: list[int] = []
            real = service.meta.record_range

            async def record(upload_id: UploadId, start: int, end: int) -> Upload:
                part = (tmp_path / ".partial" / f"{upload_id}.part").read_bytes()
                assert part[:end] == data[:end], "a checkpoint came before its bytes were in the file"
                recorded.append(end)
                return await real(upload_id, start, end)

            monkeypatch.setattr(service.meta, "record_range", record)
            body = body_kind(data, random.Random(5), (65_536, 1 << 20, 3 << 20))
            done = await service.write(upload.id, Chunk(0, body, exact_offset=True))
            assert done.sha256 == hashlib.sha256(data).hexdigest()
            assert recorded == sorted(recorded) and len(recorded) >= 3, recorded
            assert all(end % POOL_BUFFER == 0 for end in recorded[:-1]), recorded
            assert recorded[-1] == len(data)

    asyncio.run(main())
