"""Finished files of the local disk: a small upload written whole in one go, and the rename that makes a finished
file visible. The local storage uses it from the server's worker threads, the intake's helper process from its
own — which imports only this (and ``files.py``), no asyncio, to stay small."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import threading
import weakref
from pathlib import Path

from pyfiledrop.storage.files import ALIGN, open_direct, raise_if_full, write_span

_READ_BLOCK = 1 << 20


class FinishedFiles:
    def __init__(self, storage_dir: Path, chunks_dir: Path, *, fsync_files: bool, fsync_names: bool) -> None:
        self.storage_dir = storage_dir
        self.chunks_dir = chunks_dir
        self.fsync_files = fsync_files  # a finished file's bytes are on disk before it is renamed into place
        self.fsync_names = fsync_names  # ... and a small file's new name before it is recorded (--durability chunk)
        self.direct_creates = True  # False once this file system refused O_DIRECT
        self._dir_fd: int | None = None
        self._dir_lock = threading.Lock()

    def partial(self, upload_id: str) -> Path:
        return self.chunks_dir / f"{upload_id}.part"

    def final(self, key: str) -> Path:
        return self.storage_dir / key

    def write_whole(self, upload_id: str, key: str, data: memoryview) -> str:
        """Hash ``data``, write it as a new partial file and rename it to ``key``, in this thread. Returns the
        sha256 (hex). Leaves no file behind if it fails."""
        sha256 = hashlib.sha256(data).hexdigest()
        partial = self.partial(upload_id)
        fd = self._create_direct(partial) if len(data) % ALIGN == 0 else None
        try:
            try:
                if fd is not None:  # whole pages from a page-aligned buffer: one O_DIRECT descriptor does it all
                    _pwrite_direct(fd, data)  # durable when it returns if fsync_files (O_DSYNC): no fsync call
                else:
                    self._write_new(partial, data)
            finally:
                if fd is not None:
                    os.close(fd)
            # The name: durable at once only for --durability chunk, whose records are too. Otherwise the file
            # system's journal makes it durable within seconds, and should the power fail before, start-up finds the
            # bytes under their partial name and finishes the rename (``refinalize``); the bytes are on disk already.
            # One journal commit per file instead of two: +4.5 % small files/s (8 alternating fresh-server runs).
            self.publish(partial, self.final(key), sync_name=self.fsync_names)
        except BaseException:
            partial.unlink(missing_ok=True)  # no half-stored file is left behind (nor a whole one without a name)
            raise
        return sha256

    def create(self, upload_id: str) -> NewFile:
        """A new partial file to be written in order, piece by piece (``NewFile``)."""
        return NewFile(self, upload_id)

    def publish(self, partial: Path, final: Path, *, sync_name: bool = True) -> None:
        """The rename that makes a finished file visible, whole or not at all; with ``sync_name`` (and fsync_files)
        the folder is fsynced after it, so that the new name is on disk too when this returns."""
        try:
            partial.replace(final)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise_if_full(exc)
                raise
            _copy_across_devices(partial, final)
        if not self.fsync_files or not sync_name:
            return
        if final.parent == self.storage_dir:
            os.fsync(self._storage_dir_fd())
        else:
            _fsync_dir(final.parent)

    def refinalize(self, upload_id: str, key: str, size: int, sha256: str) -> bool:
        """A finished file still under its partial name (its rename never reached the disk): renamed if its bytes
        are ``size`` long and hash to ``sha256``."""
        partial, final = self.partial(upload_id), self.final(key)
        if final.exists() or not partial.is_file() or partial.stat().st_size != size:
            return False
        digest = hashlib.sha256()
        with partial.open("rb") as handle:
            while block := handle.read(_READ_BLOCK):
                digest.update(block)
        if digest.hexdigest() != sha256:
            return False
        self.publish(partial, final)
        return True

    def _create_direct(self, partial: Path) -> int | None:
        """The new partial file opened with O_DIRECT, or None where this file system refuses it (then known).
        With fsync_files also O_DSYNC: each write returns once its data and the metadata to read it back are on
        disk — what fdatasync would do after it, without one more system call (and GIL hand-over) per file."""
        if not self.direct_creates or not hasattr(os, "O_DIRECT"):
            return None
        durable = os.O_DSYNC if self.fsync_files else 0
        try:
            return os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_DIRECT | durable, 0o666)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
        # No O_DIRECT here (tmpfs, some FUSE): the file may have been created before the flag was refused.
        self.direct_creates = False
        partial.unlink(missing_ok=True)
        return None

    def _write_new(self, partial: Path, data: memoryview) -> None:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        direct_fd = open_direct(partial, os.O_WRONLY)  # the buffer is page-aligned: whole pages skip the page cache
        try:
            write_span(fd, direct_fd, data, 0, len(data), 0)
            if self.fsync_files:
                os.fsync(fd)
        finally:
            os.close(fd)
            if direct_fd is not None:
                os.close(direct_fd)

    def _storage_dir_fd(self) -> int:
        """The storage folder, kept open (closed with this object): its fsync after every rename of a finished
        file is then one system call, not three — each one hands the GIL to another thread and waits for it."""
        with self._dir_lock:
            if self._dir_fd is None:
                fd = os.open(self.storage_dir, os.O_RDONLY)
                weakref.finalize(self, os.close, fd)
                self._dir_fd = fd
            return self._dir_fd


def _copy_across_devices(partial: Path, final: Path) -> None:
    temporary = final.with_name(final.name + ".incoming")
    shutil.copyfile(partial, temporary)
    with temporary.open("rb") as handle:
        os.fsync(handle.fileno())
    temporary.replace(final)
    partial.unlink()


def _pwrite_direct(fd: int, data: memoryview) -> None:
    """All of ``data`` at offset 0 through an O_DIRECT descriptor; should a write be refused all the same (a file
    system that opens with O_DIRECT but rejects the I/O), the rest goes through the page cache."""
    done = 0
    try:
        while done < len(data):
            try:
                done += os.pwrite(fd, data[done:], done)
            except OSError as exc:
                import fcntl  # here only where O_DIRECT exists, i.e. not on Windows

                flags = fcntl.fcntl(fd, fcntl.F_GETFL)
                if exc.errno != errno.EINVAL or not flags & os.O_DIRECT:
                    raise
                fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
    except OSError as exc:
        raise_if_full(exc)
        raise


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class NewFile:
    """A new partial file written front to back from one page-aligned buffer reused for each piece, hashed as it
    goes: the intake's helper stores a small body this way without ever holding all of it (16 threads × a 128 KiB
    piece, not 50 bodies of 1 MiB, during a burst of small uploads), and each piece is hashed while it is still in
    the cache of the CPU that just received it. Every piece but the last is a whole number of pages (O_DIRECT); the
    bytes are made durable once, at ``finish``, with one ``fdatasync`` (as ``write_whole``'s O_DSYNC write)."""

    def __init__(self, files: FinishedFiles, upload_id: str) -> None:
        self._files = files
        self.path = files.partial(upload_id)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        self._direct_fd = open_direct(self.path, os.O_WRONLY) if files.direct_creates else None
        self._sha256 = hashlib.sha256()
        self.written = 0

    def add(self, piece: memoryview) -> None:
        """Hash ``piece`` and write it at the end; every piece but the last must be a multiple of 4 KiB long."""
        self._sha256.update(piece)
        write_span(self.fd, self._direct_fd, piece, 0, len(piece), self.written)
        self.written += len(piece)

    def finish(self, key: str) -> str:
        """Durable (with fsync_files), renamed to ``key``; returns the sha256 (hex). Abandoned if this fails."""
        try:
            if self._files.fsync_files:
                os.fdatasync(self.fd)
            self._close()
            self._files.publish(self.path, self._files.final(key), sync_name=self._files.fsync_names)
        except BaseException:
            self.abandon()
            raise
        return self._sha256.hexdigest()

    def read_back(self, view: memoryview, offset: int) -> None:
        """Fill ``view`` with the bytes written from ``offset`` (a body given back half-read)."""
        done = 0
        while done < len(view):
            n = os.preadv(self.fd, [view[done:]], offset + done)
            if n <= 0:
                raise OSError(errno.EIO, f"{self.path} ends before byte {offset + done}")
            done += n

    def abandon(self) -> None:
        """Closed and removed: nothing half-written is left behind."""
        self._close()
        self.path.unlink(missing_ok=True)

    def _close(self) -> None:
        for fd in (self.fd, self._direct_fd):
            if fd is not None and fd >= 0:
                os.close(fd)
        self.fd, self._direct_fd = -1, None
