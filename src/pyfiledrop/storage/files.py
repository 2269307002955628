"""Disk primitives shared by the chunk writer (``writer.py``) and whole small files (``whole.py``): O_DIRECT where
whole pages allow it, the page cache for the rest, and a full disk as the domain error. Kept free of asyncio and
threads so that the intake's helper process stays small."""

from __future__ import annotations

import ctypes
import errno
import mmap
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pyfiledrop.errors import StorageFull

ALIGN = 4096  # O_DIRECT: buffer address, length and file offset are multiples of this
Buffer = mmap.mmap | memoryview


def open_direct(path: Path, flags: int) -> int | None:
    if not hasattr(os, "O_DIRECT"):
        return None
    try:
        return os.open(path, flags | os.O_DIRECT)
    except OSError:  # a file system without O_DIRECT (tmpfs, some FUSE ones): the page cache it is
        return None


def write_span(fd: int, direct_fd: int | None, buffer: Buffer, start: int, end: int, base: int) -> None:
    """Write ``buffer[start:end]`` at file offset ``base + start`` (``base`` and the buffer are page-aligned):
    whole pages with O_DIRECT, partial pages at either end through the page cache."""
    view = memoryview(buffer)
    first, last = -(-start // ALIGN) * ALIGN, end // ALIGN * ALIGN
    try:
        done = start
        if direct_fd is not None and first < last:
            _pwrite_all(fd, view[start:first], base + start)
            done = first
            while done < last:
                try:
                    done += os.pwrite(direct_fd, view[done:last], base + done)
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    break  # opened with O_DIRECT but the write is refused: the plain fd does the rest
        _pwrite_all(fd, view[done:end], base + done)
    except OSError as exc:
        raise_if_full(exc)
        raise
    if done < end or (direct_fd is not None and start < first):  # some went through the page cache
        start_writeback(fd, base + start, end - start)


def _pwrite_all(fd: int, view: memoryview, offset: int) -> None:
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def raise_if_full(exc: OSError) -> None:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        raise StorageFull() from exc


def _libc(name: str, *argtypes: type) -> Any:
    """A Linux libc function ``os`` does not offer, returning an int; None elsewhere or where libc lacks it."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        call = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    call.argtypes = list(argtypes)
    call.restype = ctypes.c_int
    return call


def _writeback_starter() -> Callable[[int, int, int], None]:
    """``sync_file_range(fd, offset, count, SYNC_FILE_RANGE_WRITE)``: start writing a range to disk now, without
    waiting. Linux only (not in ``os``); elsewhere a no-op, and the kernel's own writeback does it later."""

    def nothing(fd: int, offset: int, count: int) -> None:
        pass

    call = _libc("sync_file_range", ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    if call is None:
        return nothing

    def start(fd: int, offset: int, count: int) -> None:
        if count > 0:
            call(fd, offset, count, 2)  # SYNC_FILE_RANGE_WRITE; a failure only means no head start

    return start


start_writeback = _writeback_starter()


def _hole_puncher() -> Callable[[int, int, int], bool] | None:
    """``fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length)``: give a byte range's disk blocks
    back, the file keeping its length (the range reads as zeros). Linux only (not in ``os``)."""
    call = _libc("fallocate", ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
    if call is None:
        return None

    def punch(fd: int, offset: int, length: int) -> bool:
        if call(fd, 0x02 | 0x01, offset, length) == 0:  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
            return True
        error = ctypes.get_errno()
        if error in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            return False  # a file system that cannot: the caller truncates where it may
        raise OSError(error, os.strerror(error))

    return punch


_punch = _hole_puncher()


def release_range(fd: int, start: int, end: int, *, tail: bool) -> bool:
    """Give back the disk blocks of bytes ``[start, end)`` of a sparse file. ``tail``: no byte at or after ``start``
    is wanted, so where holes cannot be punched the file may be cut at ``start`` (and given its length back).
    False when neither was possible."""
    length = os.fstat(fd).st_size
    end = min(end, length)
    if start >= end:
        return True
    if _punch is not None and _punch(fd, start, end - start):
        return True
    if not tail:
        return False
    os.ftruncate(fd, start)
    os.ftruncate(fd, length)  # the sparse length an upload of known size is allocated with
    return True
