"""Property: any interleaving of chunk writes, retries, cut-off bodies, crashes and restarts yields the exact file.

Two uploads of the same bytes go through the engine (UploadService on a real folder and SQLite file): upload 0 takes
random-access chunks at any offset, all-or-nothing (as Dropzone), upload 1 only appends at its offset (as tus PATCH,
with or without a length or a checksum). Hypothesis picks the operations on either; a crash (enginekit.Crash) kills
the "process" mid-body, and the next operation runs on a freshly opened engine after start-up recovery. After every
operation: each range the client was answered is recorded, nothing is recorded that was not sent, and every recorded
byte on disk is right (crashkit.check_storage). At the end every missing range is sent; both uploads must be complete,
deduplicated onto one file that has exactly the bytes, with their sha256.

A chunk that half overlaps bytes already received is refused (409) and changes nothing; one wholly inside them is
answered without being written. Retries with *different* bytes and chunks longer than they say have their own tests
at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyfiledrop.domain.model import Protocol, Upload, UploadState
from pyfiledrop.domain.ranges import RangeSet
from pyfiledrop.engine.service import Chunk
from pyfiledrop.errors import (
    BadRequest,
    ChecksumMismatch,
    ClientDisconnected,
    OffsetMismatch,
    TooLarge,
    UploadConflict,
)
from tests.faults.crashkit import Content, check_storage
from tests.faults.enginekit import Crash, Engine, body, new, running, sha256

RANDOM_ACCESS, APPEND = 0, 1
KINDS = {
    RANDOM_ACCESS: ["write", "write", "retry", "cut", "crash", "restart"],
    APPEND: ["append", "chunked", "checksum", "bad-checksum", "stale", "cut", "crash", "restart"],
}


@dataclass(frozen=True)
class Op:
    upload: int  # RANDOM_ACCESS or APPEND
    kind: str
    a: int  # where, in thousandths of the file
    b: int  # how long, in thousandths
    c: int  # where in the body it is cut, in thousandths of the body


ops = st.integers(0, 1).flatmap(
    lambda upload: st.builds(
        Op, st.just(upload), st.sampled_from(KINDS[upload]), st.integers(0, 1000), st.integers(1, 1000),
        st.integers(0, 999),
    )
)  # fmt: skip


@dataclass
class Client:
    """What the client of one upload knows: ranges answered with success, and every byte it ever handed over."""

    upload_id: str
    acked: RangeSet = field(default_factory=RangeSet)
    sent: RangeSet = field(default_factory=RangeSet)


class Player:
    def __init__(self, root: Path, data: bytes) -> None:
        self.root = root
        self.data = data
        self.content = Content(0, data, sha256(data))
        self.clients: list[Client] = []
        self._engine_cm: AbstractAsyncContextManager[Engine] | None = None
        self.engine: Engine | None = None
        self.restarts = 0

    @property
    def size(self) -> int:
        return len(self.data)

    async def start(self) -> None:
        self._engine_cm = running(self.root)
        self.engine = await self._engine_cm.__aenter__()

    async def stop(self) -> None:
        if self._engine_cm is not None:
            await self._engine_cm.__aexit__(None, None, None)
        self._engine_cm = self.engine = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()
        self.restarts += 1

    async def status(self, which: int) -> Upload:
        assert self.engine is not None
        return await self.engine.service.status(self.clients[which].upload_id)  # type: ignore[arg-type]

    async def create(self) -> None:
        assert self.engine is not None
        for protocol in (Protocol.DROPZONE, Protocol.TUS):
            upload = await self.engine.service.create(new(0, self.size, protocol))
            self.clients.append(Client(upload.id))

    async def write(self, which: int, chunk: Chunk, start: int, end: int) -> Upload:
        assert self.engine is not None
        client = self.clients[which]
        client.sent = client.sent.add(start, end)
        upload = await self.engine.service.write(client.upload_id, chunk)  # type: ignore[arg-type]
        client.acked = client.acked.add(start, end)
        return upload

    # -- one operation ------------------------------------------------------------------------------------------

    async def play(self, op: Op) -> None:
        if op.kind == "restart":
            await self.restart()
            return
        if op.upload == RANDOM_ACCESS:
            await self.random_access(op)
        else:
            await self.append(op)

    async def random_access(self, op: Op) -> None:
        client = self.clients[RANDOM_ACCESS]
        start = op.a * self.size // 1000
        end = min(self.size, start + max(1, op.b * self.size // 1000))
        if op.kind == "retry" and client.acked.spans:  # send again a range that was answered
            start, end = client.acked.spans[op.a % len(client.acked.spans)]
        piece = self.data[start:end]
        before = (await self.status(RANDOM_ACCESS)).received
        if before.overlaps(start, end) and not before.covers(start, end):  # half new, half received: refused
            with pytest.raises(UploadConflict):
                await self.engine.service.write(client.upload_id, Chunk(start, body(piece), len(piece)))  # type: ignore[union-attr,arg-type]
            assert (await self.status(RANDOM_ACCESS)).received == before, "a refused chunk changes nothing"
            return
        if op.kind in ("write", "retry"):
            await self.write(RANDOM_ACCESS, Chunk(start, body(piece), len(piece), all_or_nothing=True), start, end)
            return
        cut = op.c * len(piece) // 1000
        error: BaseException = Crash() if op.kind == "crash" else ClientDisconnected()
        chunk = Chunk(start, body(piece, fail_after=cut, exc=error), len(piece), all_or_nothing=True)
        if cut == len(piece):  # nothing to cut
            return
        client.sent = client.sent.add(start, start + cut)
        with pytest.raises(type(error)):
            await self.engine.service.write(client.upload_id, chunk)  # type: ignore[union-attr,arg-type]
        if op.kind == "crash":
            await self.restart()
        after = (await self.status(RANDOM_ACCESS)).received
        assert after == before, "a chunk cut off is not kept (all or nothing)"

    async def append(self, op: Op) -> None:
        client = self.clients[APPEND]
        upload = await self.status(APPEND)
        offset = upload.offset
        if upload.state is not UploadState.RECEIVING:
            return
        end = min(self.size, offset + max(1, op.b * self.size // 1000))
        piece = self.data[offset:end]
        if op.kind in ("append", "chunked", "checksum"):
            length = None if op.kind == "chunked" else len(piece)
            digest = ("sha1", hashlib.sha1(piece).digest()) if op.kind == "checksum" else None
            chunk = Chunk(offset, body(piece), length, exact_offset=True, checksum=digest)
            done = await self.write(APPEND, chunk, offset, end)
            assert done.offset >= end
            return
        if op.kind == "stale":  # a retry from a client that missed an answer: another offset
            wrong = op.a % offset if offset and op.a % 2 else offset + 1 + op.a
            await self.refused(Chunk(wrong, body(piece), len(piece), exact_offset=True), offset)
            return
        if op.kind == "bad-checksum":
            digest = hashlib.sha1(piece + b"x").digest()
            await self.refused(Chunk(offset, body(piece), len(piece), exact_offset=True, checksum=("sha1", digest)),
                               offset)  # fmt: skip
            return
        cut = op.c * len(piece) // 1000
        if cut == len(piece):
            return
        error_: BaseException = Crash() if op.kind == "crash" else ClientDisconnected()
        client.sent = client.sent.add(offset, offset + cut)
        chunk = Chunk(offset, body(piece, fail_after=cut, exc=error_), len(piece), exact_offset=True)
        with pytest.raises(type(error_)):
            await self.engine.service.write(client.upload_id, chunk)  # type: ignore[union-attr,arg-type]
        if op.kind == "crash":
            await self.restart()
        else:
            assert (await self.status(APPEND)).offset == offset + cut, "a cut-off PATCH keeps what arrived"

    async def refused(self, chunk: Chunk, offset: int) -> None:
        with pytest.raises((OffsetMismatch, TooLarge, ChecksumMismatch)):
            await self.engine.service.write(self.clients[APPEND].upload_id, chunk)  # type: ignore[union-attr,arg-type]
        assert (await self.status(APPEND)).offset == offset, "a refused PATCH changes nothing"

    # -- what holds after every operation and at the end --------------------------------------------------------

    async def check(self) -> None:
        for which, client in enumerate(self.clients):
            upload = await self.status(which)
            if upload.state is UploadState.COMPLETE:
                assert upload.sha256 == self.content.sha256
                continue
            assert upload.received.union(client.acked) == upload.received, "an answered range was lost"
            assert client.sent.union(upload.received) == client.sent, "a range is recorded that was never sent"
        assert check_storage(self.root, [self.content]) == []

    async def finish(self) -> None:
        for which in (RANDOM_ACCESS, APPEND):
            upload = await self.status(which)
            for start, end in list(upload.received.missing(self.size)):
                piece = self.data[start:end]
                exact = which == APPEND
                chunk = Chunk(start, body(piece), len(piece), exact_offset=exact, all_or_nothing=not exact)
                await self.write(which, chunk, start, end)
            upload = await self.status(which)
            assert upload.state is UploadState.COMPLETE
            assert upload.sha256 == self.content.sha256
        assert self.engine is not None
        blobs = await self.engine.meta.blobs()
        assert [(sha, refs) for _, sha, refs in blobs] == [(self.content.sha256, 2)], "one file for both uploads"
        assert (self.root / blobs[0][0].key).read_bytes() == self.data
        assert check_storage(self.root, [self.content]) == []


async def play_all(root: Path, data: bytes, script: list[Op]) -> None:
    player = Player(root, data)
    await player.start()
    try:
        await player.create()
        for op in script:
            await player.play(op)
            await player.check()
        await player.finish()
    finally:
        await player.stop()


_runs = [0]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.sampled_from([0, 1, 2, 999, 65_536]) | st.integers(0, 200_000), seed=st.integers(0, 2**16),
       script=st.lists(ops, max_size=14))  # fmt: skip
def test_any_interleaving_of_writes_retries_cuts_and_restarts_gives_the_exact_file(
    tmp_path: Path, size: int, seed: int, script: list[Op]
) -> None:
    _runs[0] += 1
    root = tmp_path / f"run{_runs[0]}"
    asyncio.run(play_all(root, random.Random(seed).randbytes(size), script))


# -- conflicting retries never change acknowledged bytes ---------------------------------------------------


def _chunks_then(root: Path, first: list[int], retry: Chunk) -> tuple[bytes, str, bytes]:
    """The ``first`` chunks of a 3-chunk upload, then ``retry``, then the missing chunks; (data, sha256, file)."""
    data = random.Random(9).randbytes(300_000)
    c = 100_000

    async def main() -> tuple[bytes, str, bytes]:
        async with running(root) as e:
            upload = await e.service.create(new(0, len(data), Protocol.DROPZONE))
            for index in first:
                piece = data[index * c : (index + 1) * c]
                await e.service.write(upload.id, Chunk(index * c, body(piece), c, all_or_nothing=True))
            with contextlib.suppress(BadRequest):  # refusing it is fine; changing received bytes is not
                await e.service.write(upload.id, retry)
            upload = await e.service.status(upload.id)
            for start, end in list(upload.received.missing(len(data))):
                upload = await e.service.write(
                    upload.id, Chunk(start, body(data[start:end]), end - start, all_or_nothing=True)
                )
            assert upload.blob_key is not None
            return data, upload.sha256 or "", (root / upload.blob_key).read_bytes()

    return asyncio.run(main())


def test_a_retry_with_other_bytes_does_not_change_an_acknowledged_range(tmp_path: Path) -> None:
    """A retried chunk whose range is already recorded is answered without being written: the prefix hash has
    consumed the first bytes, so writing the second would leave a file that does not match its sha256."""
    data, reported, stored = _chunks_then(
        tmp_path, [0, 1], Chunk(0, body(bytes(100_000)), 100_000, all_or_nothing=True)
    )
    assert hashlib.sha256(stored).hexdigest() == reported, "the file does not match the sha256 it was given"
    assert stored == data, "acknowledged bytes changed"


def test_a_chunk_longer_than_announced_does_not_overwrite_the_next_chunk(tmp_path: Path) -> None:
    """Dropzone chunk 0 (dzchunksize 100000) whose file part has 150000 bytes is refused with 400 at its
    100001st byte, before anything reaches chunk 1, which had been answered 200."""
    data, reported, stored = _chunks_then(
        tmp_path, [1], Chunk(0, body(random.Random(1).randbytes(150_000)), 100_000, all_or_nothing=True)
    )
    assert stored == data, "acknowledged bytes changed"
    assert reported == hashlib.sha256(data).hexdigest()
