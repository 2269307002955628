"""Moving an upload's bytes between a request and its partial file, through page-aligned buffers.

The bytes land in two reused 2 MiB buffers: while one fills, the other is written. A body that fills buffers
itself (a worker thread reading the socket straight into them) lets the hash see the bytes in that same thread,
right after they arrive, while they are in its CPU's cache; pieces copied in are hashed beside their write.
Writes use O_DIRECT wherever the file offset allows, so the bytes never enter the page cache: on the VMs we
measured, filling fresh page-cache pages costs more CPU than sha256 does (``benchmarks/PROFILE.md``), and an fsync
at completion then finds nothing left to flush. A buffer maps onto the file from a 4 KiB boundary (``base``), so a
chunk starting mid-page writes only its first partial page and its last one through the page cache. Bytes written
out of order are read back the same way (``read_span``) to be hashed behind the contiguous prefix.

Pages written through the page cache are only ever the partial ones at a range's ends; the neighbouring range
writes its side of such a page through the page cache too, so the two never race across caching modes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import math
import mmap
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import cast

from pyfiledrop.storage.base import BatchObserver, Fillable, ProgressCallback, Pumpable, ScanEnd, WriteProgress
from pyfiledrop.storage.buffers import BUFFER_BYTES, POOL
from pyfiledrop.storage.files import ALIGN, write_span
from pyfiledrop.workers import settle_jobs, submit

_PROGRESS_EVERY = 1.0  # seconds between checkpoints of a long request: a crash loses at most this much


class BufferWriter:
    def __init__(
        self, fd: int, direct_fd: int | None, offset: int, observe: BatchObserver | None, progress: WriteProgress,
        sync: bool,
    ) -> None:  # fmt: skip
        self.fd = fd
        self.direct_fd = direct_fd
        self.observe = observe
        self.progress = progress
        self.sync = sync  # fdatasync before a checkpoint and at the end: --durability chunk
        self.base = offset - offset % ALIGN  # the file offset of the current buffer's first byte
        self.lead = offset % ALIGN  # where this request's bytes start in the current buffer
        self.fill = self.lead
        self.buffers: list[mmap.mmap] = []
        self.current = 0
        self.in_flight: list[concurrent.futures.Future[None]] = []
        self.in_flight_bytes = 0
        self.reported = 0.0
        self.observed_on_read = False  # the body let ``observe`` see the bytes as they were read
        self.failed = False  # a write failed: nothing after it is written

    async def run(self, body: AsyncIterator[bytes], checkpoint: ProgressCallback | None) -> int:
        """Write the whole body; returns the byte count (``progress.written`` is right even when this raises)."""
        self.reported = asyncio.get_running_loop().time()
        with POOL.borrow() as first, POOL.borrow() as second:
            self.buffers = [first, second]
            try:
                try:
                    if isinstance(body, Fillable):
                        await self._fill_from(body, checkpoint)
                    else:
                        await self._copy_from(body, checkpoint)
                except Exception:
                    # The sender went away or stalled: what did arrive is written, the caller decides what to keep.
                    await self._flush()
                    raise
                await self._flush()
            finally:  # never reuse a buffer or close the fd under a running job
                await settle_jobs(self.in_flight)
                self.buffers = []
        return self.progress.written

    async def _fill_from(self, body: Fillable, checkpoint: ProgressCallback | None) -> None:
        """A body that fills our buffers. One that pumps (``Pumpable``) reads itself in one worker thread, which
        hashes each buffer and starts its write: the event loop hears back only for a checkpoint (once a second)
        and at the end. When it cannot pump (not now, or never), one ``readinto`` at a time."""
        loop = asyncio.get_running_loop()
        observe = self.observe
        seen = None if observe is None else lambda view: observe([view])
        self.observed_on_read = seen is not None
        pumps = isinstance(body, Pumpable)
        while True:
            if pumps:
                wait = self.reported + _PROGRESS_EVERY - loop.time() if checkpoint is not None else math.inf
                target = _PumpTarget(self, time.monotonic() + wait)
                n = await cast(Pumpable, body).pump(target)
                if target.error is not None:
                    raise target.error
                if target.checkpoint_due:
                    await self._swap(checkpoint)
                    continue
                if n == 0:
                    return
                if n is not None:
                    continue
            if self.fill == BUFFER_BYTES:  # (also when a pump left it full)
                await self._swap(checkpoint)
            n = await body.readinto(memoryview(self.buffers[self.current])[self.fill :], seen)
            if n == 0:
                return
            self.fill += n

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
            if self.sync:  # a checkpoint is an acknowledgement: as durable as one
                await loop.run_in_executor(None, os.fdatasync, self.fd)
            await checkpoint(self.progress.written)
            self.reported = loop.time()
        self._start()
        self._next_buffer()

    async def _flush(self) -> None:
        await self._finish_in_flight()
        if self.fill > self.lead and not self.failed:
            self._start()
            self.lead = self.fill
            await self._finish_in_flight()
        if self.sync and self.progress.written:
            await asyncio.get_running_loop().run_in_executor(None, os.fdatasync, self.fd)

    def _start(self) -> None:
        """Start writing (and, unless done as it was read, hashing) the current buffer. Any thread may call this."""
        buffer, start, end = self.buffers[self.current], self.lead, self.fill
        jobs = [submit(write_span, self.fd, self.direct_fd, buffer, start, end, self.base)]
        if self.observe is not None and not self.observed_on_read:
            batch: list[bytes] = [memoryview(buffer)[start:end]]  # type: ignore[list-item]  # hashers take any buffer
            jobs.append(submit(self.observe, batch))
        self.in_flight = jobs
        self.in_flight_bytes = end - start

    def _next_buffer(self) -> None:
        self.base += BUFFER_BYTES
        self.current, self.lead, self.fill = self.current ^ 1, 0, 0

    async def _finish_in_flight(self) -> None:
        if not self.in_flight:
            return
        await settle_jobs(self.in_flight)  # the write and the hash, even if one fails
        self._collect()

    def _collect(self) -> None:
        """The jobs in flight are over: raise the first failure, else count their bytes as written. After a
        failure nothing more is written or counted: bytes past a hole must never be counted as written."""
        jobs, self.in_flight = self.in_flight, []
        try:
            for job in jobs:
                job.result()
        except BaseException:
            self.failed = True
            raise
        self.progress.written += self.in_flight_bytes


class _PumpTarget:
    """``BufferWriter``'s buffers as a ``FillTarget``: used in the worker thread that reads the body, while the
    event loop waits for it. A full buffer's write starts from that thread once the other buffer's is over; the
    target says stop when a checkpoint is due or a write failed (kept in ``error``)."""

    def __init__(self, writer: BufferWriter, checkpoint_at: float) -> None:
        self.writer = writer
        self.checkpoint_at = checkpoint_at  # time.monotonic()
        self.checkpoint_due = False
        self.error: BaseException | None = None

    def next_view(self) -> memoryview | None:
        writer = self.writer
        if self.error is not None:
            return None
        if writer.fill == BUFFER_BYTES:
            try:
                concurrent.futures.wait(writer.in_flight)
                writer._collect()
            except Exception as exc:  # noqa: BLE001 - the event loop raises it
                self.error = exc
                return None
            if time.monotonic() >= self.checkpoint_at:
                self.checkpoint_due = True  # the loop checkpoints, then starts this buffer's write
                return None
            writer._start()
            writer._next_buffer()
        return memoryview(writer.buffers[writer.current])[writer.fill :]

    def filled(self, n: int) -> None:
        writer = self.writer
        if writer.observe is not None:
            try:
                writer.observe([memoryview(writer.buffers[writer.current])[writer.fill : writer.fill + n]])  # type: ignore[list-item]
            except Exception as exc:  # noqa: BLE001 - the event loop raises it
                self.error = exc
        writer.fill += n


def read_span(fd: int, direct_fd: int | None, buffer: mmap.mmap, position: int, end: int) -> tuple[memoryview, int]:
    """Read from ``position`` (up to a buffer's worth, not past ``end``); returns the bytes read and where they
    stop. O_DIRECT from the page boundary below ``position`` when it can."""
    view = memoryview(buffer)
    base, got = position, -1
    if direct_fd is not None:
        base = position - position % ALIGN
        try:
            got = os.preadv(direct_fd, [view[: min(BUFFER_BYTES, -(-(end - base) // ALIGN) * ALIGN)]], base)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            base = position
    if got < 0:
        got = os.preadv(fd, [view[: min(BUFFER_BYTES, end - base)]], base)
    stop = min(got, end - base)
    if stop <= position - base:
        raise OSError(errno.EIO, f"the partial file ends at {base + got}, before byte {position}")
    return view[position - base : stop], base + stop


def scan_blocks(
    fd: int, direct_fd: int | None, buffers: Sequence[mmap.mmap], start: int, end: ScanEnd,
    observe: Callable[[memoryview], None], stop: threading.Event,
) -> None:  # fmt: skip
    """In a worker thread: let ``observe`` see ``[start, end)`` of the file block by block, in order, while a helper
    thread reads the next blocks into the other buffers. One job for the whole range: no wake-up of the event loop
    per block, and the disk's latency hides behind the hashing (970 → ~1,400 MiB/s read back and hashed here)."""
    free: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index in range(len(buffers)):
        free.put(index)
    ready: queue.SimpleQueue[tuple[int, memoryview | BaseException | None]] = queue.SimpleQueue()

    def read_ahead() -> None:
        failure: BaseException | None = None
        try:
            position = start
            limit = end if isinstance(end, int) else end(start)
            while not stop.is_set():
                if position >= limit:
                    limit = limit if isinstance(end, int) else end(position)  # recorded further meanwhile?
                    if position >= limit:
                        break
                index = free.get()
                if index < 0:
                    break
                view, position = read_span(fd, direct_fd, buffers[index], position, limit)
                ready.put((index, view))
        except BaseException as exc:  # noqa: BLE001 - handed to the observing thread, which raises it
            failure = exc
        ready.put((-1, failure))  # always: the observing thread may be waiting for a block

    reader = threading.Thread(target=read_ahead, name="pyfiledrop-scan", daemon=True)
    reader.start()
    try:
        while True:
            index, item = ready.get()
            if index < 0:
                if item is not None:
                    raise item  # type: ignore[misc]  # the reader's exception, by the protocol above
                return
            if stop.is_set():
                return
            assert isinstance(item, memoryview)
            observe(item)
            item = None  # the buffer's view goes before the buffer is read into again
            free.put(index)
    finally:
        stop.set()
        free.put(-1)
        reader.join()
