"""What happens to uploads over time: crash recovery, orphan clean-up, expiry, stale uploads, verification."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.domain.model import ConcatKind, UploadState
from pyfiledrop.engine.service import UploadService
from pyfiledrop.errors import UploadNotFound

log = logging.getLogger("pyfiledrop.lifecycle")


@dataclass(frozen=True, slots=True)
class StartupReport:
    completed: int  # uploads finished that a crash had cut off while completing
    partial_orphans: int  # partial files with no unfinished upload
    blob_orphans: int  # finished files with no record
    renamed: int = 0  # finished files found under their partial name (power lost before the rename was on disk)


@dataclass(frozen=True, slots=True)
class BlobCheck:
    key: str
    expected_sha256: str
    actual_sha256: str | None  # None: the file is missing or has the wrong size
    references: int

    @property
    def ok(self) -> bool:
        return self.actual_sha256 == self.expected_sha256


class Lifecycle:
    def __init__(self, service: UploadService, stale_after: float) -> None:
        self.service = service
        self.stale_after = stale_after

    async def on_startup(self) -> StartupReport:
        meta, storage = self.service.meta, self.service.storage
        stuck = await meta.in_state(UploadState.COMPLETING)
        for upload in stuck:  # claimed tus parts among them: given back (COMPLETE) for the joins below
            await self.service.resume_completion(upload)
        receiving = await meta.in_state(UploadState.RECEIVING)
        # All bytes recorded, then killed before the completion began: finish it now, the client may never return.
        ready = [upload for upload in receiving if upload.all_bytes_received]
        for upload in ready:
            await self.service.resume_receiving(upload)
        for upload in [*stuck, *ready]:
            if upload.concat is ConcatKind.FINAL:  # completed now: its parts may not have been dropped yet
                await self.service.joins.release_parts(upload)
        unfinished = {u.id for u in receiving if not u.all_bytes_received}
        leftovers = [i for i in await storage.partial_ids() if i not in unfinished and not await self._awaits_concat(i)]
        renamed = [i for i in leftovers if await self._finish_rename(i)]
        partial_orphans = [i for i in leftovers if i not in renamed]
        for upload_id in partial_orphans:
            await storage.discard(upload_id)
        known = {blob.key for blob, _, _ in await meta.blobs()}
        blob_orphans = [key for key in await storage.blob_keys() if key not in known]
        for key in blob_orphans:
            log.warning("removing %s: no upload refers to it (left by a crash during a delete)", key)
            await storage.delete_blob_key(key)
        # Last: a join claims its parts again, which must not make them look like orphans to the scan above.
        await self.service.joins.recover(receiving)
        return StartupReport(len(stuck) + len(ready), len(partial_orphans), len(blob_orphans), len(renamed))

    async def _finish_rename(self, upload_id: UploadId) -> bool:
        """A finished upload whose file is still under its partial name: its rename did not reach the disk."""
        try:
            upload = await self.service.meta.get(upload_id)
        except UploadNotFound:
            return False
        if upload.state is not UploadState.COMPLETE or upload.blob is None or upload.sha256 is None:
            return False
        if not await self.service.storage.refinalize(upload_id, upload.blob, upload.sha256):
            return False
        log.warning("%s (%r): its file was found under its partial name and checked; renamed", upload.id,
                    upload.filename)  # fmt: skip
        return True

    async def _awaits_concat(self, upload_id: UploadId) -> bool:
        """A finished tus partial upload keeps its bytes in the partial folder until a final upload takes them."""
        try:
            upload = await self.service.meta.get(upload_id)
        except UploadNotFound:
            return False
        return upload.concat is ConcatKind.PARTIAL and upload.state is UploadState.COMPLETE

    async def sweep(self, now: float | None = None) -> int:
        """Drop unfinished uploads without progress for stale_after seconds, and expired finished ones."""
        now = time.time() if now is None else now
        meta = self.service.meta
        doomed = [*await meta.stale(now - self.stale_after), *await meta.expired(now)]
        for upload in doomed:
            # Unfinished and idle for --stale-after (a tus upload given up on, a PUT whose client left): abandoned.
            await self.service.terminate(upload.id, "expired" if upload.is_complete else "abandoned")
        return len(doomed)

    async def verify(self) -> list[BlobCheck]:
        """Re-hash every stored blob; a result that is not ok means the file changed or vanished on disk."""
        results = []
        for blob, sha256, refs in await self.service.meta.blobs():
            actual = None
            if await self.service.storage.exists(blob):
                digest = hashlib.sha256(usedforsecurity=False)
                async for block in self.service.storage.read(blob):
                    await asyncio.to_thread(digest.update, block)
                actual = digest.hexdigest()
            results.append(BlobCheck(blob.key, sha256, actual, refs))
        return results
