"""``storage.writer.scan_blocks``: the read-back of bytes written out of order, read ahead in one thread and seen
in order in another."""

from __future__ import annotations

import errno
import mmap
import os
import random
import threading
from pathlib import Path

import pytest

from pyfiledrop.storage import writer
from pyfiledrop.storage.buffers import BUFFER_BYTES
from pyfiledrop.storage.files import open_direct
from pyfiledrop.storage.writer import scan_blocks


def _file(tmp_path: Path, size: int) -> tuple[Path, bytes]:
    data = random.Random(size).randbytes(size)
    path = tmp_path / "part"
    path.write_bytes(data)
    return path, data


def _scan(path: Path, start: int, end: int, stop: threading.Event | None = None, limit: int | None = None) -> bytes:
    seen = bytearray()
    fd = os.open(path, os.O_RDONLY)
    direct_fd = open_direct(path, os.O_RDONLY)
    buffers = [mmap.mmap(-1, BUFFER_BYTES) for _ in range(3)]
    halt = stop or threading.Event()

    def observe(view: memoryview) -> None:
        seen.extend(view)
        if limit is not None and len(seen) >= limit:
            halt.set()

    try:
        scan_blocks(fd, direct_fd, buffers, start, end, observe, halt)
    finally:
        os.close(fd)
        if direct_fd is not None:
            os.close(direct_fd)
    return bytes(seen)


@pytest.mark.parametrize("start,end", [(0, 9 << 20), (4095, (7 << 20) + 1), (5 << 20, (5 << 20) + 1), (123, 4096)])
def test_every_byte_of_the_range_is_seen_once_in_order(tmp_path: Path, start: int, end: int) -> None:
    path, data = _file(tmp_path, 10 << 20)
    assert _scan(path, start, end) == data[start:end]


def test_a_read_error_is_raised_and_the_reader_is_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = _file(tmp_path, 9 << 20)
    real, calls = writer.read_span, [0]

    def failing(*args):  # type: ignore[no-untyped-def]
        calls[0] += 1
        if calls[0] == 3:
            raise OSError(errno.EIO, "I/O error")
        return real(*args)

    monkeypatch.setattr(writer, "read_span", failing)
    before = threading.active_count()
    with pytest.raises(OSError, match="I/O error"):
        _scan(path, 0, 9 << 20)
    assert threading.active_count() == before, "the read-ahead thread was joined"


def test_stop_ends_the_scan_between_blocks(tmp_path: Path) -> None:
    path, data = _file(tmp_path, 12 << 20)
    seen = _scan(path, 0, 12 << 20, limit=1)
    assert 0 < len(seen) < len(data) and data.startswith(seen)


def test_stop_from_another_thread_while_waiting_for_a_slow_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancellation sets ``stop`` while the observing thread waits for a block: the scan still ends promptly."""
    import time

    path, _ = _file(tmp_path, 12 << 20)
    real = writer.read_span

    def slow(*args):  # type: ignore[no-untyped-def]
        time.sleep(0.2)
        return real(*args)

    monkeypatch.setattr(writer, "read_span", slow)
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    began = time.monotonic()
    seen = _scan(path, 0, 12 << 20, stop=stop)
    assert time.monotonic() - began < 1.0
    assert len(seen) < 12 << 20


def test_an_end_that_moves_on_is_followed_in_the_same_pass(tmp_path: Path) -> None:
    """``end`` as a function: asked again whenever the scan reaches the last end; the position itself stops it."""
    path, data = _file(tmp_path, 12 << 20)
    ends = iter([(3 << 20) + 5, 9 << 20, 11 << 20])
    asked: list[int] = []

    def until(position: int) -> int:
        asked.append(position)
        return next(ends, position)

    seen = bytearray()
    fd = os.open(path, os.O_RDONLY)
    try:
        scan_blocks(fd, None, [mmap.mmap(-1, BUFFER_BYTES) for _ in range(3)], 100, until, seen.extend,
                    threading.Event())  # fmt: skip
    finally:
        os.close(fd)
    assert bytes(seen) == data[100 : 11 << 20]
    assert asked == [100, (3 << 20) + 5, 9 << 20, 11 << 20]
