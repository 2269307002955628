"""The intake: a real helper process reads bodies from real sockets into shared slots, hashes and stores them."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pyfiledrop.domain.ids import UploadId
from pyfiledrop.errors import StorageFull
from pyfiledrop.sockets import Gone, Parked
from pyfiledrop.storage import intake
from pyfiledrop.storage.intake import Intake
from pyfiledrop.storage.intake_jobs import INLINE_MAX, Job, Reply
from pyfiledrop.storage.local import LocalStorage

pytestmark = pytest.mark.skipif(not intake.available(), reason="the intake needs Linux (memfd, pidfd)")

UPLOAD_ID = "U" * 24


@contextlib.asynccontextmanager
async def running(tmp_path: Path, slots: int = 4) -> AsyncIterator[Intake]:
    """An intake whose helper has been started (by a first small upload's buffer) and is ready."""
    (tmp_path / ".partial").mkdir(exist_ok=True)
    started = Intake(tmp_path, tmp_path / ".partial", fsync_files=True, fsync_names=False, slots=slots, processes=1)
    try:
        assert started.helpers is None  # none until a small upload comes
        with started.buffer(10):
            pass
        deadline = time.monotonic() + 20
        while not (started.helpers and started.helpers.ready) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert started.helpers is not None and started.helpers.ready
        yield started
    finally:
        await started.close()


def pids(helper: Intake) -> list[int]:
    assert helper.helpers is not None
    return helper.helpers.pids


@contextlib.contextmanager
def connected() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A TCP connection over loopback: (client, the server's non-blocking end)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    server.setblocking(False)
    with client, server:
        yield client, server


def send_later(client: socket.socket, *pieces: bytes, pause: float = 0.0, close: bool = False) -> threading.Thread:
    def send() -> None:
        for piece in pieces:
            client.sendall(piece)
            time.sleep(pause)
        if close:
            client.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


@contextlib.contextmanager
def lent(helper: Intake, size: int) -> Iterator[tuple[memoryview, socket.socket, socket.socket]]:
    """A slot of ``size`` bytes and a connection whose server end can be lent: (slot, client, server end)."""
    with helper.buffer(size) as view, connected() as (client, server):
        assert view is not None
        yield view, client, server


async def job(helper: Intake, view: memoryview, server: socket.socket, start: int, key: str,
              idle_timeout: float = 5.0) -> Reply:  # fmt: skip
    return await helper.run(server.fileno(), helper.slot_of(view) or 0, start, len(view), idle_timeout, UPLOAD_ID, key)


def test_the_helper_reads_the_rest_of_a_body_hashes_and_stores_it(tmp_path: Path) -> None:
    data = os.urandom((1 << 20) + 12345)
    head = 70_000  # what the server read along with the request head, copied into the slot first

    async def main() -> None:
        async with running(tmp_path) as helper:
            with lent(helper, len(data)) as (view, client, server):
                assert helper.slot_of(view) is not None
                view[:head] = data[:head]
                sender = send_later(client, data[head:])
                reply = await job(helper, view, server, head, f"{UPLOAD_ID}_big.bin")
                sender.join()
            assert (reply.got, reply.body_error()) == (len(data) - head, None)
            assert reply.stored() == hashlib.sha256(data).hexdigest()
            assert (tmp_path / f"{UPLOAD_ID}_big.bin").read_bytes() == data
            assert list((tmp_path / ".partial").iterdir()) == []
            assert helper.jobs == 1

    asyncio.run(main())


def test_a_silent_client_is_given_back_and_a_client_that_leaves_stores_nothing(tmp_path: Path) -> None:
    data = os.urandom(300_000)

    async def main() -> None:
        async with running(tmp_path) as helper:
            with lent(helper, len(data)) as (view, client, server):
                client.sendall(data[:1000])
                parked = await job(helper, view, server, 0, f"{UPLOAD_ID}_a")
                assert parked.got == 1000 and isinstance(parked.body_error(), Parked)  # no thread held meanwhile
                sender = send_later(client, data[1000:50_000], close=True)
                gone = await job(helper, view, server, 1000, f"{UPLOAD_ID}_a")
                sender.join()
                assert gone.got == 49_000 and isinstance(gone.body_error(), Gone)
                assert bytes(view[:50_000]) == data[:50_000]
            assert not (tmp_path / f"{UPLOAD_ID}_a").exists()
            assert list((tmp_path / ".partial").iterdir()) == []

    asyncio.run(main())


def test_a_cancelled_job_shuts_the_socket_and_waits_for_the_helper(tmp_path: Path) -> None:
    async def main() -> None:
        async with running(tmp_path) as helper:
            with lent(helper, 5000) as (view, client, server):
                client.sendall(b"x" * 10)
                running_job = asyncio.ensure_future(job(helper, view, server, 0, "k", idle_timeout=30.0))
                await asyncio.sleep(0.05)
                started = time.monotonic()
                running_job.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await running_job
                assert time.monotonic() - started < 2.0
                assert client.recv(10) == b""  # the connection was shut down: the helper let go of it

    asyncio.run(main())


def test_a_failed_store_comes_back_as_the_error_it_was(tmp_path: Path) -> None:
    data = os.urandom(100_000)

    async def main() -> None:
        async with running(tmp_path) as helper:
            with lent(helper, len(data)) as (view, client, server):
                sender = send_later(client, data)
                reply = await job(helper, view, server, 0, "no-such-folder/x.bin")
                sender.join()
            assert reply.got == len(data) and reply.body_error() is None
            with pytest.raises(OSError) as raised:
                reply.stored()
            assert raised.value.errno == errno.ENOENT
            assert list((tmp_path / ".partial").iterdir()) == []  # the written partial file was removed

    asyncio.run(main())


def test_the_helper_streams_a_body_without_holding_it_in_the_slot(tmp_path: Path) -> None:
    """Only the bytes the server read with the head are in the slot: the helper streams the rest through a small
    buffer of its own (memory bounded by its threads, not by the bodies in flight)."""
    data = os.urandom((2 << 20) - 4096 + 7)  # pieces of 256 KiB and a tail that is not whole pages
    head = 10_000

    async def main() -> None:
        async with running(tmp_path) as helper:
            with lent(helper, len(data)) as (view, client, server):
                view[:head] = data[:head]
                sender = send_later(client, data[head:])
                reply = await job(helper, view, server, head, f"{UPLOAD_ID}_s.bin")
                sender.join()
                assert bytes(view[head:]) == bytes(len(data) - head)  # a fresh slot, never written by the helper
            assert reply.stored() == hashlib.sha256(data).hexdigest()
            assert (tmp_path / f"{UPLOAD_ID}_s.bin").read_bytes() == data

    asyncio.run(main())


def test_a_body_that_pauses_after_several_pieces_is_given_back_whole_and_goes_on(tmp_path: Path) -> None:
    data = os.urandom(1_500_000)
    first = 700_000  # past two of the helper's pieces: those were written to the file, and are read back

    async def main() -> None:
        async with running(tmp_path) as helper:
            with lent(helper, len(data)) as (view, client, server):
                view[:10_000] = data[:10_000]  # pages the server lets go once they travel with the job
                client.sendall(data[10_000:first])
                parked = await job(helper, view, server, 10_000, f"{UPLOAD_ID}_p.bin")
                assert (parked.got, type(parked.body_error())) == (first - 10_000, Parked)
                assert bytes(view[:first]) == data[:first]
                assert list((tmp_path / ".partial").iterdir()) == []  # nothing half-written left meanwhile
                sender = send_later(client, data[first:])
                reply = await job(helper, view, server, first, f"{UPLOAD_ID}_p.bin")
                sender.join()
            assert reply.stored() == hashlib.sha256(data).hexdigest()
            assert (tmp_path / f"{UPLOAD_ID}_p.bin").read_bytes() == data

    asyncio.run(main())


def test_a_file_that_cannot_be_created_still_reads_the_whole_body_then_fails(tmp_path: Path) -> None:
    data = os.urandom(600_000)

    async def main() -> None:
        async with running(tmp_path) as helper:
            (tmp_path / ".partial").rmdir()  # the partial file cannot be created
            with lent(helper, len(data)) as (view, client, server):
                sender = send_later(client, data)
                reply = await job(helper, view, server, 0, f"{UPLOAD_ID}_f.bin")
                sender.join()
                assert bytes(view) == data  # read into the slot instead: the server answers with the body read
            assert reply.got == len(data) and reply.body_error() is None
            with pytest.raises(OSError) as raised:
                reply.stored()
            assert raised.value.errno == errno.ENOENT

    asyncio.run(main())


def test_a_head_too_large_to_travel_with_the_job_is_read_from_the_slot(tmp_path: Path) -> None:
    data = os.urandom(1_000_000)
    head = INLINE_MAX + 5000  # asyncio read this much before the socket was lent: the slot carries it

    async def main() -> None:
        async with running(tmp_path) as helper:
            with lent(helper, len(data)) as (view, client, server):
                view[:head] = data[:head]
                sender = send_later(client, data[head:])
                reply = await job(helper, view, server, head, f"{UPLOAD_ID}_h.bin")
                sender.join()
            assert reply.stored() == hashlib.sha256(data).hexdigest()
            assert (tmp_path / f"{UPLOAD_ID}_h.bin").read_bytes() == data

    asyncio.run(main())


def test_jobs_that_do_not_fit_the_control_socket_keep_their_head_in_the_slot_or_wait(tmp_path: Path) -> None:
    """A stopped helper takes no jobs: the control socket fills with the first few heads, the next jobs go without
    theirs (left in the slot), then wait for room; once the helper goes on, every body is stored whole."""
    bodies = [os.urandom(600_000) for _ in range(12)]
    head = 100_000

    async def main() -> None:
        async with running(tmp_path, slots=12) as helper:
            with contextlib.ExitStack() as stack:
                lends = [stack.enter_context(lent(helper, len(data))) for data in bodies]
                for (view, client, _), data in zip(lends, bodies, strict=True):
                    view[:head] = data[:head]
                    client.sendall(data[head : head + 100_000])  # the rest once the helper goes on
                os.kill(pids(helper)[0], signal.SIGSTOP)
                try:
                    jobs = [asyncio.ensure_future(helper.run(server.fileno(), helper.slot_of(view) or 0, head,
                                                             len(view), 5.0, f"{index:024d}", f"{index}.bin"))
                            for index, (view, _, server) in enumerate(lends)]  # fmt: skip
                    await asyncio.sleep(0.3)
                    assert not any(running_job.done() for running_job in jobs)
                finally:
                    os.kill(pids(helper)[0], signal.SIGCONT)
                senders = [
                    send_later(client, data[head + 100_000 :])
                    for (_, client, _), data in zip(lends, bodies, strict=True)
                ]
                replies = await asyncio.wait_for(asyncio.gather(*jobs), 60)
                for sender in senders:
                    sender.join()
            for index, (reply, data) in enumerate(zip(replies, bodies, strict=True)):
                assert reply.stored() == hashlib.sha256(data).hexdigest()
                assert (tmp_path / f"{index}.bin").read_bytes() == data

    asyncio.run(main())


def test_a_job_carries_its_head_and_a_datagram_that_does_not_match_is_refused() -> None:
    head = memoryview(os.urandom(3000))
    job_ = Job(1, 2, 3000, 9000, 5.0, UPLOAD_ID, "k", inline=True)
    received, carried = Job.received(memoryview(b"".join(job_.datagram(head))))
    assert received == job_ and carried is not None and bytes(carried) == bytes(head)
    in_slot = Job(1, 2, 3000, 9000, 5.0, UPLOAD_ID, "k")
    assert Job.received(memoryview(b"".join(in_slot.datagram(head)))) == (in_slot, None)
    with pytest.raises(ValueError, match="inline bytes"):
        Job.received(memoryview(b"".join(job_.datagram(head[:10]))))


def test_replies_keep_their_meaning_across_the_process_boundary() -> None:
    cause = OSError(errno.ENOSPC, "No space left on device")
    try:
        raise StorageFull() from cause
    except StorageFull as exc:
        reply = Reply.decode(Reply.failed(1, 5, exc).encode())
    with pytest.raises(StorageFull):
        reply.stored()
    other = Reply.decode(Reply.failed(2, 0, ValueError("odd")).encode())
    with pytest.raises(RuntimeError, match="ValueError: odd"):
        other.stored()
    for error in (Gone(), Parked(), TimeoutError()):
        assert type(Reply.decode(Reply.stopped(3, 7, error).encode()).body_error()) is type(error)


@pytest.mark.parametrize("data", [b'"abc"', b'{"id": 1, "got": 2}', b"[1]", b"[1, 2, 3, 4, 5, 6, 7]", b"7", b"\xff"])
def test_a_datagram_that_is_not_a_reply_is_refused_not_misread(data: bytes) -> None:
    """The server stops trusting its helpers on ValueError/TypeError: anything else must not become a Reply."""
    with pytest.raises((ValueError, TypeError)):
        Reply.decode(data)


def test_a_helper_that_dies_fails_its_jobs_and_the_storage_goes_on_without_it(tmp_path: Path) -> None:
    async def main() -> None:
        async with running(tmp_path) as helper:
            storage = LocalStorage(tmp_path, tmp_path / ".partial", fsync_chunks=False, fsync_files=True,
                                   intake=helper)  # fmt: skip
            with storage.whole_buffer(5000) as view, connected() as (client, server):
                assert helper.slot_of(view) is not None
                client.sendall(b"x" * 10)
                running_job = asyncio.ensure_future(job(helper, view, server, 0, "k", idle_timeout=30.0))
                await asyncio.sleep(0.05)
                os.kill(pids(helper)[0], signal.SIGKILL)
                with pytest.raises(OSError, match="helper process is gone"):
                    await asyncio.wait_for(running_job, 5)
            assert helper.broken
            with storage.whole_buffer(5000) as view:
                assert helper.slot_of(view) is None  # a pooled buffer: the server stores itself now
                view[:] = b"y" * 5000
                stored = await storage.store_whole(UploadId(UPLOAD_ID), "after.bin", view)
            assert stored.sha256 == hashlib.sha256(b"y" * 5000).hexdigest()

    asyncio.run(main())


def test_slots_are_handed_out_warm_first_and_idle_ones_given_back(tmp_path: Path) -> None:
    async def main() -> None:
        async with running(tmp_path, slots=16) as helper:
            with helper.buffer(10) as first:
                assert first is not None
                warm = helper.slot_of(first)
            with helper.buffer(10) as again:
                assert again is not None and helper.slot_of(again) == warm
            with contextlib.ExitStack() as stack:
                held = [stack.enter_context(helper.buffer(10)) for _ in range(16)]
                assert all(view is not None for view in held)
                assert stack.enter_context(helper.buffer(10)) is None  # all taken: the caller uses the pool
            assert await helper.trim(now=time.monotonic()) == 0  # a burst just ended: kept for now
            assert helper.helpers is not None
            assert await helper.trim(now=time.monotonic() + 3600) == 16 - 12

    asyncio.run(main())


def test_closing_ends_the_helper_and_so_does_an_hour_without_small_uploads(tmp_path: Path) -> None:
    async def main() -> list[int]:
        async with running(tmp_path) as helper:
            idle = pids(helper)
            await helper.trim(now=time.monotonic() + 3600)
            assert helper.helpers is None
            with helper.buffer(10):  # the next small upload starts them again
                assert helper.helpers is not None
            return [*idle, *pids(helper)]

    ended = asyncio.run(main())
    assert len(set(ended)) == 2
    for pid in ended:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_a_helper_that_cannot_start_leaves_the_server_storing_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*args: object, **kwargs: object) -> None:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    async def main() -> None:
        intake_ = Intake(tmp_path, tmp_path, fsync_files=True, fsync_names=False, slots=2, processes=1)
        monkeypatch.setattr(subprocess, "Popen", refused)
        try:
            with intake_.buffer(10) as view:
                assert view is not None and intake_.slot_of(view) is None  # the upload goes on, in the server
            assert intake_.broken and intake_.helpers is None
        finally:
            await intake_.close()

    asyncio.run(main())
