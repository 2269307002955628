"""Local disk: one sparse file per upload, positional writes, atomic rename when complete.

Partial data: ``{chunks}/{upload_id}.part``. Finished files: ``{storage}/{upload_id}_{safe name}``
(the seed's ``{uuid}_{name}`` layout, with an unguessable id).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import mmap
import os
import re
import shutil
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pyfiledrop.domain.ids import UploadId, is_upload_id
from pyfiledrop.domain.model import BlobRef
from pyfiledrop.domain.names import storage_name
from pyfiledrop.storage.base import (
    BatchObserver,
    BlockObserver,
    Capability,
    Lender,
    ProgressCallback,
    ScanEnd,
    Stored,
    ThreadRunner,
    WriteProgress,
)
from pyfiledrop.storage.buffers import POOL
from pyfiledrop.storage.files import open_direct, raise_if_full, release_range, write_span
from pyfiledrop.storage.whole import FinishedFiles
from pyfiledrop.storage.writer import BufferWriter, scan_blocks
from pyfiledrop.workers import in_thread, settle

if TYPE_CHECKING:
    from pyfiledrop.storage.intake import Intake
    from pyfiledrop.storage.intake_jobs import Reply

_READ_BLOCK = 1 << 20
_BLOB_NAME = re.compile(r"[A-Za-z0-9_-]{24}_.+")
_PROGRESS_EVERY = 1.0  # seconds between checkpoints of a long request: a crash loses at most this much


class LocalStorage:
    capabilities = frozenset(Capability)

    def __init__(self, storage_dir: Path, chunks_dir: Path, *, fsync_chunks: bool, fsync_files: bool,
                 intake: Intake | None = None) -> None:  # fmt: skip
        self.storage_dir = storage_dir
        self.intake = intake  # small uploads read and stored by a helper process (storage/intake.py)
        self.chunks_dir = chunks_dir
        self.fsync_chunks = fsync_chunks  # before a chunk is acknowledged: survives power loss
        self.fsync_files = fsync_files  # before a finished file is renamed into place
        self.files = FinishedFiles(storage_dir, chunks_dir, fsync_files=fsync_files, fsync_names=fsync_chunks)

    def _partial(self, upload_id: UploadId) -> Path:
        return self.files.partial(upload_id)

    def _blob_path(self, blob: BlobRef) -> Path:
        return self.files.final(blob.key)

    async def allocate(self, upload_id: UploadId, size: int | None) -> None:
        await asyncio.to_thread(self._allocate, upload_id, size)

    def _allocate(self, upload_id: UploadId, size: int | None) -> None:
        fd = os.open(self._partial(upload_id), os.O_WRONLY | os.O_CREAT, 0o666)
        try:
            if size:
                os.ftruncate(fd, size)  # sparse: chunks land at their offsets in any order
        except OSError as exc:
            raise_if_full(exc)
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
        direct_fd = open_direct(self._partial(upload_id), os.O_WRONLY)
        try:
            writer = BufferWriter(fd, direct_fd, offset, observe, progress or WriteProgress(), self.fsync_chunks)
            return await writer.run(body, checkpoint)
        finally:
            os.close(fd)
            if direct_fd is not None:
                os.close(direct_fd)

    async def scan_partial(self, upload_id: UploadId, start: int, end: ScanEnd, observe: BlockObserver) -> None:
        path = self._partial(upload_id)
        fd = os.open(path, os.O_RDONLY)
        direct_fd = open_direct(path, os.O_RDONLY)
        stop = threading.Event()
        try:
            with POOL.borrow() as first, POOL.borrow() as second, POOL.borrow() as third:
                loop = asyncio.get_running_loop()
                job = loop.run_in_executor(None, scan_blocks, fd, direct_fd, [first, second, third], start, end,
                                           observe, stop)  # fmt: skip
                try:
                    await asyncio.shield(job)
                except asyncio.CancelledError:
                    stop.set()  # the job looks between blocks; its buffers and fds stay ours until it is over
                    await settle([job])
                    raise
        finally:
            os.close(fd)
            if direct_fd is not None:
                os.close(direct_fd)

    async def seal(self, upload_id: UploadId, size: int) -> None:
        return  # a partial file reads back as it is

    async def concat(self, upload_id: UploadId, parts: Sequence[tuple[UploadId, int]],
                     observe: BlockObserver | None = None) -> bool:  # fmt: skip
        if observe is None:
            await asyncio.to_thread(self._copy_parts, upload_id, parts)
            return False
        await self._pass_parts(upload_id, parts, observe)
        return True

    def _copy_parts(self, upload_id: UploadId, parts: Sequence[tuple[UploadId, int]]) -> None:
        """In the kernel: shared extents where the file system clones (btrfs, XFS), a copy elsewhere."""
        with self._partial(upload_id).open("r+b") as out:
            position = 0
            for part_id, size in parts:
                with self._partial(part_id).open("rb") as src:
                    _copy_range(src.fileno(), out.fileno(), position, size)
                position += size
            if self.fsync_files:
                os.fdatasync(out.fileno())

    async def _pass_parts(self, upload_id: UploadId, parts: Sequence[tuple[UploadId, int]],
                          observe: BlockObserver) -> None:  # fmt: skip
        """One pass over the parts: each block is read once (read ahead by a second thread), seen by ``observe``
        (the hash) and appended to the final file — not a kernel copy and then a second read to hash. The final file
        is written in order through one aligned buffer, so whole buffers go out with O_DIRECT: no gigabyte of dirty
        pages for the finished file's fsync to wait for."""
        path = self._partial(upload_id)
        out, direct_out = os.open(path, os.O_WRONLY), open_direct(path, os.O_WRONLY)
        try:
            with POOL.borrow() as buffer:
                joiner = _Appender(out, direct_out, buffer, observe)
                for part_id, size in parts:
                    if size:
                        await self.scan_partial(part_id, 0, size, joiner)
                await asyncio.to_thread(joiner.flush)
            if self.fsync_files:
                await asyncio.to_thread(os.fdatasync, out)
        finally:
            os.close(out)
            if direct_out is not None:
                os.close(direct_out)

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
        self.files.publish(partial, final)

    @contextlib.contextmanager
    def whole_buffer(self, size: int) -> Iterator[memoryview]:
        """A slot the intake's helper can read into when there is one, else a pooled buffer (both page-aligned)."""
        if self.intake is not None and not self.intake.broken:
            with self.intake.buffer(size) as slot:
                if slot is not None:
                    yield slot
                    return
        with POOL.borrow() as buffer, memoryview(buffer) as view:
            yield view[:size]

    async def store_whole(self, upload_id: UploadId, filename: str, data: memoryview, run: ThreadRunner = in_thread,
                          lend: Lender | None = None) -> Stored:  # fmt: skip
        blob = self._final_ref(upload_id, filename, len(data))
        intake = self.intake
        if lend is not None and intake is not None and (slot := intake.slot_of(data)) is not None:
            replies: list[Reply] = []

            async def helper_reads(fd: int, start: int, idle_timeout: float) -> tuple[int, BaseException | None]:
                reply = await intake.run(fd, slot, start, len(data), idle_timeout, upload_id, blob.key)
                replies.append(reply)
                return reply.got, reply.body_error()

            if await lend(data, helper_reads):
                return Stored(blob, replies[-1].stored())
        return Stored(blob, await run(functools.partial(self.files.write_whole, upload_id, blob.key, data)))

    async def refinalize(self, upload_id: UploadId, blob: BlobRef, sha256: str) -> bool:
        return await asyncio.to_thread(self.files.refinalize, upload_id, blob.key, blob.size, sha256)

    async def unfinalize(self, upload_id: UploadId, filename: str) -> None:
        partial, final = self._partial(upload_id), self._blob_path(self._final_ref(upload_id, filename, 0))
        if not partial.exists() and final.exists():
            await asyncio.to_thread(final.replace, partial)

    async def read(self, blob: BlobRef, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        async for block in _read_file(self._blob_path(blob), start, blob.size if end is None else end):
            yield block

    def local_path(self, blob: BlobRef) -> Path | None:
        return self._blob_path(blob)

    def download_url(self, blob: BlobRef, disposition: str, content_type: str) -> str | None:
        return None  # sent by the server itself (sendfile)

    async def discard(self, upload_id: UploadId) -> None:
        self._partial(upload_id).unlink(missing_ok=True)

    async def release(self, upload_id: UploadId, start: int, end: int, *, tail: bool) -> bool:
        return await asyncio.to_thread(self._release, upload_id, start, end, tail)

    def _release(self, upload_id: UploadId, start: int, end: int, tail: bool) -> bool:
        try:
            fd = os.open(self._partial(upload_id), os.O_WRONLY)
        except FileNotFoundError:
            return True
        try:
            return release_range(fd, start, end, tail=tail)
        finally:
            os.close(fd)

    async def delete_blob(self, blob: BlobRef) -> None:
        self._blob_path(blob).unlink(missing_ok=True)

    async def delete_blob_key(self, key: str) -> None:
        if _BLOB_NAME.fullmatch(key):
            (self.storage_dir / key).unlink(missing_ok=True)

    async def exists(self, blob: BlobRef) -> bool:
        return self.holds(blob)

    def holds(self, blob: BlobRef) -> bool:
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


class _Appender:
    """Writes a file from its start, block after block, through one page-aligned buffer: a full buffer is written
    at once (O_DIRECT where the file allows), the rest by ``flush``. Each block is shown to ``observe`` first."""

    def __init__(self, fd: int, direct_fd: int | None, buffer: mmap.mmap, observe: BlockObserver) -> None:
        self.fd, self.direct_fd, self.buffer, self.observe = fd, direct_fd, buffer, observe
        self.base = 0  # the file offset of the buffer's start: a multiple of its size
        self.fill = 0

    def __call__(self, block: memoryview) -> None:  # in a worker thread, one block at a time, in file order
        self.observe(block)
        room = len(self.buffer)
        done = 0
        while done < len(block):
            n = min(room - self.fill, len(block) - done)
            self.buffer[self.fill : self.fill + n] = block[done : done + n]
            self.fill += n
            done += n
            if self.fill == room:
                self.flush()

    def flush(self) -> None:
        if self.fill:
            write_span(self.fd, self.direct_fd, self.buffer, 0, self.fill, self.base)
            self.base += self.fill
            self.fill = 0


def _copy_range(src: int, dst: int, dst_offset: int, size: int) -> None:
    copied = 0
    while copied < size:
        n = os.copy_file_range(src, dst, size - copied, copied, dst_offset + copied)
        if n == 0:
            raise OSError(errno.EIO, "part is shorter than recorded")
        copied += n
