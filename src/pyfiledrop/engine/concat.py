"""tus concatenation whose final request does not wait for the bytes.

A final upload (``Upload-Concat: final;…``) is recorded at once; a background task (a *join*) fills its file from
the parts, hashing each block on its way (the storage reads each part once; a storage that copies without showing
the bytes, e.g. a server-side copy, has the parts read back for the hash — they are finished and recorded, so their
bytes never change, and hashing them is hashing the final file), then completes it with that sha256 (deduplication and
the named tree as for any upload) and drops the parts. The final request waits for the join when it is small
(``INLINE_BYTES``) or quick (``ANSWER_WITHIN``); otherwise it answers 201 at once, the final upload stays
``receiving``, and whoever asks for it (HEAD, the API, a download) waits for the join, up to ``JOIN_WAIT``; a HEAD
still unanswered then has no ``Upload-Offset`` (the tus concatenation extension: "SHOULD NOT contain the
Upload-Offset header unless the concatenation has been successfully finished"), a download is a 409. tus-js-client
and Uppy need only the 201 and its Location.

Why a join in the background and not a final made of its parts' files: every reader of a blob (sendfile, the named
tree's hard links, video jobs) wants one file, and no file system joins files of any length without moving bytes
(clones need block-aligned lengths; tus-js-client cuts a file at ``size // parts``). A crash or stop during a join
leaves the parts claimed and the final receiving: start-up gives the parts back and joins again (``recover``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.domain.model import ConcatKind, Upload, UploadState
from pyfiledrop.errors import BadRequest, PyfiledropError, UploadConflict

if TYPE_CHECKING:
    from pyfiledrop.engine.service import NewUpload, UploadService

log = logging.getLogger("pyfiledrop.engine")

INLINE_BYTES = 32 << 20  # a final upload this small is joined before the answer: it takes a few milliseconds
ANSWER_WITHIN = 0.05  # seconds a larger join may take before the answer; past them it goes on in the background
JOIN_WAIT = 30.0  # seconds a HEAD, status or download of a final upload being joined waits for it (~1 s per GiB)


class Joins:
    """The joins of final uploads that are running in this process."""

    def __init__(self, service: UploadService) -> None:
        self._service = service
        self._tasks: dict[UploadId, asyncio.Task[Upload]] = {}

    async def concatenate(self, request: NewUpload, part_ids: Sequence[UploadId]) -> Upload:
        """Record the final upload made of ``part_ids`` in order and start its join; the final upload, complete when
        the join finished within the answer's budget, else still receiving."""
        service = self._service
        if len(set(part_ids)) != len(part_ids):
            raise BadRequest("Upload-Concat names the same partial upload twice")
        parts = [await service.meta.get(part_id) for part_id in part_ids]
        for part in parts:
            _check_part(part, request.owner)
        claimed = await self._claim(parts)
        size = sum(part.size or 0 for part in claimed)
        try:
            final = await service.create(replace(request, size=size, concat=ConcatKind.FINAL, parts=tuple(part_ids)))
        except BaseException:
            await self._give_back(claimed)
            raise
        if final.state is not UploadState.RECEIVING:
            await self._release(claimed)
            return final
        task = self._start(final, claimed)
        budget = None if size <= INLINE_BYTES else ANSWER_WITHIN
        done, _ = await asyncio.wait({task}, timeout=budget)  # on a timeout the join goes on
        if task in done:
            return task.result()
        log.info("final upload %s (%d bytes): answered, its join goes on in the background", final.id, size)
        return final

    async def wait(self, upload: Upload) -> Upload:
        """The upload once its join (if one is running here) has ended, or as it stands after ``JOIN_WAIT``."""
        task = self._tasks.get(upload.id)
        if task is not None:
            await asyncio.wait({task}, timeout=JOIN_WAIT)
        return await self._service.meta.get(upload.id)

    def joining(self, upload_id: UploadId) -> bool:
        return upload_id in self._tasks

    async def recover(self, receiving: Sequence[Upload]) -> int:
        """At start-up, after interrupted completions were resumed (which gives claimed parts back): join again
        every final upload that a crash or a stop cut off before its bytes were in place. Returns how many."""
        started = 0
        for final in receiving:
            if final.concat is not ConcatKind.FINAL or final.all_bytes_received:
                continue
            try:
                parts = [await self._service.meta.get(part_id) for part_id in final.parts]
                for part in parts:
                    _check_part(part, final.owner)
                claimed = await self._claim(parts)
            except PyfiledropError as exc:  # a part went missing: this final upload can never be made
                log.warning("final upload %s cannot be joined again (%s): removed", final.id, exc)
                await self._service.terminate(final.id, "abandoned")
                continue
            log.info("final upload %s: joining its %d parts again after a restart", final.id, len(claimed))
            self._start(final, claimed)
            started += 1
        return started

    async def release_parts(self, final: Upload) -> None:
        """At start-up: a final upload completed (or resumed) while its parts were not dropped yet: drop them."""
        for part_id in final.parts:
            try:
                part = await self._service.meta.get(part_id)
            except PyfiledropError:
                continue
            if part.state is not UploadState.TERMINATED:
                await self._service.drop(part)

    async def close(self) -> None:
        """Stop the joins running here: start-up joins them again (``recover``)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)

    # -- the join -------------------------------------------------------------------------------------------------

    def _start(self, final: Upload, parts: list[Upload]) -> asyncio.Task[Upload]:
        task = asyncio.get_running_loop().create_task(self._join(final, parts), name=f"join {final.id}")
        self._tasks[final.id] = task
        task.add_done_callback(lambda done: self._ended(final.id, done))
        return task

    def _ended(self, final_id: UploadId, task: asyncio.Task[Upload]) -> None:
        self._tasks.pop(final_id, None)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("final upload %s could not be joined: %s", final_id, exc)

    async def _join(self, final: Upload, parts: list[Upload]) -> Upload:
        service, size = self._service, final.size or 0
        try:
            sha256 = await self._fill(final, parts)
            recorded = await service.meta.record_range(final.id, 0, size)
            done = await service.complete(recorded, sha256)
        except asyncio.CancelledError:
            raise  # stopped: the parts stay claimed and the final receiving, for ``recover``
        except BaseException:
            # Nothing half-made stays: the final upload goes (its HEAD then says 410), the parts come back for a retry.
            await self._give_back(parts)
            await service.terminate(final.id, "abandoned")
            raise
        await self._release(parts)
        return done

    async def _fill(self, final: Upload, parts: Sequence[Upload]) -> str:
        """The final upload's bytes in place; their sha256, seen on the way when the storage can show them."""
        storage = self._service.storage
        hasher = hashlib.sha256(usedforsecurity=False)
        if not await storage.concat(final.id, [(part.id, part.size or 0) for part in parts], hasher.update):
            for part in parts:  # the bytes were copied without passing here: read the parts (they never change)
                if part.size:
                    await storage.scan_partial(part.id, 0, part.size, hasher.update)
        return hasher.hexdigest()

    # -- the parts ------------------------------------------------------------------------------------------------

    async def _claim(self, parts: Sequence[Upload]) -> list[Upload]:
        """Take the parts atomically (COMPLETE → COMPLETING), so two final requests cannot both use them.

        The parts' claims are held until the join ends: they tell the other replicas' recovery that a live process
        uses them (engine/claims.py); a stopped or killed process gives them up with its life."""
        meta, claims = self._service.meta, self._service.claims
        claimed: list[Upload] = []
        taken: list[UploadId] = []
        try:
            for part in parts:
                if not await claims.take(part.id):
                    raise UploadConflict(f"partial upload {part.id} is in use by another request")
                taken.append(part.id)
                claimed.append(await meta.transition(part.id, UploadState.COMPLETING, expect=UploadState.COMPLETE))
        except UploadConflict:
            await self._give_back(claimed)
            for part_id in taken[len(claimed) :]:
                await claims.give_back(part_id)
            raise UploadConflict("these partial uploads are being concatenated by another request") from None
        return claimed

    async def _give_back(self, parts: Sequence[Upload]) -> None:
        for part in parts:  # the client may try again
            await self._service.meta.transition(part.id, UploadState.COMPLETE, expect=UploadState.COMPLETING)
            await self._service.claims.give_back(part.id)

    async def _release(self, parts: Sequence[Upload]) -> None:
        await self._give_back(parts)
        for part in parts:
            await self._service.drop(part)


def _check_part(part: Upload, owner: str) -> None:
    if part.concat is not ConcatKind.PARTIAL:
        raise BadRequest(f"upload {part.id} is not a partial upload")
    if part.owner != owner and part.owner:
        raise BadRequest(f"upload {part.id} belongs to someone else")
    if part.state is UploadState.TERMINATED:
        raise BadRequest(f"partial upload {part.id} has been deleted or already used")
    if not part.is_complete or part.size is None:
        raise BadRequest(f"partial upload {part.id} is not finished")
