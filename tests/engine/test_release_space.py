"""Giving back the blocks of unrecorded bytes (storage/files.py ``release_range``) and the database's disk reserve
(storage/reserve.py), on real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyfiledrop.storage import files
from pyfiledrop.storage.files import release_range
from pyfiledrop.storage.reserve import SpaceReserve

MiB = 1 << 20


def _sparse_with_data(path: Path, size: int, written: list[tuple[int, bytes]]) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.ftruncate(fd, size)
    for offset, data in written:
        os.pwrite(fd, data, offset)
    os.fsync(fd)
    return fd


def _blocks(fd: int) -> int:
    return os.fstat(fd).st_blocks * 512


def test_a_punched_range_frees_its_blocks_and_keeps_the_rest_and_the_length(tmp_path: Path) -> None:
    if files._punch is None:
        pytest.skip("no fallocate(PUNCH_HOLE) on this platform")
    fd = _sparse_with_data(tmp_path / "p", 16 * MiB, [(0, b"a" * 4 * MiB), (4 * MiB, b"b" * 4 * MiB)])
    try:
        before = _blocks(fd)
        assert release_range(fd, 4 * MiB, 8 * MiB, tail=False)
        assert before - _blocks(fd) >= 4 * MiB - 4096
        assert os.fstat(fd).st_size == 16 * MiB
        assert os.pread(fd, 4 * MiB, 0) == b"a" * 4 * MiB
        assert os.pread(fd, 16, 4 * MiB) == bytes(16)
    finally:
        os.close(fd)


def test_without_hole_punching_only_a_tail_is_cut_and_the_length_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "_punch", None)
    fd = _sparse_with_data(tmp_path / "p", 16 * MiB, [(0, b"a" * 3 * MiB), (3 * MiB, b"b" * 3 * MiB)])
    try:
        before = _blocks(fd)
        assert not release_range(fd, 0, MiB, tail=False), "a range with recorded bytes after it cannot be cut"
        assert _blocks(fd) == before
        assert release_range(fd, 3 * MiB, 6 * MiB, tail=True)
        assert before - _blocks(fd) >= 3 * MiB - 4096
        assert os.fstat(fd).st_size == 16 * MiB
        assert os.pread(fd, 3 * MiB, 0) == b"a" * 3 * MiB
    finally:
        os.close(fd)


def test_the_reserve_is_made_released_and_made_again_only_with_room_beside_it(tmp_path: Path) -> None:
    reserve = SpaceReserve(tmp_path / ".reserve", size=2 * MiB)
    assert reserve.ready() and reserve.armed
    assert (tmp_path / ".reserve").stat().st_blocks * 512 >= 2 * MiB
    assert reserve.release()
    assert not (tmp_path / ".reserve").exists()
    assert not reserve.release(), "nothing left to give"
    assert reserve.ready(), "plenty of room here: made again"
    assert SpaceReserve(tmp_path / ".reserve", size=2 * MiB).ready(), "a later run finds it whole"
