"""A zip of stored files, streamed as it is read: no temporary file, exact length ahead, any byte range.

Entries are *stored* (no compression), so every size is known before a byte is sent, and so is the whole archive's
length (Content-Length) and where each part of it lies (Range). What a zip also needs is each file's CRC-32, which
the server does not compute while receiving (it hashes sha256 only, and the receiving path is kept lean). So each
entry sets flag bit 3: its local header goes out without the CRC, which follows the data in a *data descriptor*,
and is repeated in the central directory at the end. A download from byte 0 computes every CRC as the bytes go by
(zlib.crc32 runs at several GB/s). A Range request that starts later needs the CRCs of files it does not send in
whole (for their descriptors and the central directory): those are read from the files before the answer starts,
and every CRC computed is kept by content (sha256 → crc32), so a resumed download computes nothing again.

ZIP64 extra fields are written for the entries (and the end record) that need them — a file of 4 GiB or more, an
entry or a central directory beyond 4 GiB, more than 65 534 entries — and only for those, so that small archives
open in every unzip.
"""

from __future__ import annotations

import struct
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

_LOCAL = 0x04034B50
_DESCRIPTOR = 0x08074B50
_CENTRAL = 0x02014B50
_END = 0x06054B50
_END64 = 0x06064B50
_LOCATOR64 = 0x07064B50
_FLAGS = 0x0808  # bit 3: CRC in a data descriptor; bit 11: names in UTF-8
_MAX32 = 0xFFFFFFFF
_MAX16 = 0xFFFF
_UNIX_FILE = 0o100644 << 16
_MADE_BY = (3 << 8) | 45  # Unix, spec 4.5

ReadRange = Callable[[int, int, int], AsyncIterator[bytes]]  # (entry index, start, end) → its bytes


@dataclass(frozen=True, slots=True)
class Entry:
    name: str  # a relative path with "/" separators, already safe (domain/names.py)
    size: int
    mtime: float


@dataclass(frozen=True, slots=True)
class _Placed:
    entry: Entry
    offset: int  # of its local header
    header: bytes  # the local header (no CRC: bit 3)
    zip64: bool  # sizes need 8 bytes

    @property
    def data_start(self) -> int:
        return self.offset + len(self.header)

    @property
    def descriptor_start(self) -> int:
        return self.data_start + self.entry.size

    @property
    def descriptor_size(self) -> int:
        return 24 if self.zip64 else 16

    @property
    def end(self) -> int:
        return self.descriptor_start + self.descriptor_size


class ZipLayout:
    """Where every byte of the archive lies, computed from names and sizes alone."""

    def __init__(self, entries: Sequence[Entry]) -> None:
        self.entries = list(entries)
        self.placed: list[_Placed] = []
        position = 0
        for entry in self.entries:
            zip64 = entry.size >= _MAX32
            placed = _Placed(entry, position, _local_header(entry, zip64), zip64)
            self.placed.append(placed)
            position = placed.end
        self.central_start = position
        self.central_size = sum(len(_central_header(p, 0)) for p in self.placed)
        self.tail_start = self.central_start + self.central_size
        self.length = self.tail_start + len(self.tail())

    def descriptor(self, index: int, crc: int) -> bytes:
        placed = self.placed[index]
        size = placed.entry.size
        if placed.zip64:
            return struct.pack("<IIQQ", _DESCRIPTOR, crc, size, size)
        return struct.pack("<IIII", _DESCRIPTOR, crc, size, size)

    def central_directory(self, crcs: Sequence[int]) -> bytes:
        return b"".join(_central_header(placed, crc) for placed, crc in zip(self.placed, crcs, strict=True))

    def tail(self) -> bytes:
        """The end of central directory record, with the ZIP64 one and its locator before it when needed."""
        count = len(self.placed)
        if count < _MAX16 and self.central_start < _MAX32 and self.central_size < _MAX32:
            return struct.pack("<IHHHHIIH", _END, 0, 0, count, count, self.central_size, self.central_start, 0)
        end64 = struct.pack("<IQHHIIQQQQ", _END64, 44, 45, 45, 0, 0, count, count, self.central_size,
                            self.central_start)  # fmt: skip
        locator = struct.pack("<IIQI", _LOCATOR64, 0, self.tail_start, 1)
        end = struct.pack("<IHHHHIIH", _END, 0, 0, _MAX16, _MAX16, _MAX32, _MAX32, 0)
        return end64 + locator + end

    def needed_crcs(self, start: int, end: int) -> list[int]:
        """Entries whose CRC the range [start, end) needs but does not compute itself (their data is not sent from
        its first byte to its last)."""
        needs_all = end > self.central_start
        needed = []
        for index, placed in enumerate(self.placed):
            wanted = needs_all or (start < placed.end and end > placed.descriptor_start)
            streams_whole = start <= placed.data_start and end >= placed.descriptor_start
            if wanted and not streams_whole:
                needed.append(index)
        return needed

    async def stream(self, start: int, end: int, crcs: dict[int, int], read: ReadRange,
                     on_crc: Callable[[int, int], Awaitable[None]]) -> AsyncIterator[bytes]:  # fmt: skip
        """The bytes [start, end) of the archive. ``crcs`` holds at least ``needed_crcs(start, end)``; the others
        are computed on the way and handed to ``on_crc`` (to be kept)."""
        for index, placed in enumerate(self.placed):
            if start >= placed.end:
                continue
            if end <= placed.offset:
                return
            for piece in _cut(placed.header, placed.offset, start, end):
                yield piece
            data_from, data_to = max(start, placed.data_start), min(end, placed.descriptor_start)
            crc = 0
            if data_from < data_to:
                async for block in read(index, data_from - placed.data_start, data_to - placed.data_start):
                    crc = zlib.crc32(block, crc)
                    yield block
            if data_from == placed.data_start and data_to == placed.descriptor_start and index not in crcs:
                crcs[index] = crc  # sent whole, from its first byte: its CRC is known now
                await on_crc(index, crc)
            if end > placed.descriptor_start:
                descriptor = self.descriptor(index, crcs[index])
                for piece in _cut(descriptor, placed.descriptor_start, start, end):
                    yield piece
        if end > self.central_start:
            directory = self.central_directory([crcs[i] for i in range(len(self.placed))]) + self.tail()
            for piece in _cut(directory, self.central_start, start, end):
                yield piece


def _cut(data: bytes, at: int, start: int, end: int) -> list[bytes]:
    """The part of ``data`` (which lies at ``at`` in the archive) inside [start, end)."""
    low, high = max(start - at, 0), min(end - at, len(data))
    return [data[low:high]] if low < high else []


def _dos_time(mtime: float) -> tuple[int, int]:
    t = time.localtime(max(mtime, 315532800.0))  # the zip epoch is 1980
    return (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2), ((t.tm_year - 1980) << 9) | (
        t.tm_mon << 5
    ) | t.tm_mday


def _local_header(entry: Entry, zip64: bool) -> bytes:
    name = entry.name.encode()
    clock, day = _dos_time(entry.mtime)
    # The sizes are known, so they are given here too (streaming readers can then find the end of stored data);
    # the CRC, not known yet, is left 0 as bit 3 says.
    if zip64:
        extra = struct.pack("<HHQQ", 0x0001, 16, entry.size, entry.size)
        fixed = struct.pack("<IHHHHHIIIHH", _LOCAL, 45, _FLAGS, 0, clock, day, 0, _MAX32, _MAX32, len(name), len(extra))
        return fixed + name + extra
    fixed = struct.pack("<IHHHHHIIIHH", _LOCAL, 20, _FLAGS, 0, clock, day, 0, entry.size, entry.size, len(name), 0)
    return fixed + name


def _central_header(placed: _Placed, crc: int) -> bytes:
    entry = placed.entry
    name = entry.name.encode()
    clock, day = _dos_time(entry.mtime)
    extra_values: list[int] = []
    size32 = entry.size
    if placed.zip64:
        extra_values += [entry.size, entry.size]
        size32 = _MAX32
    offset32 = placed.offset
    if placed.offset >= _MAX32:
        extra_values.append(placed.offset)
        offset32 = _MAX32
    extra = (
        struct.pack(f"<HH{len(extra_values)}Q", 0x0001, 8 * len(extra_values), *extra_values) if extra_values else b""
    )
    version = 45 if extra else 20
    fixed = struct.pack("<IHHHHHHIIIHHHHHII", _CENTRAL, _MADE_BY, version, _FLAGS, 0, clock, day, crc, size32, size32,
                        len(name), len(extra), 0, 0, 0, _UNIX_FILE, offset32)  # fmt: skip
    return fixed + name + extra


def unique_names(names: Sequence[str]) -> list[str]:
    """The same path twice in one archive would hide a file: the later ones become 'name (2).ext'."""
    seen: set[str] = set()
    result = []
    for name in names:
        candidate, number = name, 1
        while candidate in seen:
            number += 1
            stem, dot, ext = name.rpartition(".")
            candidate = f"{stem} ({number}).{ext}" if dot and "/" not in ext and stem else f"{name} ({number})"
        seen.add(candidate)
        result.append(candidate)
    return result
