"""What happens to uploads over time: crash recovery, orphan clean-up, expiry, stale uploads, verification."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.domain.model import ConcatKind, Upload, UploadState
from pyfiledrop.engine.service import UploadService
from pyfiledrop.errors import UploadGone, UploadNotFound

log = logging.getLogger("pyfiledrop.lifecycle")

# A completion left ``completing`` this long (and whose claim is free) is taken over by a sweep: its process died
# and was not restarted (a restart resumes it at once).
_TAKEOVER_SECONDS = 60.0
_CLAIM_BATCH = 100  # records a sweep claims at a time (a store that hands each sweeper its own records)
_CLAIM_BATCHES = 1000  # bounds one sweep: 100,000 records, the rest at the next sweep


@runtime_checkable
class ClaimingStore(Protocol):
    """A store shared by several replicas' sweepers that hands each record to one of them (PostgreSQL: ``FOR
    UPDATE SKIP LOCKED``, meta/postgres.py): two sweeps at once never work on one upload."""

    async def claim_stale(self, updated_before: float, limit: int = 100) -> Sequence[Upload]: ...

    async def claim_expired(self, now: float, limit: int = 100) -> Sequence[Upload]: ...


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
    """Start-up recovery and the periodic sweep, safe to run in every replica at once: a completion is resumed
    only when its claim is free (its process died), and a file without a record is removed at once only by a
    process that is alone; with other replicas live it may be one being created right now, so it is removed
    only if it is still without a record at the next sweep (``_suspects``)."""

    def __init__(self, service: UploadService, stale_after: float) -> None:
        self.service = service
        self.stale_after = stale_after
        self._suspects: tuple[set[UploadId], set[str]] = (set(), set())  # partial ids, blob keys
        self.alone = True  # at the last start-up, no other replica was live

    async def on_startup(self) -> StartupReport:
        meta, storage, claims = self.service.meta, self.service.storage, self.service.claims
        alone = self.alone = await claims.begin()
        try:
            stuck = await meta.in_state(UploadState.COMPLETING)
            completed = await self._resume(stuck)  # claimed tus parts among them: given back for the joins below
            receiving = await meta.in_state(UploadState.RECEIVING)
            # All bytes recorded, then killed before the completion began: finish it now, the client may never
            # return (at another live replica too: the completion's claim and transition decide who does it).
            ready = [upload for upload in receiving if upload.all_bytes_received]
            for upload in ready:
                await self.service.resume_receiving(upload)
            for upload in [*stuck, *ready]:
                if upload.concat is ConcatKind.FINAL:  # its bytes are in place: its parts may not have been dropped
                    await self.service.joins.release_parts(upload)
            if not alone:  # a live replica may be joining a final upload: its joins are its own (docs/deploy.md)
                self._suspects = (set(await storage.partial_ids()), set(await storage.blob_keys()))
                return StartupReport(completed + len(ready), 0, 0)
            renamed, partial_orphans = await self._partial_leftovers(await storage.partial_ids())
            blob_orphans = await self._blob_leftovers(await storage.blob_keys())
            # Last: a join claims its parts again, which must not make them look like orphans to the scans above.
            await self.service.joins.recover(receiving)
        finally:
            await claims.started()
        return StartupReport(completed + len(ready), partial_orphans, blob_orphans, renamed)

    async def _resume(self, stuck: Sequence[Upload]) -> int:
        """Finish the completions whose process died (their claims are free); a live replica's are left to it."""
        resumed = 0
        for upload in stuck:
            if await self.service.resume_completion(upload) is not None:
                resumed += 1
        return resumed

    async def _partial_leftovers(self, partial_ids: Iterable[UploadId]) -> tuple[int, int]:
        """Partial files whose upload no longer takes bytes (read now, after the listing: a file listed before its
        record was inserted is found with it); returns (renamed, removed)."""
        renamed = removed = 0
        for upload_id in partial_ids:
            if await self._takes_bytes(upload_id) or await self._awaits_concat(upload_id):
                continue
            if await self._finish_rename(upload_id):
                renamed += 1
                continue
            await self.service.storage.discard(upload_id)
            removed += 1
        return renamed, removed

    async def _takes_bytes(self, upload_id: UploadId) -> bool:
        try:
            upload = await self.service.meta.get(upload_id)
        except UploadNotFound:
            return False
        return upload.state in (UploadState.RECEIVING, UploadState.COMPLETING)

    async def _blob_leftovers(self, keys: Iterable[str]) -> int:
        known = {blob.key for blob, _, _ in await self.service.meta.blobs()}  # read after the listing, as above
        orphans = [key for key in keys if key not in known]
        for key in orphans:
            log.warning("removing %s: no upload refers to it (left by a crash during a delete)", key)
            await self.service.storage.delete_blob_key(key)
        return len(orphans)

    async def _sweep_leftovers(self) -> None:
        """Files without a record seen at the previous sweep (or a start-up among live replicas) and still without
        one now are leftovers of a dead process; this sweep's suspects are checked at the next."""
        storage = self.service.storage
        partial_suspects, blob_suspects = self._suspects
        partial_ids = await storage.partial_ids()
        await self._partial_leftovers([i for i in partial_ids if i in partial_suspects])
        if blob_suspects:  # only after a start-up among live replicas: listing every stored file is not cheap
            await self._blob_leftovers([key for key in await storage.blob_keys() if key in blob_suspects])
        self._suspects = ({i for i in partial_ids if not await self._takes_bytes(i)}, set())

    async def sweep_orphans(self) -> int:
        """While running: what the storage holds that no record knows (S3 multipart uploads and staging, blobs).
        Only for a backend whose ``partial_ids`` and ``blob_keys`` leave out what is younger than a grace period
        (S3: an upload another replica is creating right now is not taken for an orphan)."""
        meta, storage = self.service.meta, self.service.storage
        live = {u.id for state in (UploadState.RECEIVING, UploadState.COMPLETING) for u in await meta.in_state(state)}
        orphans = [i for i in await storage.partial_ids() if i not in live and not await self._awaits_concat(i)]
        for upload_id in orphans:
            await storage.discard(upload_id)
        known = {blob.key for blob, _, _ in await meta.blobs()}
        strays = [key for key in await storage.blob_keys() if key not in known]
        for key in strays:
            log.warning("removing %s: no upload refers to it", key)
            await storage.delete_blob_key(key)
        return len(orphans) + len(strays)

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
        """Drop unfinished uploads without progress for stale_after seconds, and expired finished ones. Every
        replica sweeps: each upload is looked at again just before it goes (another replica may have recorded
        progress or dropped it meanwhile), and one already gone is skipped."""
        now = time.time() if now is None else now
        meta = self.service.meta
        if isinstance(meta, ClaimingStore):
            dropped = await self._drop_claimed(meta, now)
        else:
            dropped = await self._drop([*await meta.stale(now - self.stale_after), *await meta.expired(now)])
        stuck = [u for u in await meta.in_state(UploadState.COMPLETING) if u.updated_at < now - _TAKEOVER_SECONDS]
        await self._resume(stuck)
        await self._sweep_leftovers()
        await self.service.forget_hashes_of_others()
        return dropped

    async def _drop_claimed(self, meta: ClaimingStore, now: float) -> int:
        """Stale and expired uploads in batches this sweep alone was handed (other replicas sweep others)."""
        dropped, seen = 0, set[UploadId]()
        for claim, moment in ((meta.claim_stale, now - self.stale_after), (meta.claim_expired, now)):
            for _ in range(_CLAIM_BATCHES):
                batch = [upload for upload in await claim(moment, _CLAIM_BATCH) if upload.id not in seen]
                if not batch:  # none left, or only those this sweep skipped (a ``now`` past their new time)
                    break
                seen.update(upload.id for upload in batch)
                dropped += await self._drop(batch)
        return dropped

    async def _drop(self, doomed: Iterable[Upload]) -> int:
        meta = self.service.meta
        dropped = 0
        for listed in doomed:
            try:
                upload = await meta.get(listed.id)
                if upload.updated_at != listed.updated_at or upload.state is not listed.state:
                    continue  # progress, completion or deletion since the listing
                # Unfinished and idle for --stale-after (a tus upload given up on, a PUT whose client left): abandoned.
                await self.service.terminate(upload.id, "expired" if upload.is_complete else "abandoned")
            except (UploadNotFound, UploadGone):
                continue
            dropped += 1
        return dropped

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
