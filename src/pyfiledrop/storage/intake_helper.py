"""The intake's helper process (see ``storage/intake.py``): ``python -m pyfiledrop.storage.intake_helper CTRL MEMFD
BYTES STORAGE CHUNKS FSYNC_FILES FSYNC_NAMES THREADS``, started by the server with the descriptors passed.

Each thread takes the next job from the control socket and streams the body — what the server put in the job's slot,
then the client's socket — through a small buffer of its own into a new file, hashing each piece as it arrives
(``whole.NewFile``), then renames it into place as the server itself would. Only a body that stops short is
given back in the slot. It ends when the server closes its end of the control socket (stopped, or gone).
"""

from __future__ import annotations

import mmap
import os
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from pyfiledrop.sockets import Gone, fill_from_socket
from pyfiledrop.storage.intake_jobs import JOB_DATAGRAM_MAX, READY, SLOT_BYTES, Job, Reply
from pyfiledrop.storage.whole import FinishedFiles, NewFile

# Each thread streams a body through a buffer of this size: 16 threads hold 2 MiB, whatever the bodies' sizes and
# however many wait (a body held whole took a slot's 1–2 MiB per upload in flight: 50 MiB for 50 clients).
PIECE_BYTES = 128 << 10
_FD_SPACE = socket.CMSG_SPACE(4 * 4)  # one descriptor per job; room for more so none is ever cut off


def handle(job: Job, fd: int, region: memoryview, files: FinishedFiles, piece: memoryview,
           head: memoryview | None = None, release: Callable[[int, int], None] | None = None) -> Reply:  # fmt: skip
    """Do one job on socket ``fd``, streaming the body to its file through this thread's ``piece`` buffer; never
    raises. The body's first ``job.start`` bytes are ``head`` (sent with the job) or in the slot. When the body
    stops short (the client paused, left or timed out) the slot is given back holding every byte read so far,
    as the server expects (it may lend the socket again from there)."""
    base = job.slot * SLOT_BYTES
    with region[base : base + job.size] as body:
        reply = _stream(job, fd, body, files, piece, head)
    if reply.stop is not None and head is not None:
        with region[base : base + job.start] as start:
            start[:] = head  # the server let the slot's copy go when it sent the job: all of it comes back
    elif release is not None and reply.stop is None and head is None and job.start >= mmap.PAGESIZE:
        # Done with the slot (the server reads nothing more from it): its pages go now, not when reused — they
        # count in the server's memory and in this process's.
        release(base, job.start // mmap.PAGESIZE * mmap.PAGESIZE)
    return reply


def _stream(job: Job, fd: int, body: memoryview, files: FinishedFiles, piece: memoryview,
            head: memoryview | None) -> Reply:  # fmt: skip
    out: NewFile | None = None  # created with the first whole piece: a body that stops before leaves no file
    position, got = 0, 0
    while position < job.size:
        view = piece[: min(len(piece), job.size - position)]
        known = max(0, min(len(view), job.start - position))  # bytes the server copied into the slot
        view[:known] = (body if head is None else head)[position : position + known]
        if known < len(view):
            n, error = fill_from_socket(fd, view[known:], job.idle_timeout, _never)  # the server shuts it down
            got += n
            if error is not None:
                return _give_back(job, out, body, position, view[: known + n], got, error)
        try:
            out = out or files.create(job.upload_id)
            out.add(view)
        except Exception as exc:  # noqa: BLE001 - the rest is read into the slot, then the failure told
            return _after_failure(job, fd, out, body, position, view, got, exc)
        position += len(view)
    if out is None:  # nothing to read: a job is only sent for a body with bytes still to come
        return Reply.failed(job.id, got, ValueError("an empty job"))
    try:
        return Reply(job.id, got, sha256=out.finish(job.blob_key))
    except Exception as exc:  # noqa: BLE001 - told to the server, which answers the client
        return Reply.failed(job.id, got, exc)


def _give_back(job: Job, out: NewFile | None, body: memoryview, position: int, current: memoryview, got: int,
               error: BaseException) -> Reply:  # fmt: skip
    """The body stopped short: the slot gets the bytes written so far (read back) and those of the current piece."""
    try:
        if out is not None and position > job.start:
            out.read_back(body[job.start : position], job.start)
        body[position : position + len(current)] = current
    except OSError:  # what was read cannot be given back: the body is lost, the connection must end
        error = Gone("the bytes received could not be read back")
    finally:
        if out is not None:
            out.abandon()
    return Reply.stopped(job.id, got, error)


def _after_failure(job: Job, fd: int, out: NewFile | None, body: memoryview, position: int, view: memoryview, got: int,
                   failure: BaseException) -> Reply:  # fmt: skip
    """Writing failed mid-body: the bytes so far go into the slot and the rest of the body is read there too, so
    that the server answers the failure with the whole body read, as when the body was held whole."""
    try:
        if out is not None and position > job.start:
            out.read_back(body[job.start : position], job.start)
        body[position : position + len(view)] = view
    except OSError:
        return Reply.stopped(job.id, got, Gone("the bytes received could not be read back"))
    finally:
        if out is not None:
            out.abandon()
    return _read_into_slot(job, fd, body, position + len(view), got, failure)


def _read_into_slot(job: Job, fd: int, body: memoryview, start: int, got: int, failure: BaseException) -> Reply:
    """The rest of the body from ``start`` straight into the slot (no file could take it); then ``failure``."""
    start = max(start, job.start)
    n, error = fill_from_socket(fd, body[start:], job.idle_timeout, _never) if start < job.size else (0, None)
    if error is not None:
        return Reply.stopped(job.id, got + n, error)
    return Reply.failed(job.id, got + n, failure)


def _never() -> bool:
    return False


def _work(ctrl: socket.socket, slots: mmap.mmap, files: FinishedFiles) -> None:
    region = memoryview(slots)

    def release(start: int, length: int) -> None:
        slots.madvise(mmap.MADV_REMOVE, start, length)

    piece = memoryview(mmap.mmap(-1, PIECE_BYTES))  # this thread's, page-aligned (O_DIRECT), reused for every job
    inbox = memoryview(mmap.mmap(-1, JOB_DATAGRAM_MAX))  # ... and the one jobs arrive in (pages touched as used)
    while True:
        size, ancillary, flags, _address = ctrl.recvmsg_into([inbox], _FD_SPACE)
        if not size:
            os._exit(0)  # the server closed its end: nobody is left to answer
        fds = [int.from_bytes(data[i : i + 4], sys.byteorder) for *_, data in ancillary for i in range(0, len(data), 4)]
        try:
            if flags & socket.MSG_TRUNC:
                raise ValueError("a job longer than its datagram buffer")
            job, head = Job.received(inbox[:size])
            reply = handle(job, fds[0], region, files, piece, head, release)
        except BaseException:  # noqa: BLE001 - a job this helper cannot read: end, so that the server sees it and stores itself
            os._exit(1)
        finally:
            for fd in fds:
                os.close(fd)
        _tell(ctrl, reply.encode())


def _tell(ctrl: socket.socket, message: bytes) -> None:
    """Send to the server; a server that is gone (stopped at any moment, even before READY) ends the helper quietly."""
    try:
        ctrl.send(message)
    except OSError:
        os._exit(0)


def main(argv: list[str]) -> None:
    ctrl_fd, memfd, size, storage_dir, chunks_dir, fsync_files, fsync_names, threads = argv
    slots = mmap.mmap(int(memfd), int(size))
    files = FinishedFiles(Path(storage_dir), Path(chunks_dir), fsync_files=fsync_files == "1",
                          fsync_names=fsync_names == "1")  # fmt: skip
    ctrl = socket.socket(fileno=int(ctrl_fd))
    _tell(ctrl, READY)
    workers = [threading.Thread(target=_work, args=(ctrl, slots, files), daemon=True) for _ in range(int(threads))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main(sys.argv[1:])
