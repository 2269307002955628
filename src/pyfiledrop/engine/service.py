"""UploadService: the one place that uses both the byte store and the record store.

Protocols call ``create``, ``write``, ``status``, ``terminate``; the service enforces limits, keeps
the received ranges, hashes as bytes pass, and completes an upload exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field

from pyfiledrop.domain.checksum import Hasher, new_hasher
from pyfiledrop.domain.ids import UploadId, new_upload_id
from pyfiledrop.domain.mediatype import declared_type
from pyfiledrop.domain.model import CLIENT_ADDRESS_KEY, BlobRef, ConcatKind, Protocol, Upload, UploadState
from pyfiledrop.domain.names import relative_path
from pyfiledrop.domain.ranges import RangeSet
from pyfiledrop.engine import events
from pyfiledrop.engine.activity import Activity, Untracked
from pyfiledrop.engine.bodies import Hashers, drain, limited
from pyfiledrop.engine.claims import Claims, LocalClaims, holding
from pyfiledrop.engine.concat import Joins
from pyfiledrop.engine.hashing import PrefixHashes
from pyfiledrop.engine.leases import Leases, RangeLocks
from pyfiledrop.errors import (
    BadRequest,
    BlobGone,
    ChecksumMismatch,
    ClientDisconnected,
    Forbidden,
    OffsetMismatch,
    PyfiledropError,
    QuotaExceeded,
    StorageFull,
    TooLarge,
    TooManyFiles,
    UploadConflict,
    UploadGone,
    UploadNotFound,
)
from pyfiledrop.meta.base import MetadataStore
from pyfiledrop.storage.base import (
    Lender,
    ProgressCallback,
    Storage,
    ThreadRunner,
    WriteProgress,
)
from pyfiledrop.storage.buffers import BUFFER_BYTES
from pyfiledrop.storage.reserve import SpaceReserve

log = logging.getLogger("pyfiledrop.engine")

WHOLE_MAX_BYTES = BUFFER_BYTES  # a body up to this size may be held whole in memory and stored in one go
WHOLE_BUFFERS = 64  # such bodies held at once (a pooled buffer each); more go the streaming way
_ADMIT = "admit"  # the claim under which creations with an allowance are checked and inserted, across replicas
_ADMIT_WAIT_SECONDS = 30.0  # each holds it for one usage query and one insert
_WRITER_WAIT_SECONDS = 10.0  # as long as the in-process lease waits for a takeover (leases.py)
_COMPLETION_POLLS = 20_000  # × ≤ 0.25 s: over an hour, for a completion that re-reads a huge file


@dataclass(frozen=True, slots=True)
class Limits:
    max_upload_bytes: int
    min_free_bytes: int = 0  # --min-free: keep this much disk free
    quota_bytes: int | None = None  # --quota: all uploads together
    owner_quota_bytes: int | None = None  # --owner-quota: one owner's uploads
    expire_after: float | None = None  # --expire-after: seconds a finished upload is kept


@dataclass(frozen=True, slots=True)
class Allowance:
    """Limits of one creator beyond the server's, checked at creation (a drop link's)."""

    what: str  # for messages: "this drop link"
    max_bytes: int | None = None
    max_files: int | None = None


@dataclass(frozen=True, slots=True)
class NewUpload:
    filename: str | None
    owner: str
    size: int | None
    protocol: Protocol
    content_type: str = "application/octet-stream"
    metadata: dict[str, str] = field(default_factory=dict)
    alias: str | None = None
    concat: ConcatKind = ConcatKind.NONE
    parts: tuple[UploadId, ...] = ()
    expires_at: float | None = None
    allowance: Allowance | None = None
    client_address: str | None = None  # who sent it, as the admin view shows it

    def recorded_metadata(self) -> dict[str, str]:
        """The metadata to store: the client's, and the uploader's address under a key only the server sets."""
        kept = {key: value for key, value in self.metadata.items() if key != CLIENT_ADDRESS_KEY}
        if self.client_address is not None:
            kept[CLIENT_ADDRESS_KEY] = self.client_address
        return kept


@dataclass(frozen=True, slots=True)
class Chunk:
    """How a protocol hands bytes to the engine."""

    offset: int
    body: AsyncIterator[bytes]
    length: int | None = None  # bytes the client says it sends, if it says
    exact_offset: bool = False  # tus: must start where the received prefix ends
    checksum: tuple[str, bytes] | None = None  # (algorithm, digest) of this chunk
    all_or_nothing: bool = False  # Dropzone: a short chunk is not kept


class UploadService:
    def __init__(
        self,
        storage: Storage,
        meta: MetadataStore,
        limits: Limits,
        reserve: SpaceReserve | None = None,
        activity: Activity | None = None,
        claims: Claims | None = None,
    ) -> None:
        self.storage = storage
        # Shared with the other processes (replicas) on the same stores: who completes, writes, admits (claims.py).
        self.claims: Claims = claims if claims is not None else LocalClaims()
        self.activity = activity if activity is not None else Untracked()  # uploads in flight keep the host awake
        self.meta = meta
        self.limits = limits
        self.reserve = reserve  # the database's headroom on a full disk (storage/reserve.py)
        self._hashes = PrefixHashes(storage)
        self._leases = Leases()
        self._writing = RangeLocks()
        self._completions: dict[UploadId, asyncio.Future[Upload]] = {}
        self.joins = Joins(self)  # final uploads of tus concatenation being filled from their parts
        self._admitting = asyncio.Lock()  # allowance checks and inserts, one at a time: no two take the last slot
        self._whole_held = 0  # bodies held whole in memory for create_whole
        # The named tree (engine/views.py): told of each finished upload (cheap: a queue put), and awaited before a
        # record goes (its name goes first).
        self.on_complete: Callable[[Upload], None] | None = None
        self.before_drop: Callable[[Upload], Awaitable[None]] | None = None

    # -- creation -----------------------------------------------------------------------------------------------

    async def create(self, request: NewUpload) -> Upload:
        self._check_room()
        self._check_size(request.size)
        if request.alias is not None:
            with contextlib.suppress(PyfiledropError):
                return await self.meta.get_by_alias(request.alias)
        if request.allowance is None:
            return await self._create(request)
        async with self._admitting, holding(self.claims, _ADMIT, _ADMIT_WAIT_SECONDS, request.allowance.what):
            await self._check_allowance(request, request.allowance)
            return await self._create(request)

    async def alias_exists(self, alias: str) -> bool:
        """Whether a client-chosen id (a Dropzone dzuuid) already names an upload, so ``create`` would find it."""
        try:
            await self.meta.get_by_alias(alias)
        except PyfiledropError:  # as ``create``: whatever the store says, it did not find one
            return False
        return True

    async def _create(self, request: NewUpload) -> Upload:
        if request.concat is not ConcatKind.FINAL:  # a final upload's bytes were counted in its parts
            await self._check_quota(request.owner, request.size or 0)
        now = time.time()
        upload = Upload(
            id=new_upload_id(), filename=relative_path(request.filename), owner=request.owner, size=request.size,
            protocol=request.protocol, created_at=now, updated_at=now, alias=request.alias,
            content_type=declared_type(request.content_type), metadata=request.recorded_metadata(),
            concat=request.concat, parts=request.parts, expires_at=request.expires_at,
        )  # fmt: skip
        await self.storage.allocate(upload.id, upload.size)
        stored = await self.meta.insert(upload)
        if stored.id != upload.id:  # a parallel first chunk created it first
            await self.storage.discard(upload.id)
            return stored
        events.upload("created", stored)
        if upload.size == 0:
            stored = await self._complete(stored)
        return stored

    @contextlib.contextmanager
    def whole_buffer(self, size: int) -> Iterator[memoryview | None]:
        """Room to hold a small body whole (for ``create_whole``), or None: too big, or too many held already."""
        if size > WHOLE_MAX_BYTES or self._whole_held >= WHOLE_BUFFERS:
            yield None
            return
        self._whole_held += 1
        try:
            with self.storage.whole_buffer(size) as view:
                yield view
        finally:
            self._whole_held -= 1

    async def create_whole(
        self, request: NewUpload, data: memoryview, run: ThreadRunner, lend: Lender | None = None
    ) -> Upload:
        """A small upload that comes whole in its first request (PUT, tus creation-with-upload of the whole file):
        ``run`` reads the body into ``data`` (from ``whole_buffer``) and, in the same worker thread, it is hashed,
        written and renamed into place — or the storage's helper process does all that, given ``lend``; then it is
        recorded in one transaction — a third of the thread hand-offs of create/write/complete, which is what small
        files cost. Refused (size, quota) before the body is read. A crash before the record leaves only a file
        that start-up removes; the client had no answer, so it sends again."""
        size = len(data)
        self._check_room()
        self._check_size(size)
        if request.allowance is not None:
            raise ValueError("an upload with an allowance is created with create(): its check needs the record")
        self.activity.begin("upload")
        try:
            return await self._create_whole(request, data, run, lend)
        finally:
            self.activity.end("upload")

    async def _create_whole(
        self, request: NewUpload, data: memoryview, run: ThreadRunner, lend: Lender | None
    ) -> Upload:
        size = len(data)
        await self._check_quota(request.owner, size)
        now = time.time()
        upload = Upload(
            id=new_upload_id(), filename=relative_path(request.filename), owner=request.owner, size=size,
            protocol=request.protocol, created_at=now, updated_at=now,
            content_type=declared_type(request.content_type), metadata=request.recorded_metadata(),
            expires_at=request.expires_at, received=RangeSet().add(0, size),
        )  # fmt: skip
        stored = await self.storage.store_whole(upload.id, upload.filename, data, run, lend)
        blob, sha256 = stored.blob, stored.sha256
        expires_at = time.time() + self.limits.expire_after if self.limits.expire_after else None
        # The deduplication lookup happens in the recording transaction, off the event loop.
        try:
            done = await self.meta.insert_complete(upload, sha256, blob, expires_at, reusable=self.storage.holds)
        except PyfiledropError:  # not recorded (a full disk): a file nobody would ever find
            await self.storage.delete_blob(blob)
            raise
        deduplicated = done.blob_key != blob.key
        if deduplicated:
            await self.storage.delete_blob(blob)
        events.completed(done, deduplicated=deduplicated)
        if self.on_complete is not None:
            self.on_complete(done)
        return done

    def _check_room(self) -> None:
        """While the disk reserve is given to the database (the disk filled up), uploads take no bytes: what space
        is left is for recording deletions. It is made again, and uploads go on, once space has been freed."""
        if self.reserve is not None and not self.reserve.ready():
            raise StorageFull("the server's disk is full: uploads wait until space is freed (deleting still works)")

    def _check_size(self, size: int | None) -> None:
        if size is None:
            return
        if size < 0:
            raise BadRequest(f"upload size {size} is negative")
        if size > self.limits.max_upload_bytes:
            raise TooLarge(self.limits.max_upload_bytes, size)
        free = self.storage.free_bytes()
        if free is not None and size > free - self.limits.min_free_bytes:
            raise StorageFull(f"{size} bytes do not fit: {max(free - self.limits.min_free_bytes, 0)} bytes are free")

    async def _check_allowance(self, request: NewUpload, allowance: Allowance) -> None:
        usage = await self.meta.usage(request.owner)
        # A tus part is not a file yet (usage.files does not count parts), but it is refused as early when no
        # file could be made of it: the whole file is not sent only to be refused at the final request.
        if allowance.max_files is not None and usage.files + 1 > allowance.max_files:
            raise TooManyFiles(allowance.what, allowance.max_files)
        if allowance.max_bytes is None or request.concat is ConcatKind.FINAL:
            return
        if request.size is None:
            raise BadRequest(f"{allowance.what} has a size limit: say the upload's size when creating it")
        if usage.owner + request.size > allowance.max_bytes:
            raise QuotaExceeded(allowance.what, allowance.max_bytes, usage.owner, request.size)

    async def _check_quota(self, owner: str, size: int) -> None:
        limits = self.limits
        if limits.quota_bytes is None and limits.owner_quota_bytes is None:
            return
        usage = await self.meta.usage(owner)
        if limits.quota_bytes is not None and usage.total + size > limits.quota_bytes:
            raise QuotaExceeded("the server's quota", limits.quota_bytes, usage.total, size)
        if limits.owner_quota_bytes is not None and usage.owner + size > limits.owner_quota_bytes:
            raise QuotaExceeded("your quota", limits.owner_quota_bytes, usage.owner, size)

    async def concatenate(self, request: NewUpload, part_ids: Sequence[UploadId]) -> Upload:
        """tus concatenation: a final upload made of finished partial uploads, in order (engine/concat.py)."""
        return await self.joins.concatenate(request, part_ids)

    # -- writing ------------------------------------------------------------------------------------------------

    async def write(self, upload_id: UploadId, chunk: Chunk) -> Upload:
        self.activity.begin("upload")  # two additions on the loop: the hold is taken on transitions only
        try:
            return await self._write_leased(upload_id, chunk)
        finally:
            self.activity.end("upload")

    async def _write_leased(self, upload_id: UploadId, chunk: Chunk) -> Upload:
        if chunk.exact_offset:
            async with self._leases.hold(upload_id) as lease, self._writer_claim(upload_id):
                try:
                    return await self._write(upload_id, chunk)
                except asyncio.CancelledError:
                    if not lease.taken_over:
                        raise
                    task = asyncio.current_task()
                    if task is not None:
                        task.uncancel()
                    raise ClientDisconnected() from None
        return await self._write(upload_id, chunk)

    async def _write(self, upload_id: UploadId, chunk: Chunk) -> Upload:
        while True:
            upload = await self.meta.get(upload_id)
            self._check_writable(upload, chunk)
            if upload.state is not UploadState.RECEIVING:
                await drain(chunk.body)  # a retried chunk of a finished upload: accepted, nothing to do
                return await self.wait_complete(upload)
            start, end = chunk.offset, self._chunk_end(upload, chunk)
            if chunk.length and upload.received.covers(start, end):
                # A retry of bytes already kept: acknowledged bytes are never written twice, so a retry that
                # differs cannot change a file whose prefix has already been hashed.
                await drain(limited(chunk.body, chunk.length, True, self.limits.max_upload_bytes))
                # Every byte is there (the last chunk retried at another replica): answer with the completion.
                return await self._complete(upload) if upload.all_bytes_received else upload
            if upload.received.overlaps(start, end):
                raise UploadConflict(
                    f"bytes {start}-{end} overlap bytes already received ({upload.received.to_text()}): "
                    "send only the missing ranges"
                )
            busy = None if chunk.exact_offset else self._writing.busy(upload_id, start, end)
            if busy is None:
                break
            await busy.wait()
        async with self._writing.hold(upload_id, start, end):
            return await self._write_bytes(upload, chunk)

    def _writer_claim(self, upload_id: UploadId) -> contextlib.AbstractAsyncContextManager[None]:
        """An appending writer's claim across replicas; a request at another replica still writing (its client
        gone, its socket not yet timed out) is waited for as the in-process lease does, then 423."""
        return holding(self.claims, f"write:{upload_id}", _WRITER_WAIT_SECONDS, upload_id)

    def _chunk_end(self, upload: Upload, chunk: Chunk) -> int:
        if chunk.length is not None:
            return chunk.offset + chunk.length
        return upload.size if upload.size is not None else self.limits.max_upload_bytes

    async def _write_bytes(self, upload: Upload, chunk: Chunk) -> Upload:
        self._check_room()
        upload_id = upload.id
        end_limit = upload.size if upload.size is not None else self.limits.max_upload_bytes
        claim = None if upload.concat is ConcatKind.PARTIAL else self._hashes.claim(upload_id, chunk.offset)
        checksum = new_hasher(chunk.checksum[0]) if chunk.checksum else None
        hashers = Hashers(claim, checksum)
        progress = WriteProgress()
        room = end_limit - chunk.offset if chunk.length is None else chunk.length  # never past what it announced
        body = limited(chunk.body, room, upload.size is not None or chunk.length is not None,
                        self.limits.max_upload_bytes)  # fmt: skip
        failure: BaseException | None = None
        checkpoint = None if chunk.checksum or chunk.all_or_nothing else self._checkpointer(upload_id, chunk.offset)
        try:
            observe = hashers.observe if claim is not None or checksum is not None else None  # None: no bytes to see
            await self.storage.write(upload_id, chunk.offset, body, observe, checkpoint, progress)
        except (PyfiledropError, asyncio.CancelledError) as exc:
            failure = exc
        except BaseException:  # an unexpected error (EIO …): the hasher must not stay claimed by this write
            if claim is not None:
                claim.rollback()
            raise
        end = self._chunk_end(upload, chunk)
        try:
            keep = self._bytes_to_keep(progress.written, chunk, checksum, failure)
            if keep:
                upload = await self.meta.record_range(upload_id, chunk.offset, chunk.offset + keep)
        except BaseException as exc:
            if claim is not None:
                claim.rollback()
            if isinstance(exc, PyfiledropError):
                await self._release_unrecorded(upload_id, chunk.offset, end)
            raise
        if claim is not None:
            claim.keep(chunk.offset + keep)
        if failure is not None:
            await self._release_unrecorded(upload_id, chunk.offset + keep, end)
            raise failure
        return await self._after_write(upload)

    async def _release_unrecorded(self, upload_id: UploadId, start: int, end: int) -> None:
        """After a failed write: give back the space of the bytes in ``[start, end)`` that reached the file but
        will not be recorded (the sender left, the disk or the database filled up, a checksum did not match), so a
        full disk is not kept full by bytes nobody will ever read. Only this request writes there (it holds the
        range); what its checkpoints recorded on the way stays. Not while other replicas share the storage: one of
        them may be writing the same bytes (a retried chunk sent to it) right now."""
        if not await self.claims.alone():
            return
        try:
            received = (await self.meta.get(upload_id)).received
            start = next((stop for first, stop in received if first <= start < stop), start)
            tail = not any(stop > start for _, stop in received)
            if not await self.storage.release(upload_id, start, end, tail=tail):
                log.info("could not give back the unrecorded bytes %d-%d of %s", start, end, upload_id)
        except (OSError, PyfiledropError) as exc:  # the write's own failure is what the client hears of
            log.warning("giving back the unrecorded bytes of %s failed: %s", upload_id, exc)

    def _checkpointer(self, upload_id: UploadId, offset: int) -> ProgressCallback:
        """A long streaming request records its progress as it goes, so a crash keeps what arrived."""

        async def record(written: int) -> None:
            await self.meta.record_range(upload_id, offset, offset + written)

        return record

    def _check_writable(self, upload: Upload, chunk: Chunk) -> None:
        if upload.concat is ConcatKind.FINAL:
            raise Forbidden("a final concatenated upload cannot be written to")
        if upload.state is UploadState.TERMINATED:
            raise UploadGone(upload.id)
        if chunk.offset < 0:
            raise BadRequest(f"offset {chunk.offset} is negative")
        if upload.size is not None and chunk.offset + (chunk.length or 0) > upload.size:
            raise TooLarge(upload.size, chunk.offset + (chunk.length or 0))
        if chunk.exact_offset and chunk.offset != upload.offset:
            raise OffsetMismatch(upload.offset, chunk.offset)

    def _bytes_to_keep(self, written: int, chunk: Chunk, checksum: Hasher | None, failure: BaseException | None) -> int:
        if chunk.checksum is not None and checksum is not None:
            if failure is not None:
                return 0  # a chunk that cannot be verified is not kept
            if checksum.digest() != chunk.checksum[1]:
                raise ChecksumMismatch(chunk.checksum[0])
        if chunk.length is not None and written != chunk.length and (chunk.all_or_nothing or failure is None):
            if failure is None:
                raise BadRequest(f"the body had {written} bytes, not the {chunk.length} announced")
            return 0
        if isinstance(failure, BadRequest | TooLarge) or (chunk.all_or_nothing and failure is not None):
            return 0  # a refused body changes nothing; a cut-off one keeps what arrived
        return written

    async def _after_write(self, upload: Upload) -> Upload:
        if upload.all_bytes_received:
            return await self._complete(upload)
        if upload.concat is not ConcatKind.PARTIAL and upload.offset > 0:
            # Out-of-order bytes: hash behind the prefix now, while they are in the page cache.
            asyncio.get_running_loop().create_task(self._hashes.catch_up(upload.id, upload.offset))
        return upload

    async def declare_size(self, upload_id: UploadId, size: int) -> Upload:
        self._check_size(size)
        upload = await self.meta.get(upload_id)
        if upload.received.total > size or (upload.received.spans and upload.received.spans[-1][1] > size):
            raise BadRequest(f"{size} bytes is less than what was already received")
        upload = await self.meta.set_size(upload_id, size)
        return await self._after_write(upload) if upload.all_bytes_received else upload

    # -- completion ---------------------------------------------------------------------------------------------

    async def complete(self, upload: Upload, sha256: str) -> Upload:
        """Complete an upload whose bytes are all recorded and whose sha256 is already known (a joined final upload:
        its parts were hashed while they were copied)."""
        return await self._complete(upload, sha256)

    async def _complete(self, upload: Upload, sha256: str | None = None) -> Upload:
        """Complete exactly once: the claim first (held to the end, so a ``completing`` record with a free claim
        is known to be a dead process's), then the conditional transition in the database."""
        if not await self.claims.take(upload.id):
            return await self._await_completion(upload.id)
        try:
            return await self._complete_claimed(upload, sha256)
        finally:
            await self.claims.give_back(upload.id)

    async def _complete_claimed(self, upload: Upload, sha256: str | None) -> Upload:
        try:
            upload = await self.meta.transition(upload.id, UploadState.COMPLETING, expect=UploadState.RECEIVING)
        except UploadConflict:  # finished meanwhile, or left ``completing`` by a dead process (its claim was free)
            return await self.meta.get(upload.id)
        future = asyncio.get_running_loop().create_future()
        self._completions[upload.id] = future
        try:
            done = await self._finish(upload, sha256)
            future.set_result(done)
            return done
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it, no "never retrieved" warning
            raise
        finally:
            self._completions.pop(upload.id, None)

    async def _finish(self, upload: Upload, sha256: str | None) -> Upload:
        size = upload.size or 0
        if upload.concat is ConcatKind.PARTIAL:
            return await self.meta.complete(upload.id, "", None, None)
        await self.storage.seal(upload.id, size)  # S3: CompleteMultipartUpload, so bytes not hashed yet can be read
        if sha256 is None:
            sha256 = await self._hashes.digest(upload.id, size)
        self._hashes.forget(upload.id)
        expires_at = time.time() + self.limits.expire_after if self.limits.expire_after else None
        same = await self._existing_blob(sha256, size)
        done = None
        if same is not None:  # deduplicated: one more reference, the new copy goes
            try:
                done = await self.meta.complete(upload.id, sha256, same, expires_at, shared=True)
            except BlobGone:  # its last other upload was deleted meanwhile: keep this copy after all
                same = None
            else:
                await self.storage.discard(upload.id)
        if done is None:
            blob = await self.storage.finalize(upload.id, upload.filename, size)
            done = await self.meta.complete(upload.id, sha256, blob, expires_at)
        events.completed(done, deduplicated=same is not None)
        if self.on_complete is not None:
            self.on_complete(done)
        return done

    async def _existing_blob(self, sha256: str, size: int) -> BlobRef | None:
        for blob in await self.meta.find_blobs(sha256):
            if blob.size == size and await self.storage.exists(blob):
                return blob
        return None

    async def wait_complete(self, upload: Upload) -> Upload:
        """For a request that arrives while another finishes the upload: answer with the result."""
        future = self._completions.get(upload.id)
        if future is not None:
            return await asyncio.shield(future)
        if upload.state is UploadState.COMPLETING:  # at another replica
            return await self._await_completion(upload.id)
        return upload

    async def _await_completion(self, upload_id: UploadId) -> Upload:
        """Another task or replica holds the upload's claim: it is completing it. Wait for its result (its
        future here; the record's state elsewhere) until the claim is free, then answer with the record."""
        delay = 0.005
        for _ in range(_COMPLETION_POLLS):
            future = self._completions.get(upload_id)
            if future is not None:
                return await asyncio.shield(future)
            upload = await self.meta.get(upload_id)
            if upload.state in (UploadState.COMPLETE, UploadState.TERMINATED):
                return upload
            if await self.claims.take(upload_id):  # nobody completes it (any more): say what the record says
                await self.claims.give_back(upload_id)
                if upload.state is UploadState.RECEIVING and upload.all_bytes_received:
                    return await self._complete(upload)  # its completer failed before the transition
                return upload
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.25)
        return await self.meta.get(upload_id)

    async def resume_completion(self, upload: Upload) -> Upload | None:
        """After a crash: finish an upload that had all its bytes but was cut off while completing. None: its
        claim is held — a live process (another replica) is completing it."""
        if not await self.claims.take(upload.id):
            return None
        try:
            try:
                upload = await self.meta.transition(upload.id, UploadState.RECEIVING, expect=UploadState.COMPLETING)
            except UploadConflict:  # finished (or deleted) since it was listed
                return None
            if upload.concat is not ConcatKind.PARTIAL:
                await self.storage.unfinalize(upload.id, upload.filename)  # killed after the rename: hash it again
            return await self._complete_claimed(upload, None)
        finally:
            await self.claims.give_back(upload.id)

    async def forget_hashes_of_others(self) -> None:
        """Drop the hash states of uploads another replica completed or deleted: this process, which received some of
        their bytes, will never complete them (and so never forgets them otherwise)."""
        for upload_id in self._hashes.held():
            if upload_id in self._completions:
                continue
            try:
                state = (await self.meta.get(upload_id)).state
            except UploadNotFound:
                state = UploadState.TERMINATED
            if state is not UploadState.RECEIVING:
                self._hashes.forget(upload_id)

    async def resume_receiving(self, upload: Upload) -> Upload:
        """After a crash: finish an upload whose last bytes were recorded just before the kill."""
        return await self._after_write(upload)

    # -- reading and removal ------------------------------------------------------------------------------------

    async def status(self, upload_id: UploadId) -> Upload:
        """The upload, or UploadGone once it is terminated or its expiry has come (one clock: ``time.time``, as the
        sweep's), so no read sees an expired file while it waits for the sweep to free its bytes."""
        upload = await self._existing(upload_id)
        if upload.concat is ConcatKind.FINAL and self.joins.joining(upload_id):
            upload = await self.joins.wait(upload)  # being joined from its parts: about a second per GiB
            if upload.state is UploadState.TERMINATED:  # the join failed
                raise UploadGone(upload_id)
        if upload.expired(time.time()):
            raise UploadGone(upload_id)
        return upload

    async def _existing(self, upload_id: UploadId) -> Upload:
        upload = await self.meta.get(upload_id)
        if upload.state is UploadState.TERMINATED:
            raise UploadGone(upload_id)
        return upload

    async def terminate(self, upload_id: UploadId, why: str | None = None) -> None:
        """Delete an upload; ``why`` names the event logged (default: cancelled when unfinished, else deleted)."""
        upload = await self._existing(upload_id)  # also of an expired upload: how the sweep frees its bytes
        await self._drop(upload)
        events.upload(why or ("deleted" if upload.is_complete else "cancelled"), upload, received=upload.offset)

    async def abandon(self, upload_id: UploadId) -> None:
        """Undo an upload made by a request that then failed, when that request was its only way in (a PUT, a
        whole Dropzone form): nobody was told its id, so neither its bytes nor its record may stay behind for
        --stale-after to find."""
        try:
            upload = await self.meta.get(upload_id)
            await self._drop(upload)
            await self.meta.purge(upload_id)
        except UploadNotFound:
            return
        except (OSError, PyfiledropError) as exc:  # the request's own failure is what its client hears of
            log.warning("could not remove the abandoned upload %s: %s", upload_id, exc)
            return
        events.upload("abandoned", upload, received=upload.offset)

    async def drop(self, upload: Upload) -> None:
        """Remove an upload's record and bytes without an event (a used tus part)."""
        await self._drop(upload)

    async def _drop(self, upload: Upload) -> None:
        """The record first, then the bytes: a crash in between leaves an orphan file, found at start-up."""
        self._hashes.forget(upload.id)
        if self.before_drop is not None:
            await self.before_drop(upload)
        last_reference = await self.meta.terminate(upload.id)
        await self.storage.discard(upload.id)
        if last_reference is not None:
            await self.storage.delete_blob(last_reference)
        if self.reserve is not None:
            self.reserve.ready()  # space was freed: the database's headroom first, then uploads go on

    async def set_expiry(self, upload_id: UploadId, expires_at: float | None) -> Upload:
        upload = await self.status(upload_id)
        if upload.state is not UploadState.COMPLETE:
            raise UploadConflict("only a finished upload can be given an expiry")
        return await self.meta.update_fields(upload_id, expires_at=expires_at)
