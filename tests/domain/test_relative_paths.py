"""relative_path: a folder's files keep their paths, made safe on every system, never leaving their folder."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyfiledrop.domain.names import base_name, relative_path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("dir/sub/b.txt", "dir/sub/b.txt"),
        ("plain.txt", "plain.txt"),
        ("../../etc/passwd", "etc/passwd"),
        ("/abs/x.bin", "abs/x.bin"),
        ("C:\\Users\\me\\f.txt", "C_/Users/me/f.txt"),
        ("a/CON/nul.txt", "a/_CON/nul.txt"),
        ("a/\x01bad\x7f/x.txt", "a/bad/x.txt"),
        ("./a/./b/../c.txt", "a/b/c.txt"),
        ("a/ .. /b.txt", "a/b.txt"),
        ('we*ird:fol"der/ok.txt', "we_ird_fol_der/ok.txt"),
        ("dir/", "dir"),
        ("../..", "upload"),
    ],
)
def test_examples(raw: str, expected: str) -> None:
    assert relative_path(raw) == expected


def test_depth_and_length_are_bounded() -> None:
    deep = "/".join(f"level{i}" for i in range(100)) + "/file.txt"
    path = relative_path(deep)
    assert path.count("/") <= 32 and path.endswith("level99/file.txt") and len(path.encode()) <= 1000
    assert base_name(path) == "file.txt"


@given(st.text(min_size=0, max_size=300))
def test_never_leaves_its_folder_nor_carries_control_characters(raw: str) -> None:
    path = relative_path(raw)
    parts = path.split("/")
    assert path and not path.startswith("/") and "\\" not in path.rsplit("/", 1)[0]
    assert all(part not in ("", ".", "..") for part in parts)
    assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in path)
