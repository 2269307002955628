"""The bytes side of an upload. Backends know nothing of HTTP, owners or states."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol, TypeVar, runtime_checkable

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.domain.model import BlobRef
from pyfiledrop.workers import in_thread

_T = TypeVar("_T")

# Called in a worker thread with each batch, while that batch is being written: hashing overlaps the write.
BatchObserver = Callable[[Sequence[bytes]], None]
# Called in a worker thread with consecutive blocks of a file being read back (see ``scan_partial``).
BlockObserver = Callable[[memoryview], None]
# Called with bytes just read into a buffer, in the thread that read them when there is one (see ``Fillable``).
ReadObserver = Callable[[memoryview], None]
# How far a read-back goes: a fixed end, or a function of the position reached that gives the next end.
ScanEnd = int | Callable[[int], int]
# Lends the request's socket for the rest of its body, read into a buffer the size of the body: copies what the server
# read already into the buffer's start, then awaits ``work`` (as often as it needs: a work that stops short because
# nothing came, ``sockets.Parked``, is awaited again once more arrived). False, with nothing read: this body cannot be
# lent (not our server, TLS, chunked, already started); then it is read the usual way. Raises ClientDisconnected /
# RequestTimeout if the body stops short; whatever ``work`` raises ends the connection after the answer.
Lender = Callable[["memoryview", "SocketWork"], Awaitable[bool]]
# Awaited on the event loop with the bytes written so far, between batches: lets the engine checkpoint.
ProgressCallback = Callable[[int], Awaitable[None]]


class SocketWork(Protocol):
    """Whoever a body's socket is lent to (``Lender``): reads the body's bytes into ``view[start:]`` of the buffer
    the lender was given, from the non-blocking socket ``fd``, and returns how many it read and why it stopped short
    (``sockets.Gone``, ``sockets.Parked``, TimeoutError), or None. Must not touch the socket once it returned."""

    async def __call__(self, fd: int, start: int, idle_timeout: float) -> tuple[int, BaseException | None]: ...


class ThreadRunner(Protocol):
    """Runs a job in a worker thread and gives back what it returned, perhaps after filling the buffer the job uses
    in that same thread (a small request body: read and stored in one thread job). ``workers.in_thread`` is the plain
    one."""

    def __call__(self, job: Callable[[], _T], /) -> Awaitable[_T]: ...


@dataclass(frozen=True, slots=True)
class Stored:
    """A small upload stored whole: where, and the sha256 of its bytes (hex)."""

    blob: BlobRef
    sha256: str


@runtime_checkable
class Fillable(Protocol):
    """A body that can fill a caller's buffer: storage that offers one skips a Python object per piece."""

    async def readinto(self, view: memoryview, observe: ReadObserver | None = None) -> int:
        """Read into ``view``; the count may be short of it at any time; 0 at the end of the body. Bytes read
        before a failure are returned first: the failure is raised by the next call.

        With ``observe``, a count n > 0 comes after ``observe(view[:n])`` was called once — in the worker thread
        that read the socket, where there is one: the hash sees the bytes while they are in that CPU's cache,
        and no other thread has to be woken for them."""
        ...


class FillTarget(Protocol):
    """Buffers to read a body into, handed out and taken back in one worker thread (``Pumpable.pump``). Neither
    method raises: a failure is kept by the target, which then says stop."""

    def next_view(self) -> memoryview | None:
        """Room for the next bytes, or None: stop, go back to the event loop. May block until room is free."""
        ...

    def filled(self, n: int) -> None:
        """``n`` bytes were read into the start of the last view."""


@runtime_checkable
class Pumpable(Fillable, Protocol):
    """A body that reads itself into a target's buffers in one worker thread, buffer after buffer, without going
    back to the event loop in between (no wake-up and hand-off per buffer: they cost more CPU than the copy)."""

    async def pump(self, target: FillTarget) -> int | None:
        """Read into ``target`` until the body ends or the target says stop; returns the bytes read (0: the end of
        the body, or the target stopped it at once), or None when the body cannot pump now (the caller reads the
        next bytes with ``readinto`` and may pump again after). Failures as ``Fillable.readinto``: bytes read
        before one are returned first, the failure raised by the next call."""
        ...


@dataclass
class WriteProgress:
    """Filled in by ``Storage.write`` as batches reach the file; still right when the write raises."""

    written: int = 0


class Capability(StrEnum):
    RANDOM_ACCESS = "random-access"  # chunks at any offset, in any order, in parallel
    CONCAT = "concat"  # build one upload from finished parts (tus concatenation)
    SERVE_RANGE = "serve-range"  # read any byte range of a finished blob
    LOCAL_PATH = "local-path"  # blobs are files the server can hand to sendfile


class Storage(Protocol):
    """Where bytes live.

    The engine guarantees that two writers never write the same upload range at once with different
    data, and that ``finalize`` runs once, after every byte is written. Each method either does all of
    its work or raises; ``StorageFull`` when the disk is out of space (what was written stays).
    """

    capabilities: frozenset[Capability]

    async def allocate(self, upload_id: UploadId, size: int | None) -> None:
        """Make room for a new upload; a size of None means 'not known yet'."""

    async def write(
        self,
        upload_id: UploadId,
        offset: int,
        body: AsyncIterator[bytes],
        observe: BatchObserver | None = None,
        checkpoint: ProgressCallback | None = None,
        progress: WriteProgress | None = None,
    ) -> int:
        """Write the body at ``offset``; return the byte count.

        ``observe`` sees every batch (possibly while it is written; a batch whose write fails may have been
        observed); ``checkpoint`` is awaited now and then with the bytes written so far, once they are as
        durable as an acknowledgement; ``progress.written`` counts the bytes that reached the file.
        """
        ...

    async def scan_partial(self, upload_id: UploadId, start: int, end: ScanEnd, observe: BlockObserver) -> None:
        """Let ``observe`` see bytes ``[start, end)`` of an unfinished upload, in order, in worker threads (to hash
        what was written out of order). ``end`` may be a function, asked for a new end each time the scan reaches
        the last one (a worker thread asks; the position reached, or less, ends the scan): more bytes recorded
        meanwhile are read on in the same pass. Returns, or raises, only once no thread is using ``observe``."""

    async def seal(self, upload_id: UploadId, size: int) -> None:
        """All ``size`` bytes of the upload are recorded and no more will come: make them whole where the backend
        must (S3: CompleteMultipartUpload), so ``scan_partial`` can read every byte back. Runs before the whole-file
        hash is checked; may run again after a crash."""

    async def concat(self, upload_id: UploadId, parts: Sequence[tuple[UploadId, int]],
                     observe: BlockObserver | None = None) -> bool:  # fmt: skip
        """Fill an allocated upload with the bytes of finished parts, in order. Given ``observe``, a backend that
        reads the bytes on their way lets it see them all, in order, in worker threads, and returns True: the
        engine hashes them there and reads nothing back. False: ``observe`` saw nothing (a copy the backend's
        server makes, a clone), so the engine hashes the parts itself with ``scan_partial``."""
        ...

    async def finalize(self, upload_id: UploadId, filename: str, size: int) -> BlobRef:
        """Make the finished upload visible under its final name, whole or not at all."""
        ...

    def whole_buffer(self, size: int) -> AbstractContextManager[memoryview]:
        """Room for a small upload's body of ``size`` bytes (up to ``buffers.BUFFER_BYTES``), for ``store_whole``."""
        ...

    async def store_whole(self, upload_id: UploadId, filename: str, data: memoryview, run: ThreadRunner = in_thread,
                          lend: Lender | None = None) -> Stored:  # fmt: skip
        """A small upload's bytes in ``data`` (from ``whole_buffer``): hash, write and ``finalize`` them in one job
        that ``run`` runs in a worker thread (one job instead of one per step; ``run`` fills ``data`` first). Given
        ``lend``, a backend may read the body itself from the client's socket instead (and hash and write it where
        it likes: the local disk's helper process)."""
        ...

    async def refinalize(self, upload_id: UploadId, blob: BlobRef, sha256: str) -> bool:
        """After power failed between a finished file's rename and the rename reaching the disk: if the upload's
        partial bytes are there, whole and with this sha256, make them ``blob`` again. False: nothing to do."""
        ...

    async def unfinalize(self, upload_id: UploadId, filename: str) -> None:
        """After a crash between finalize and its record: put the bytes back where an unfinished upload's are."""

    def read(self, blob: BlobRef, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes ``[start, end)`` of a finished blob."""
        ...

    def local_path(self, blob: BlobRef) -> Path | None:
        """The blob as a file on this machine, for zero-copy sending; None if it is not one."""
        ...

    def download_url(self, blob: BlobRef, disposition: str, content_type: str) -> str | None:
        """A short-lived URL where the client can fetch the blob itself, sent with these Content-Disposition and
        Content-Type (S3 with --s3-presign); None: the server sends the bytes."""
        ...

    async def discard(self, upload_id: UploadId) -> None:
        """Forget an unfinished upload's bytes; no error if there are none."""

    async def release(self, upload_id: UploadId, start: int, end: int, *, tail: bool) -> bool:
        """Give back the space of bytes ``[start, end)`` of an unfinished upload that a failed write left
        unrecorded (they read as zeros after). ``tail``: nothing at or after ``start`` is recorded. False when the
        backend could not; no error if the upload has no bytes here."""
        ...

    async def delete_blob(self, blob: BlobRef) -> None:
        """Remove a finished blob; no error if it is already gone."""

    async def delete_blob_key(self, key: str) -> None:
        """Remove a blob known only by its key (an orphan); no error if it is already gone."""

    async def exists(self, blob: BlobRef) -> bool:
        """Whether a finished blob is present with its full size."""
        ...

    def holds(self, blob: BlobRef) -> bool:
        """``exists``, callable from any thread (it may block)."""
        ...

    def free_bytes(self) -> int | None:
        """Space left for new uploads, or None if the backend cannot tell."""
        ...

    async def partial_ids(self) -> Sequence[UploadId]:
        """Uploads that have unfinished bytes here, for reconciling after a crash."""
        ...

    async def blob_keys(self) -> Sequence[str]:
        """Keys of the finished blobs this backend holds, for finding orphans after a crash."""
        ...

    def usage(self) -> dict[str, int]:
        """Figures for the admin view (disk_total, disk_free, partial_bytes_on_disk …)."""
        ...
