"""Local disk: one sparse file per upload, positional writes, atomic rename when complete.

Partial data: ``{chunks}/{upload_id}.part``. Finished files: ``{storage}/{upload_id}_{safe name}``
(the seed's ``{uuid}_{name}`` layout, with an unguessable id).
"""

from __future__ import annotations

import asyncio
import errno
import mmap
import os
import re
import shutil
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from pathlib import Path

from pyfiledrop.engine.ids import UploadId, is_upload_id
from pyfiledrop.engine.model import BlobRef
from pyfiledrop.engine.names import storage_name
from pyfiledrop.errors import StorageFull
from pyfiledrop.storage.base import BatchObserver, Capability, Fillable, ProgressCallback, WriteProgress
from pyfiledrop.storage.buffers import BUFFER_BYTES, POOL

_BATCH_BYTES = 4 << 20  # hand the writer thread ~4 MiB at a time: few thread hops, little memory
_BATCH_PIECES = 512  # below IOV_MAX (1024)
_READ_BLOCK = 1 << 20
_BLOB_NAME = re.compile(r"[A-Za-z0-9_-]{24}_.+")
_ALIGN = 4096  # O_DIRECT: buffer address, length and file offset are multiples of this
_PROGRESS_EVERY = 1.0  # seconds between checkpoints of a long request: a crash loses at most this much


class LocalStorage:
    capabilities = frozenset(Capability)

    def __init__(self, storage_dir: Path, chunks_dir: Path, *, fsync_chunks: bool, fsync_files: bool) -> None:
        self.storage_dir = storage_dir
        self.chunks_dir = chunks_dir
        self.fsync_chunks = fsync_chunks  # before a chunk is acknowledged: survives power loss
        self.fsync_files = fsync_files  # before a finished file is renamed into place

    def _partial(self, upload_id: UploadId) -> Path:
        return self.chunks_dir / f"{upload_id}.part"

    def _blob_path(self, blob: BlobRef) -> Path:
        return self.storage_dir / blob.key

    async def allocate(self, upload_id: UploadId, size: int | None) -> None:
        await asyncio.to_thread(self._allocate, upload_id, size)

    def _allocate(self, upload_id: UploadId, size: int | None) -> None:
        fd = os.open(self._partial(upload_id), os.O_WRONLY | os.O_CREAT, 0o666)
        try:
            if size:
                os.ftruncate(fd, size)  # sparse: chunks land at their offsets in any order
        except OSError as exc:
            _raise_if_full(exc)
            raise
        finally:
            os.close(fd)

    async def write(
        self,
        upload_id: UploadId,
        offset: int,
        body: AsyncIterator[bytes],
        observe: BatchObserver | None = None,
        checkpoint: ProgressCallback | None = None,
        progress: WriteProgress | None = None,
    ) -> int:
        try:
            fd = os.open(self._partial(upload_id), os.O_WRONLY)
        except FileNotFoundError:
            fd = os.open(self._partial(upload_id), os.O_WRONLY | os.O_CREAT, 0o666)
        # O_DIRECT only for bytes hashed as they pass (observe): others are read back soon, best from the page cache.
        direct_fd = _open_direct(self._partial(upload_id)) if observe is not None and offset % _ALIGN == 0 else None
        try:
            progress = progress or WriteProgress()
            writer = (
                _PipelinedWriter(fd, offset, observe, progress, self.fsync_chunks)
                if direct_fd is None and not isinstance(body, Fillable)
                else _BufferWriter(fd, direct_fd, offset, observe, progress, self.fsync_chunks)
            )
            return await writer.run(body, checkpoint)
        finally:
            os.close(fd)
            if direct_fd is not None:
                os.close(direct_fd)

    async def read_partial(self, upload_id: UploadId, start: int, end: int) -> AsyncGenerator[bytes, None]:
        async for block in _read_file(self._partial(upload_id), start, end):
            yield block

    async def concat(self, upload_id: UploadId, parts: Sequence[tuple[UploadId, int]]) -> None:
        await asyncio.to_thread(self._concat, upload_id, parts)

    def _concat(self, upload_id: UploadId, parts: Sequence[tuple[UploadId, int]]) -> None:
        with self._partial(upload_id).open("r+b") as out:
            position = 0
            for part_id, size in parts:
                with self._partial(part_id).open("rb") as src:
                    _copy_range(src.fileno(), out.fileno(), position, size)
                position += size
            if self.fsync_files:
                os.fdatasync(out.fileno())

    async def finalize(self, upload_id: UploadId, filename: str, size: int) -> BlobRef:
        blob = self._final_ref(upload_id, filename, size)
        await asyncio.to_thread(self._finalize, upload_id, blob)
        return blob

    @staticmethod
    def _final_ref(upload_id: UploadId, filename: str, size: int) -> BlobRef:
        return BlobRef(f"{upload_id}_{storage_name(filename)}", size)

    def _finalize(self, upload_id: UploadId, blob: BlobRef) -> None:
        partial, final = self._partial(upload_id), self._blob_path(blob)
        if not partial.exists() and final.exists():
            return  # a crash after the rename: already done
        with partial.open("r+b") as handle:
            handle.truncate(blob.size)  # a deferred-length upload may have been allocated larger
            if self.fsync_files:
                os.fsync(handle.fileno())
        self._publish(partial, final)

    def _publish(self, partial: Path, final: Path) -> None:
        """The rename that makes a finished file visible, whole or not at all."""
        try:
            partial.replace(final)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                _raise_if_full(exc)
                raise
            _copy_across_devices(partial, final)
        if self.fsync_files:
            _fsync_dir(final.parent)

    async def store_whole(self, upload_id: UploadId, filename: str, data: memoryview,
                          observe: Callable[[memoryview], None]) -> BlobRef:  # fmt: skip
        blob = self._final_ref(upload_id, filename, len(data))
        await asyncio.to_thread(self._store_whole, upload_id, blob, data, observe)
        return blob

    def _store_whole(
        self, upload_id: UploadId, blob: BlobRef, data: memoryview, observe: Callable[[memoryview], None]
    ) -> None:
        observe(data)
        partial = self._partial(upload_id)
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        direct_fd = _open_direct(partial)  # the buffer is page-aligned: the bytes skip the page cache
        try:
            _write_direct(fd, direct_fd, 0, data)
            if self.fsync_files:
                os.fsync(fd)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        finally:
            os.close(fd)
            if direct_fd is not None:
                os.close(direct_fd)
        self._publish(self._partial(upload_id), self._blob_path(blob))

    async def unfinalize(self, upload_id: UploadId, filename: str) -> None:
        partial, final = self._partial(upload_id), self._blob_path(self._final_ref(upload_id, filename, 0))
        if not partial.exists() and final.exists():
            await asyncio.to_thread(final.replace, partial)

    async def read(self, blob: BlobRef, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        async for block in _read_file(self._blob_path(blob), start, blob.size if end is None else end):
            yield block

    def local_path(self, blob: BlobRef) -> Path | None:
        return self._blob_path(blob)

    async def discard(self, upload_id: UploadId) -> None:
        self._partial(upload_id).unlink(missing_ok=True)

    async def delete_blob(self, blob: BlobRef) -> None:
        self._blob_path(blob).unlink(missing_ok=True)

    async def delete_blob_key(self, key: str) -> None:
        if _BLOB_NAME.fullmatch(key):
            (self.storage_dir / key).unlink(missing_ok=True)

    async def exists(self, blob: BlobRef) -> bool:
        try:
            return self._blob_path(blob).stat().st_size == blob.size
        except FileNotFoundError:
            return False

    async def partial_ids(self) -> Sequence[UploadId]:
        return [UploadId(p.name.removesuffix(".part")) for p in self.chunks_dir.glob("*.part") if is_upload_id(p.stem)]

    async def blob_keys(self) -> Sequence[str]:
        # Only names this backend makes (`<24-character id>_<name>`): other files in the folder are not ours.
        return [p.name for p in self.storage_dir.iterdir() if _BLOB_NAME.fullmatch(p.name) and p.is_file()]

    def free_bytes(self) -> int | None:
        return shutil.disk_usage(self.chunks_dir).free

    def usage(self) -> dict[str, int]:
        disk = shutil.disk_usage(self.storage_dir)
        partial = sum(p.stat().st_blocks * 512 for p in self.chunks_dir.glob("*.part"))
        return {"disk_total": disk.total, "disk_free": disk.free, "partial_bytes_on_disk": partial}


class _PipelinedWriter:
    """Receive batch n+1 while batch n is written and, at the same time in another thread, hashed."""

    def __init__(
        self, fd: int, offset: int, observe: BatchObserver | None, progress: WriteProgress, sync: bool
    ) -> None:
        self.fd = fd
        self.offset = offset
        self.position = offset  # where the next batch goes
        self.observe = observe
        self.progress = progress
        self.sync = sync
        self.in_flight: list[asyncio.Future[None]] = []
        self.in_flight_bytes = 0

    async def run(self, body: AsyncIterator[bytes], checkpoint: ProgressCallback | None) -> int:
        loop = asyncio.get_running_loop()
        batch: list[bytes] = []
        batch_bytes = 0
        reported = loop.time()
        try:
            try:
                async for piece in body:
                    batch.append(piece)
                    batch_bytes += len(piece)
                    if batch_bytes >= _BATCH_BYTES or len(batch) >= _BATCH_PIECES:
                        await self._finish_in_flight()
                        if checkpoint is not None and loop.time() - reported >= _PROGRESS_EVERY:
                            await self._checkpoint(checkpoint)
                            reported = loop.time()
                        self._start(batch, batch_bytes)
                        batch, batch_bytes = [], 0
            except Exception:
                # The sender went away or stalled: what did arrive is written, the caller decides what to keep.
                await self._finish_in_flight()
                if batch:
                    self._start(batch, batch_bytes)
                    await self._finish_in_flight()
                if self.sync:
                    await loop.run_in_executor(None, os.fdatasync, self.fd)
                raise
            await self._finish_in_flight()
            if batch:
                self._start(batch, batch_bytes)
                await self._finish_in_flight()
            if self.sync and self.position > self.offset:
                await loop.run_in_executor(None, os.fdatasync, self.fd)
        finally:
            await _settle(self.in_flight)  # never close the fd under a running write
        return self.position - self.offset

    def _start(self, batch: list[bytes], size: int) -> None:
        loop = asyncio.get_running_loop()
        self.in_flight = [loop.run_in_executor(None, _write_batch, self.fd, self.position, batch)]
        if self.observe is not None:
            self.in_flight.append(loop.run_in_executor(None, self.observe, batch))
        self.in_flight_bytes = size
        self.position += size

    async def _finish_in_flight(self) -> None:
        if not self.in_flight:
            return
        done, _ = await asyncio.wait(self.in_flight)  # both the write and the hash, even if one fails
        self.in_flight = []
        for future in done:
            future.result()
        self.progress.written += self.in_flight_bytes

    async def _checkpoint(self, checkpoint: ProgressCallback) -> None:
        if self.sync:  # a checkpoint is an acknowledgement: as durable as one
            await asyncio.get_running_loop().run_in_executor(None, os.fdatasync, self.fd)
        await checkpoint(self.progress.written)


class _BufferWriter(_PipelinedWriter):
    """The body lands in two reused, page-aligned buffers; while one fills, the other is written (in one thread)
    and hashed (in another). A body that can fill buffers itself (``Fillable``: pyfiledrop's own server reads
    the socket straight into them) costs one copy in all; others are copied in piece by piece.

    With ``direct_fd`` the buffers are written with O_DIRECT and never enter the page cache: no fresh page per
    4 KiB to allocate and fill (the largest kernel cost of the buffered path, and a very variable one in a VM),
    no dirty pages left for the fsync at completion. A tail shorter than a block goes through the plain fd."""

    def __init__(self, fd: int, direct_fd: int | None, offset: int, observe: BatchObserver | None,
                 progress: WriteProgress, sync: bool) -> None:  # fmt: skip
        super().__init__(fd, offset, observe, progress, sync)
        self.direct_fd = direct_fd
        self.buffers: list[mmap.mmap] = []
        self.current = 0
        self.fill = 0

    async def run(self, body: AsyncIterator[bytes], checkpoint: ProgressCallback | None) -> int:
        loop = asyncio.get_running_loop()
        self.reported = loop.time()
        with POOL.borrow() as first, POOL.borrow() as second:
            self.buffers = [first, second]
            try:
                return await self._run(body, checkpoint)
            finally:
                self.buffers = []

    async def _run(self, body: AsyncIterator[bytes], checkpoint: ProgressCallback | None) -> int:
        loop = asyncio.get_running_loop()
        try:
            try:
                if isinstance(body, Fillable):
                    await self._fill_from(body, checkpoint)
                else:
                    await self._copy_from(body, checkpoint)
            except Exception:
                # The sender went away or stalled: what did arrive is written, the caller decides what to keep.
                await self._flush()
                if self.sync:
                    await loop.run_in_executor(None, os.fdatasync, self.fd)
                raise
            await self._flush()
            if self.sync and self.position > self.offset:
                await loop.run_in_executor(None, os.fdatasync, self.fd)
        finally:
            await _settle(self.in_flight)  # never reuse a buffer or close the fd under a running write
        return self.position - self.offset

    async def _fill_from(self, body: Fillable, checkpoint: ProgressCallback | None) -> None:
        while True:
            view = memoryview(self.buffers[self.current])
            n = await body.readinto(view[self.fill :])  # while the other buffer is written and hashed
            if n == 0:
                return
            self.fill += n
            if self.fill == BUFFER_BYTES:
                await self._swap(checkpoint)

    async def _copy_from(self, body: AsyncIterator[bytes], checkpoint: ProgressCallback | None) -> None:
        async for piece in body:
            view = memoryview(piece)
            while view:
                take = min(len(view), BUFFER_BYTES - self.fill)
                self.buffers[self.current][self.fill : self.fill + take] = view[:take]
                self.fill += take
                view = view[take:]
                if self.fill == BUFFER_BYTES:
                    await self._swap(checkpoint)

    async def _swap(self, checkpoint: ProgressCallback | None) -> None:
        """The current buffer is full: wait for the other one to be free, start this one, fill the other."""
        await self._finish_in_flight()
        loop = asyncio.get_running_loop()
        if checkpoint is not None and loop.time() - self.reported >= _PROGRESS_EVERY:
            await self._checkpoint(checkpoint)
            self.reported = loop.time()
        self._start_buffer(self.buffers[self.current], self.fill)
        self.current, self.fill = self.current ^ 1, 0

    async def _flush(self) -> None:
        await self._finish_in_flight()
        if self.fill:
            self._start_buffer(self.buffers[self.current], self.fill)
            self.fill = 0
            await self._finish_in_flight()

    def _start_buffer(self, buffer: mmap.mmap, size: int) -> None:
        loop = asyncio.get_running_loop()
        data = memoryview(buffer)[:size]
        self.in_flight = [loop.run_in_executor(None, _write_direct, self.fd, self.direct_fd, self.position, data)]
        if self.observe is not None:
            batch: list[bytes] = [data]  # type: ignore[list-item]  # hashers take any buffer
            self.in_flight.append(loop.run_in_executor(None, self.observe, batch))
        self.in_flight_bytes = size
        self.position += size


async def _settle(futures: Sequence[asyncio.Future[None]]) -> None:
    """Wait until worker-thread jobs are over, even through cancellation (then re-raised): their buffers and file
    descriptors must not be reused or closed under them."""
    cancelled = False
    while not all(future.done() for future in futures):
        try:
            await asyncio.shield(asyncio.wait(futures))
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


def _open_direct(path: Path) -> int | None:
    if not hasattr(os, "O_DIRECT"):
        return None
    try:
        return os.open(path, os.O_WRONLY | os.O_DIRECT)
    except OSError:  # a file system without O_DIRECT (tmpfs, some FUSE ones): the buffered path
        return None


def _write_direct(fd: int, direct_fd: int | None, position: int, data: memoryview) -> None:
    aligned = len(data) // _ALIGN * _ALIGN
    done = 0
    try:
        while direct_fd is not None and done < aligned:
            try:
                done += os.pwrite(direct_fd, data[done:aligned], position + done)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                break  # the file system opened it with O_DIRECT but refuses the write: the plain fd does the rest
        buffered_from = done
        while done < len(data):
            done += os.pwrite(fd, data[done:], position + done)
    except OSError as exc:
        _raise_if_full(exc)
        raise
    _start_writeback(fd, position + buffered_from, len(data) - buffered_from)


def _write_batch(fd: int, position: int, batch: list[bytes]) -> None:
    start = position
    try:
        pending: list[bytes | memoryview] = list(batch)
        while pending:
            written = os.pwritev(fd, pending, position)
            position += written
            while pending and written >= len(pending[0]):
                written -= len(pending.pop(0))
            if written:
                pending[0] = memoryview(pending[0])[written:]
    except OSError as exc:
        _raise_if_full(exc)
        raise
    _start_writeback(fd, start, position - start)  # the fsync at completion then finds little left to do


def _writeback_starter() -> Callable[[int, int, int], None]:
    """``sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE)``: start writing a range to disk now, without
    waiting. Linux only (not in ``os``); elsewhere a no-op, and the kernel's own writeback does it later."""

    def nothing(fd: int, offset: int, count: int) -> None:
        pass

    if not sys.platform.startswith("linux"):
        return nothing
    import ctypes

    try:
        call = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return nothing
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    call.restype = ctypes.c_int

    def start(fd: int, offset: int, count: int) -> None:
        if count > 0:
            call(fd, offset, count, 2)  # SYNC_FILE_RANGE_WRITE; a failure only means no head start

    return start


_start_writeback = _writeback_starter()


async def _read_file(path: Path, start: int, end: int) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        position = start
        while position < end:
            block = await asyncio.to_thread(os.pread, handle.fileno(), min(_READ_BLOCK, end - position), position)
            if not block:
                return
            position += len(block)
            yield block
    finally:
        handle.close()


def _copy_range(src: int, dst: int, dst_offset: int, size: int) -> None:
    copied = 0
    while copied < size:
        n = os.copy_file_range(src, dst, size - copied, copied, dst_offset + copied)
        if n == 0:
            raise OSError(errno.EIO, "part is shorter than recorded")
        copied += n


def _copy_across_devices(partial: Path, final: Path) -> None:
    temporary = final.with_name(final.name + ".incoming")
    shutil.copyfile(partial, temporary)
    with temporary.open("rb") as handle:
        os.fsync(handle.fileno())
    temporary.replace(final)
    partial.unlink()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _raise_if_full(exc: OSError) -> None:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise StorageFull() from exc
