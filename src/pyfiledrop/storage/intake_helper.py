"""The intake's helper process (see ``storage/intake.py``): ``python -m pyfiledrop.storage.intake_helper CTRL MEMFD
BYTES STORAGE CHUNKS FSYNC_FILES FSYNC_NAMES THREADS``, started by the server with the descriptors passed.

Each thread takes the next job from the control socket, reads the client's socket into the job's slot, and once
the body is all there hashes and stores it as the server itself would (``FinishedFiles.write_whole``). It ends when
the server closes its end of the control socket (stopped, or gone).
"""

from __future__ import annotations

import mmap
import os
import socket
import sys
import threading
from pathlib import Path

from pyfiledrop.sockets import fill_from_socket
from pyfiledrop.storage.intake_jobs import READY, SLOT_BYTES, Job, Reply
from pyfiledrop.storage.whole import FinishedFiles

_FD_SPACE = socket.CMSG_SPACE(4 * 4)  # one descriptor per job; room for more so none is ever cut off


def handle(job: Job, fd: int, region: memoryview, files: FinishedFiles) -> Reply:
    """Do one job on socket ``fd``; never raises."""
    base = job.slot * SLOT_BYTES
    with region[base : base + job.size] as body:
        got, error = fill_from_socket(fd, body[job.start :], job.idle_timeout, _never)  # the server shuts it down
        if error is not None:
            return Reply.stopped(job.id, got, error)
        try:
            sha256 = files.write_whole(job.upload_id, job.blob_key, body)
        except Exception as exc:  # noqa: BLE001 - told to the server, which answers the client
            return Reply.failed(job.id, got, exc)
        return Reply(job.id, got, sha256=sha256)


def _never() -> bool:
    return False


def _work(ctrl: socket.socket, region: memoryview, files: FinishedFiles) -> None:
    while True:
        message, ancillary, _flags, _address = ctrl.recvmsg(4096, _FD_SPACE)
        if not message:
            os._exit(0)  # the server closed its end: nobody is left to answer
        fds = [int.from_bytes(data[i : i + 4], sys.byteorder) for *_, data in ancillary for i in range(0, len(data), 4)]
        try:
            reply = handle(Job.decode(message), fds[0], region, files)
        except BaseException:  # noqa: BLE001 - a job this helper cannot read: end, so that the server sees it and stores itself
            os._exit(1)
        finally:
            for fd in fds:
                os.close(fd)
        ctrl.send(reply.encode())


def main(argv: list[str]) -> None:
    ctrl_fd, memfd, size, storage_dir, chunks_dir, fsync_files, fsync_names, threads = argv
    region = memoryview(mmap.mmap(int(memfd), int(size)))
    files = FinishedFiles(Path(storage_dir), Path(chunks_dir), fsync_files=fsync_files == "1",
                          fsync_names=fsync_names == "1")  # fmt: skip
    ctrl = socket.socket(fileno=int(ctrl_fd))
    try:
        ctrl.send(READY)
    except BrokenPipeError:  # the server stopped while this helper started: nothing to do, and no traceback in its log
        return
    workers = [threading.Thread(target=_work, args=(ctrl, region, files), daemon=True) for _ in range(int(threads))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main(sys.argv[1:])
