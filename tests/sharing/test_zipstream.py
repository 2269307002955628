"""The streamed zip's layout, read back by Python's zipfile and Info-ZIP: stored entries with data descriptors,
exact length ahead, any byte range, ZIP64 where a size or an offset passes 4 GiB."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import zipfile
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pyfiledrop.web.zipstream import Entry, ZipLayout, unique_names

MTIME = 1_700_000_000.0


def _stream(layout: ZipLayout, datas: list[bytes], start: int, end: int, crcs: dict[int, int]) -> bytes:
    async def read(index: int, first: int, last: int) -> AsyncIterator[bytes]:
        yield datas[index][first:last]

    async def remember(index: int, crc: int) -> None:
        assert crc == zlib.crc32(datas[index])

    async def collect() -> bytes:
        return b"".join([piece async for piece in layout.stream(start, end, crcs, read, remember)])

    return asyncio.run(collect())


def test_whole_archive_and_every_range_match() -> None:
    datas = [os.urandom(3000), b"", "héllo wörld\n".encode() * 50]
    names = ["dir/sub/a.bin", "empty", "dir/ünïcode.txt"]
    layout = ZipLayout([Entry(n, len(d), MTIME) for n, d in zip(names, datas, strict=True)])
    whole = _stream(layout, datas, 0, layout.length, {})
    assert len(whole) == layout.length
    archive = zipfile.ZipFile(io.BytesIO(whole))
    assert archive.testzip() is None and archive.namelist() == names
    assert [archive.read(n) for n in names] == datas
    every_crc = {i: zlib.crc32(d) for i, d in enumerate(datas)}
    for start in range(0, layout.length, 41):
        for end in (start + 1, start + 500, layout.length):
            end = min(end, layout.length)
            given = {i: every_crc[i] for i in layout.needed_crcs(start, end)}
            assert _stream(layout, datas, start, end, given) == whole[start:end], (start, end)


@pytest.mark.skipif(shutil.which("unzip") is None, reason="Info-ZIP unzip is not installed")
def test_info_zip_accepts_it(tmp_path: Path) -> None:
    datas = [os.urandom(5000), b"tail"]
    layout = ZipLayout([Entry("x/one.bin", 5000, MTIME), Entry("two.txt", 4, MTIME)])
    path = tmp_path / "a.zip"
    path.write_bytes(_stream(layout, datas, 0, layout.length, {}))
    checked = subprocess.run(["unzip", "-t", str(path)], capture_output=True, timeout=30)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_zip64_for_a_file_over_4_gib_and_the_entries_after_it(tmp_path: Path) -> None:
    """A 5 GiB entry of zeros is written sparsely (never held in memory); the small file after it lies beyond
    4 GiB, so its offset needs ZIP64 too, and so does the central directory."""
    big = 5 << 30
    tail = b"after the big one"
    layout = ZipLayout([Entry("big.bin", big, MTIME), Entry("small.txt", len(tail), MTIME)])
    crcs = {0: 0x12345678, 1: zlib.crc32(tail)}  # the big one's data is skipped below: any CRC will do

    async def read(index: int, first: int, last: int) -> AsyncIterator[bytes]:
        if index == 1:
            yield tail[first:last]
            return
        raise AssertionError("the big entry's data is not read here")

    async def nothing(index: int, crc: int) -> None:
        return None

    path = tmp_path / "big.zip"
    placed = layout.placed[0]

    async def write() -> None:
        with path.open("wb") as out:
            async for piece in layout.stream(0, placed.data_start, crcs, read, nothing):
                out.write(piece)
            out.seek(placed.descriptor_start)  # a hole where the zeros would be
            async for piece in layout.stream(placed.descriptor_start, layout.length, crcs, read, nothing):
                out.write(piece)

    asyncio.run(write())
    assert path.stat().st_size == layout.length
    archive = zipfile.ZipFile(path)
    info = {i.filename: i for i in archive.infolist()}
    assert info["big.bin"].file_size == big and info["small.txt"].header_offset > 0xFFFFFFFF
    assert archive.read("small.txt") == tail


def test_a_name_given_twice_is_kept_apart() -> None:
    assert unique_names(["b.txt", "b.txt", "dir/b.txt", "b.txt", "noext", "noext"]) == [
        "b.txt", "b (2).txt", "dir/b.txt", "b (3).txt", "noext", "noext (2)"]  # fmt: skip
