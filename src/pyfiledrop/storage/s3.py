"""S3-compatible object storage: each upload is an S3 multipart upload to ``PREFIX/blobs/<upload id>``.

A request's bytes are cut along the part plan (storage/parts.py): a part a request covers whole is sent as that
part; the bytes of a part it covers only in part are staged as a small S3 object (storage/s3_pieces.py), so the
request that brings the rest — at this process or another replica — can assemble the part. Completion is
CompleteMultipartUpload (``seal``, before the whole-file hash is checked: only then can bytes that arrived out of
order be read back); concatenation copies server-side (UploadPartCopy); discarding aborts the multipart upload.
Finished blobs are ``PREFIX/blobs/<upload id>``; deduplication goes through the records' sha256, which every
replica shares, so a blob's key never has to change after it is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from pyfiledrop.domain.ids import UploadId, is_upload_id
from pyfiledrop.domain.model import BlobRef
from pyfiledrop.errors import TooLarge
from pyfiledrop.storage import s3_pieces as pieces
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
from pyfiledrop.storage.parts import ALIGN, MAX_OBJECT, MAX_PARTS
from pyfiledrop.storage.s3_client import S3Calls, S3Location, S3Options, error_code, make_client
from pyfiledrop.storage.s3_multipart import Manifest, Multipart
from pyfiledrop.storage.spool import Budget, PartBuffer
from pyfiledrop.units import GIB, MIB
from pyfiledrop.workers import in_thread

_READ_BLOCK = 4 * MIB  # a download's GET is read on in blocks this size
_IN_FLIGHT = 2  # parts of one request sent at once while the next is read
ORPHAN_GRACE = 3600.0  # seconds an unrecorded multipart upload or blob is left alone: another replica's, in flight


class S3Storage:
    capabilities = frozenset({Capability.RANDOM_ACCESS, Capability.CONCAT, Capability.SERVE_RANGE})

    def __init__(self, location: S3Location, options: S3Options, spool: Path, *, spool_max: int = 4 * GIB,
                 presign_seconds: int | None = None, align: int = ALIGN, orphan_grace: float = ORPHAN_GRACE,
                 ) -> None:  # fmt: skip
        self.location = location
        self.options = options
        self.spool = spool
        self.budget = Budget(spool_max)
        self.presign_seconds = presign_seconds  # --s3-presign: downloads are redirected to S3 for this long
        self.orphan_grace = orphan_grace
        self.calls = S3Calls(make_client(options))
        self.multipart = Multipart(self.calls.client, location, align)
        self._manifests: dict[UploadId, Manifest] = {}  # never change once written: safe to keep

    @property
    def bucket(self) -> str:
        return self.location.bucket

    def _key(self, upload_id: str) -> str:
        return self.multipart.blob_key(upload_id)

    async def check(self) -> None:
        """At start: the bucket is there and these credentials reach it (a clear error now, not at first upload)."""
        await self.calls.run(self.calls.client.head_bucket, Bucket=self.bucket)

    def close(self) -> None:
        self.calls.close()

    async def _manifest(self, upload_id: UploadId) -> Manifest:
        manifest = self._manifests.get(upload_id)
        if manifest is None:
            manifest = await self.calls.run(self.multipart.load, upload_id)
            if manifest is None:
                raise FileNotFoundError(f"upload {upload_id} has no multipart upload in S3")
            self._manifests[upload_id] = manifest
        return manifest

    async def allocate(self, upload_id: UploadId, size: int | None) -> None:
        if size is not None and size > MAX_OBJECT:
            raise TooLarge(MAX_OBJECT, size)  # one S3 object holds 5 TiB: refused before any byte is sent
        self._manifests[upload_id] = await self.calls.run(self.multipart.create, upload_id, size)

    # -- writing ------------------------------------------------------------------------------------------------

    async def write(
        self,
        upload_id: UploadId,
        offset: int,
        body: AsyncIterator[bytes],
        observe: BatchObserver | None = None,
        checkpoint: ProgressCallback | None = None,
        progress: WriteProgress | None = None,
    ) -> int:
        manifest = await self._manifest(upload_id)
        writer = _PartWriter(self, upload_id, manifest, offset, observe, checkpoint, progress or WriteProgress())
        return await writer.run(body)

    async def _send(self, upload_id: UploadId, manifest: Manifest, buffer: PartBuffer) -> None:
        """Send a gathered buffer: as its part when it is one whole, else as a staged piece (then try the part)."""
        number = manifest.plan.part_of(buffer.start)
        start, end = manifest.plan.bounds(number)
        try:
            if buffer.start == start and buffer.end == end:
                await self.calls.run(lambda: self.multipart.upload_part(upload_id, manifest, number, buffer.body()))
                return
            key = pieces.piece_key(self.location, upload_id, number, buffer.start, buffer.end)
            await self.calls.run(lambda: self.calls.client.put_object(Bucket=self.bucket, Key=key, Body=buffer.body()))
            # Complete now? (A deferred-length upload's last part cannot be: its end is known only at ``seal``.)
            await self.calls.run(self.multipart.assemble, upload_id, manifest, number)
        finally:
            await buffer.close()

    async def scan_partial(self, upload_id: UploadId, start: int, end: ScanEnd, observe: BlockObserver) -> None:
        sealed = await self.calls.run(self.multipart.sealed_size, upload_id)
        staged = [] if sealed is not None else await self.calls.run(pieces.list_pieces, self.calls.client,
                                                                    self.location, upload_id)  # fmt: skip
        stop = threading.Event()
        job = asyncio.ensure_future(self.calls.run(self._scan, upload_id, sealed, staged, start, end, observe, stop))
        try:
            await asyncio.shield(job)
        except asyncio.CancelledError:
            stop.set()
            with contextlib.suppress(BaseException):
                await job
            raise

    def _scan(self, upload_id: UploadId, sealed: int | None, staged: list[pieces.Piece], start: int, end: ScanEnd,
              observe: BlockObserver, stop: threading.Event) -> None:  # fmt: skip
        """Read back what can be read: the whole object once sealed, else staged pieces (sent parts cannot be read
        before completion: the scan stops at the first such byte, and the hash waits for ``seal``)."""
        position = start
        limit = end if isinstance(end, int) else end(position)
        stream: Any = None  # the sealed object: one GET read on to its end, not one request per block
        key = self._key(upload_id)
        try:
            while position < limit and not stop.is_set():
                if sealed is not None:
                    if position >= sealed:
                        return
                    if stream is None:
                        rest = f"bytes={position}-{sealed - 1}"
                        stream = self.calls.client.get_object(Bucket=self.bucket, Key=key, Range=rest)["Body"]
                    data = stream.read(min(_READ_BLOCK, limit - position))
                else:
                    found = pieces.covering(staged, position, position + 1)
                    if found is None:
                        return
                    piece = found[0][0]
                    upto = min(limit, position + _READ_BLOCK, piece.end)
                    try:
                        data = pieces.read_range(self.calls.client, self.bucket, piece.key, position, upto, piece.start)
                    except Exception as exc:  # assembled meanwhile, pieces deleted: the rest is read after ``seal``
                        if error_code(exc) in ("NoSuchKey", "404"):
                            return
                        raise
                if not data:
                    return
                observe(memoryview(data))
                position += len(data)
                if position >= limit and not isinstance(end, int):
                    limit = end(position)
        finally:
            if stream is not None:
                stream.close()

    async def seal(self, upload_id: UploadId, size: int) -> None:
        """Every byte is recorded and no more come: complete the multipart upload (whole-file hashing may then read
        the object back)."""
        manifest = await self._manifest(upload_id)
        await self.calls.run(self.multipart.seal, upload_id, manifest, size)

    async def concat(self, upload_id: UploadId, parts: Sequence[tuple[UploadId, int]],
                     observe: BlockObserver | None = None) -> bool:  # fmt: skip
        """Server-side copies (UploadPartCopy): no byte passes here for ``observe`` to see, so False."""
        for part_id, size in parts:
            await self.seal(part_id, size)
        manifest = await self._manifest(upload_id)
        sources = [(self._key(part_id), size) for part_id, size in parts]
        await self.calls.run(self.multipart.concat, upload_id, manifest, sources)
        return False

    async def finalize(self, upload_id: UploadId, filename: str, size: int) -> BlobRef:
        await self.seal(upload_id, size)
        await self._forget_staging(upload_id)
        return BlobRef(upload_id, size)

    async def _forget_staging(self, upload_id: UploadId) -> None:
        """The plan goes last: while it is there the upload counts as unfinished (``discard`` removes its object)."""
        folder = pieces.upload_folder(self.location, upload_id)
        keys = [key for key, _ in await self.calls.run(pieces.list_keys, self.calls.client, self.bucket, folder)]
        plan = pieces.plan_key(self.location, upload_id)
        await self.calls.run(pieces.delete_keys, self.calls.client, self.bucket, [k for k in keys if k != plan])
        await self.calls.run(pieces.delete_keys, self.calls.client, self.bucket, [plan])
        self._manifests.pop(upload_id, None)

    @contextlib.contextmanager
    def whole_buffer(self, size: int) -> Iterator[memoryview]:
        with POOL.borrow() as buffer, memoryview(buffer) as view:
            yield view[:size]

    async def store_whole(self, upload_id: UploadId, filename: str, data: memoryview, run: ThreadRunner = in_thread,
                          lend: Lender | None = None) -> Stored:  # fmt: skip
        def job() -> str:
            digest = hashlib.sha256(data, usedforsecurity=False).hexdigest()
            self.calls.client.put_object(Bucket=self.bucket, Key=self._key(upload_id), Body=bytes(data))
            return digest

        return Stored(BlobRef(upload_id, len(data)), await run(job))

    async def refinalize(self, upload_id: UploadId, blob: BlobRef, sha256: str) -> bool:
        return False  # no rename to lose: an object S3 acknowledged is there

    async def unfinalize(self, upload_id: UploadId, filename: str) -> None:
        return  # a sealed object stays: ``scan_partial`` reads it back and ``seal`` knows it is done

    # -- reading ------------------------------------------------------------------------------------------------

    async def read(self, blob: BlobRef, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        end = blob.size if end is None else end
        if start >= end:
            return
        answer = await self.calls.run(self.calls.client.get_object, Bucket=self.bucket, Key=self._key(blob.key),
                                      Range=f"bytes={start}-{end - 1}")  # fmt: skip
        stream = answer["Body"]
        try:
            for _ in range(-(-(end - start) // _READ_BLOCK) + 1):
                block = await self.calls.run(stream.read, _READ_BLOCK)
                if not block:
                    return
                yield block
        finally:
            stream.close()

    def local_path(self, blob: BlobRef) -> Path | None:
        return None

    def download_url(self, blob: BlobRef, disposition: str, content_type: str) -> str | None:
        """With --s3-presign: a short-lived URL where S3 serves the blob itself (with our headers), else None."""
        if not self.presign_seconds:
            return None
        params = {"Bucket": self.bucket, "Key": self._key(blob.key), "ResponseContentDisposition": disposition,
                  "ResponseContentType": content_type}  # fmt: skip
        return self.calls.client.generate_presigned_url("get_object", Params=params, ExpiresIn=self.presign_seconds)

    # -- removal and reconciliation -----------------------------------------------------------------------------

    async def discard(self, upload_id: UploadId) -> None:
        unfinished = await self.calls.run(self.multipart.load, upload_id) is not None
        await self.calls.run(self.multipart.abort, upload_id)
        if unfinished:  # sealed but never finalized (a duplicate, a used tus part): its object is no blob
            await self.calls.run(self.calls.client.delete_object, Bucket=self.bucket, Key=self._key(upload_id))
            await self._forget_staging(upload_id)
        self._manifests.pop(upload_id, None)

    async def release(self, upload_id: UploadId, start: int, end: int, *, tail: bool) -> bool:
        """Staged pieces of unrecorded bytes go (a retry stages its own); sent parts are replaced by the retry."""
        staged = await self.calls.run(pieces.list_pieces, self.calls.client, self.location, upload_id)
        unrecorded = [piece.key for piece in staged if start <= piece.start and piece.end <= end]
        await self.calls.run(pieces.delete_keys, self.calls.client, self.bucket, unrecorded)
        return True

    async def delete_blob(self, blob: BlobRef) -> None:
        await self.delete_blob_key(blob.key)

    async def delete_blob_key(self, key: str) -> None:
        if is_upload_id(key):
            await self.calls.run(self.calls.client.delete_object, Bucket=self.bucket, Key=self._key(key))

    async def exists(self, blob: BlobRef) -> bool:
        return await self.calls.run(self.holds, blob)

    def holds(self, blob: BlobRef) -> bool:
        return self.multipart.sealed_size(blob.key) == blob.size

    def free_bytes(self) -> int | None:
        return None

    async def partial_ids(self) -> Sequence[UploadId]:
        """Uploads with a plan or an open multipart upload in S3, older than the grace (newer ones may be another
        replica's, between creating the multipart upload and recording the upload)."""
        old = time.time() - self.orphan_grace
        folder = self.location.key("uploads", "")
        plans = await self.calls.run(pieces.list_keys, self.calls.client, self.bucket, folder)
        found = {key.removeprefix(folder).split("/")[0] for key, when in plans if key.endswith("/plan") and when < old}
        found |= {upload_id for upload_id, when in await self.calls.run(self.multipart.open_multiparts) if when < old}
        return [UploadId(upload_id) for upload_id in sorted(found) if is_upload_id(upload_id)]

    async def blob_keys(self) -> Sequence[str]:
        old = time.time() - self.orphan_grace
        folder = self.location.key("blobs", "")
        listed = await self.calls.run(pieces.list_keys, self.calls.client, self.bucket, folder)
        return [
            key.removeprefix(folder) for key, when in listed if when < old and is_upload_id(key.removeprefix(folder))
        ]

    def usage(self) -> dict[str, int]:
        return {"spool_bytes": self.budget.used, "spool_max": self.budget.limit, "max_parts": MAX_PARTS}


class _PartWriter:
    """One request's bytes cut along the plan: each part (or piece) gathered, hashed in order, then sent while the
    next is read (``_IN_FLIGHT`` at most). Bytes count as written once S3 has them."""

    def __init__(self, storage: S3Storage, upload_id: UploadId, manifest: Manifest, offset: int,
                 observe: BatchObserver | None, checkpoint: ProgressCallback | None, progress: WriteProgress,
                 ) -> None:  # fmt: skip
        self.storage, self.upload_id, self.manifest = storage, upload_id, manifest
        self.offset, self.observe, self.checkpoint, self.progress = offset, observe, checkpoint, progress
        self.sending: list[tuple[asyncio.Task[None], int]] = []

    def _new_buffer(self, start: int) -> tuple[PartBuffer, int]:
        part_start, part_end = self.manifest.plan.bounds(self.manifest.plan.part_of(start))
        buffer = PartBuffer(start, part_end - part_start, self.storage.spool, self.storage.budget)
        return buffer, part_end

    async def run(self, body: AsyncIterator[bytes]) -> int:
        buffer: PartBuffer | None = None  # made when bytes come: an upload may end on the plan's very last byte
        boundary = position = self.offset
        try:
            async for data in body:
                used = 0
                while used < len(data):
                    if buffer is None:
                        buffer, boundary = self._new_buffer(position)
                    take = min(boundary - buffer.end, len(data) - used)
                    await buffer.add(data if take == len(data) else data[used : used + take])
                    used += take
                    position = buffer.end
                    if position == boundary:
                        await self._hand_over(buffer)
                        buffer = None
        finally:
            try:
                if buffer is not None and buffer.size:  # what arrived before the end (or a cut) is staged and counts
                    await self._hand_over(buffer)
                elif buffer is not None:
                    await buffer.close()
            finally:
                await self._drain(0)
        return self.progress.written

    async def _hand_over(self, buffer: PartBuffer) -> None:
        if self.observe is not None:
            observe = self.observe

            def hash_it() -> None:
                observe(buffer.blocks())
                buffer.observe_file(observe)

            await asyncio.to_thread(hash_it)
        task = asyncio.ensure_future(self.storage._send(self.upload_id, self.manifest, buffer))
        self.sending.append((task, buffer.end))
        await self._drain(_IN_FLIGHT - 1)

    async def _drain(self, keep: int) -> None:
        """Wait for sent buffers, oldest first, until ``keep`` are left; count and checkpoint what S3 has."""
        while len(self.sending) > keep:
            task, end = self.sending.pop(0)
            try:
                await task
            except BaseException:
                for other, _ in self.sending:  # later bytes cannot count once one before them is lost
                    other.cancel()
                    with contextlib.suppress(BaseException):
                        await other
                self.sending.clear()
                raise
            self.progress.written = end - self.offset
            if self.checkpoint is not None:
                await self.checkpoint(self.progress.written)
