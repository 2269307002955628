"""The intake: a helper process that receives small uploads for the server.

One Python process cannot keep two cores busy with many small uploads: every system call hands its GIL over, and
a 1 MiB PUT makes dozens (two whole server processes sharing the load did 1.6× one; benchmarks/PROFILE.md). So
the server lends the client's socket (``storage.base.Lender``) to a helper process, which streams the body through a
small buffer per thread into its file, hashing it as it arrives, and renames it into place in its own threads,
under its own GIL; the server only parses the head, records the upload and answers. Linux only (memfd,
SCM_RIGHTS); elsewhere, with ``--helpers 0``, or once a helper died, the server does it all itself.

The helpers start with the first small upload (until they say they are ready, ~40 ms, the server stores what
comes itself) and stop after ``_HELPERS_IDLE_S`` without one: a server that only receives large files never runs
them, and its memory stays that of one process.

Jobs and replies are small JSON datagrams on a SOCK_SEQPACKET pair; the client socket's descriptor travels with
its job (SCM_RIGHTS). Each job has a slot of one shared memfd mapping: the server copies in what it read along with
the head (sent inline with the job while the control socket has room, the slot's pages then released), and a body
that stops short is given back there whole, so that the server can lend the socket again. Memory is bounded by the
helper's threads (16 × 128 KiB), not by the uploads in flight: a body held whole per slot took 50 MiB for 50 clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import fcntl
import functools
import logging
import mmap
import os
import socket
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pyfiledrop.storage.intake_jobs import INLINE_MAX, READY, SLOT_BYTES, Job, Reply

log = logging.getLogger("pyfiledrop.intake")

HELPER_THREADS = 16  # jobs one helper works on at once (4: 613 files/s, 8: 652, 16: 694, 32: 665)
_KEEP_IDLE = 12  # slots whose memory is kept once a burst is over (as storage.buffers.POOL)
_IDLE_AFTER_S = 30.0
_HELPERS_IDLE_S = 600.0  # no small upload for this long: the helpers stop (the next one starts them again)
_CLOSE_WAIT_S = 5.0
_SEND_WAIT_S = 30.0  # a control socket that stays full this long: the helper is stuck, the job fails
_BARE_ROOM = 64 << 10  # room left in the control socket for jobs without their head
_OUTQ: int | None = getattr(termios, "TIOCOUTQ", None)  # bytes sent and not yet received (of a unix socket too)


def available() -> bool:
    return sys.platform.startswith("linux") and hasattr(os, "memfd_create") and hasattr(os, "pidfd_open")


class Intake:
    """The server's side: shared slots, and the helper processes, started on demand."""

    def __init__(self, storage_dir: Path, chunks_dir: Path, *, fsync_files: bool, fsync_names: bool, slots: int,
                 processes: int) -> None:  # fmt: skip
        self.slots = slots
        self._memfd = os.memfd_create("pyfiledrop-intake")
        os.ftruncate(self._memfd, slots * SLOT_BYTES)
        self._region = mmap.mmap(self._memfd, slots * SLOT_BYTES)
        self._view = memoryview(self._region)
        self._free = list(range(slots))  # the last returned is the first borrowed: its pages are the warm ones
        self._lent: dict[int, int] = {}  # id of a borrowed view → its slot
        self._busy_at = 0.0
        self._args = [sys.executable, "-m", "pyfiledrop.storage.intake_helper", str(self._memfd),
                      str(slots * SLOT_BYTES), str(storage_dir.resolve()), str(chunks_dir.resolve()),
                      "1" if fsync_files else "0",
                      "1" if fsync_names else "0", str(HELPER_THREADS)]  # fmt: skip
        self._processes = processes
        self.helpers: _Helpers | None = None
        self.broken = False  # a helper died: the server stores small uploads itself from then on
        self._used_at = 0.0
        self.jobs = 0  # sent, for tests and the curious

    # -- slots --------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def buffer(self, size: int) -> Iterator[memoryview | None]:
        """A slot's first ``size`` bytes, or None when all are taken. Starts the helpers if they are not running:
        a small upload has come."""
        if not self._free or size > SLOT_BYTES:
            yield None
            return
        if self.helpers is None and not self.broken:
            try:
                self.helpers = _Helpers(self._args, self._memfd, self._processes, self._helper_lost)
            except OSError as exc:  # no process could be started (limits, memory): the server stores them itself
                log.error("could not start an upload helper process (%s); the server stores small uploads itself",
                          exc)  # fmt: skip
                self.broken = True
        self._used_at = time.monotonic()
        slot = self._free.pop()
        if self.slots - len(self._free) > _KEEP_IDLE:
            self._busy_at = self._used_at
        view = self._view[slot * SLOT_BYTES : slot * SLOT_BYTES + size]
        self._lent[id(view)] = slot
        try:
            yield view
        finally:
            del self._lent[id(view)]
            view.release()
            self._free.append(slot)

    def slot_of(self, view: memoryview) -> int | None:
        """The slot of a view from ``buffer``, if the helpers can take it now (running and ready)."""
        helpers = self.helpers
        return self._lent.get(id(view)) if helpers is not None and helpers.ready and helpers.alive else None

    async def trim(self, now: float | None = None) -> int:
        """Give the memory of free slots beyond a few back to the system once no burst needed them for a while,
        and stop the helpers once no small upload came for ``_HELPERS_IDLE_S``. Returns the slots given back."""
        now = time.monotonic() if now is None else now
        if self.helpers is not None and now - self._used_at > _HELPERS_IDLE_S and not self.helpers.busy:
            helpers, self.helpers = self.helpers, None
            await helpers.close()
        extra = len(self._free) - _KEEP_IDLE
        if extra <= 0 or now - self._busy_at < _IDLE_AFTER_S:
            return 0
        for slot in self._free[:extra]:  # the coldest end
            self._region.madvise(mmap.MADV_REMOVE, slot * SLOT_BYTES, SLOT_BYTES)
        return extra

    # -- jobs ---------------------------------------------------------------------------------------------------

    async def run(self, fd: int, slot: int, start: int, size: int, idle_timeout: float, upload_id: str,
                  blob_key: str) -> Reply:  # fmt: skip
        """Have a helper read socket ``fd`` into ``slot`` from ``start`` to ``size`` and, once all is there, store
        it. Returns only once the helper is done with the socket and the slot (a cancelled caller shuts the socket
        down, so that the helper stops at once, and waits for it)."""
        helpers = self.helpers
        if helpers is None or not helpers.alive:
            raise OSError(errno.EPIPE, "the upload helper process is gone")
        self.jobs += 1
        job = Job(self.jobs, slot, start, size, idle_timeout, upload_id, blob_key, inline=start <= INLINE_MAX)
        with self._view[slot * SLOT_BYTES : slot * SLOT_BYTES + start] as head:
            return await helpers.run(job, head, fd, functools.partial(self._let_go, slot, start))

    def _let_go(self, slot: int, start: int) -> None:
        """The head went with the job: the slot's pages below it can go at once, so that the memory of 50 uploads
        at once is not held by the server too (the helper writes it all back if the body stops short)."""
        if start >= mmap.PAGESIZE:
            self._region.madvise(mmap.MADV_REMOVE, slot * SLOT_BYTES, start // mmap.PAGESIZE * mmap.PAGESIZE)

    def _helper_lost(self, codes: list[int | None]) -> None:
        log.error("an upload helper process exited (exit codes %s); the server stores small uploads itself from "
                  "now on", codes)  # fmt: skip
        self.broken = True

    async def close(self) -> None:
        if self.helpers is not None:
            await self.helpers.close()
            self.helpers = None
        with contextlib.suppress(BufferError):  # a view still alive somewhere: the GC unmaps it
            self._view.release()
            self._region.close()
        os.close(self._memfd)


class _Helpers:
    """Running helper processes: a control socket they share, the jobs sent and their replies, their exits."""

    def __init__(self, args: list[str], memfd: int, processes: int, lost: Callable[[list[int | None]], None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._ctrl, helper_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._replies: dict[int, asyncio.Future[Reply]] = {}
        self._lost_callback = lost
        self.alive = True
        self.ready = False
        self._processes: list[subprocess.Popen[bytes]] = []
        self._exits: list[int] = []  # a pidfd per helper: readable once it exited
        try:
            for _ in range(processes):  # each takes the next job when one of its threads is free
                # A process group of its own: Ctrl-C in a terminal reaches the server only, which ends the helper by
                # closing the control socket once it has stopped (a helper killed first would fail its last jobs).
                process = subprocess.Popen([*args[:3], str(helper_end.fileno()), *args[3:]], env=_helper_env(),
                                           pass_fds=(helper_end.fileno(), memfd), stdin=subprocess.DEVNULL,
                                           process_group=0)  # fmt: skip
                self._processes.append(process)
                self._exits.append(os.pidfd_open(process.pid))
        except BaseException:
            self._ctrl.close()  # those started see the end and exit
            _end_all(self._processes)
            for pidfd in self._exits:
                os.close(pidfd)
            raise
        finally:
            helper_end.close()
        self._ctrl.setblocking(False)
        self._sndbuf = self._ctrl.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        self._room_event: asyncio.Event | None = None
        self._loop.add_reader(self._ctrl.fileno(), self._read_replies)
        for pidfd in self._exits:
            self._loop.add_reader(pidfd, self._lost)

    @property
    def busy(self) -> bool:
        return bool(self._replies)

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes]

    async def run(self, job: Job, head: memoryview, fd: int, sent_inline: Callable[[], None]) -> Reply:
        reply = self._loop.create_future()
        await self._send(job, head, fd, sent_inline)
        self._replies[job.id] = reply
        try:
            return await asyncio.shield(reply)
        except asyncio.CancelledError:
            _shut_down(fd)
            with contextlib.suppress(Exception):
                await reply
            raise

    async def _send(self, job: Job, head: memoryview, fd: int, sent_inline: Callable[[], None]) -> None:
        """Send the job with its descriptor. The control socket holds ~200 KiB of jobs not yet taken: a head travels
        with its job only while that leaves room for bare jobs (else it stays in the slot); when even a bare job does
        not fit, wait until the helpers take some (bounded: a helper that takes none for that long is stuck)."""
        descriptor = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fd.to_bytes(4, sys.byteorder))]
        if job.inline and self._queued() + len(head) + _BARE_ROOM <= self._sndbuf:
            try:
                self._ctrl.sendmsg(job.datagram(head), descriptor)
            except BlockingIOError:
                pass
            else:
                sent_inline()
                return
        job = dataclasses.replace(job, inline=False)
        deadline = self._loop.time() + _SEND_WAIT_S
        for _ in range(100_000):  # (bounded in time by the deadline; this only bounds the count too)
            try:
                self._ctrl.sendmsg(job.datagram(head), descriptor)
                return
            except BlockingIOError:
                if self._loop.time() > deadline or not self.alive:
                    break
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):  # all waiters share one writability watch
                        await self._room().wait()
        raise OSError(errno.EPIPE, "the upload helper takes no jobs")

    def _queued(self) -> int:
        """Bytes of jobs sent and not yet taken by a helper."""
        if _OUTQ is None:
            return self._sndbuf
        try:
            queued: int = struct.unpack("i", fcntl.ioctl(self._ctrl.fileno(), _OUTQ, b"\0\0\0\0"))[0]
            return queued
        except OSError:
            return self._sndbuf

    def _room(self) -> asyncio.Event:
        """Set once the control socket can take a job again (one watch, however many wait)."""
        if self._room_event is None or self._room_event.is_set():
            event = self._room_event = asyncio.Event()
            fileno = self._ctrl.fileno()

            def writable() -> None:
                self._loop.remove_writer(fileno)
                event.set()

            self._loop.add_writer(fileno, writable)
        return self._room_event

    def _read_replies(self) -> None:
        while True:
            try:
                data = self._ctrl.recv(4096)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._lost()
                return
            if data == READY:
                self.ready = True
                continue
            try:
                reply = Reply.decode(data)
            except (ValueError, TypeError):  # not what a helper says: stop trusting them all
                log.error("an upload helper sent %r", data[:200])
                self._lost()
                return
            waiting = self._replies.pop(reply.id, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(reply)

    def _lost(self) -> None:
        """A helper exited (or closed its end): the jobs in hand failed (their clients get an error, the
        connection is closed)."""
        if self.alive:
            self._lost_callback([process.poll() for process in self._processes])
        self._stop_watching()
        self._fail_all("the upload helper process is gone")

    def _stop_watching(self) -> None:
        if self._room_event is not None and not self._room_event.is_set():
            self._loop.remove_writer(self._ctrl.fileno())
            self._room_event.set()
        if self.alive:
            self.alive = False
            for fd in (self._ctrl.fileno(), *self._exits):
                self._loop.remove_reader(fd)

    def _fail_all(self, why: str) -> None:
        for waiting in self._replies.values():
            if not waiting.done():
                waiting.set_exception(OSError(errno.EPIPE, why))
        self._replies.clear()

    async def close(self) -> None:
        self._stop_watching()
        self._ctrl.close()  # the helpers see the end and exit
        await asyncio.to_thread(_end_all, self._processes)
        for pidfd in self._exits:
            os.close(pidfd)
        self._fail_all("the server is stopping")


def _helper_env() -> dict[str, str]:
    """The helper imports the very package the server runs (a source checkout or a patched copy included)."""
    package_root = str(Path(__file__).resolve().parents[2])
    paths = [package_root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _end_all(processes: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + _CLOSE_WAIT_S
    for process in processes:
        try:
            process.wait(max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _shut_down(fd: int) -> None:
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)
