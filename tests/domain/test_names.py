import os
import re
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyfiledrop.domain.ids import InvalidUploadId, new_upload_id, parse_upload_id, token_urlsafe
from pyfiledrop.domain.names import display_name, storage_name

_URLSAFE = re.compile(r"[A-Za-z0-9_-]+")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("a\x00b\x1fc.txt", "abc.txt"),
        ("", "upload"),
        ("..", "upload"),
        ("CON", "_CON"),
        ("lpt1.txt", "_lpt1.txt"),
        ('we"ird:na*me?.mp4', "we_ird_na_me_.mp4"),
        ("vidéo.mp4", "vidéo.mp4"),
    ],
)
def test_storage_name_is_one_safe_path_component(raw: str, expected: str) -> None:
    assert storage_name(raw) == expected
    assert "/" not in storage_name(raw) and "\x00" not in storage_name(raw)


def test_display_name_keeps_markup_as_text_but_drops_paths() -> None:
    assert display_name("dir/<img src=x onerror=alert(1)>.txt") == "<img src=x onerror=alert(1)>.txt"


def test_long_names_are_cut_keeping_the_extension() -> None:
    name = storage_name("x" * 500 + ".mkv")
    assert name.endswith(".mkv") and len(name.encode()) <= 200


def test_new_ids_are_unique_url_safe_and_parse() -> None:
    ids = {new_upload_id() for _ in range(1000)}
    assert len(ids) == 1000
    for upload_id in list(ids)[:20]:
        assert parse_upload_id(upload_id) == upload_id


@pytest.mark.parametrize("bad", ["", "short", "../" * 8 + "aaaaaaaa", "a" * 23 + "/", "a" * 25, "a" * 23 + "\x00"])
def test_malformed_ids_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidUploadId):
        parse_upload_id(bad)


def test_tokens_come_from_the_os_in_slices_of_the_right_length() -> None:
    tokens = [token_urlsafe(16) for _ in range(600)]  # 9,600 bytes: the 4 KiB pool is refilled twice
    assert len(set(tokens)) == 600
    assert all(len(t) == 22 and _URLSAFE.fullmatch(t) for t in tokens)
    assert len(token_urlsafe(5000)) == 6667  # more than the pool holds at once


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_does_not_hand_out_the_parents_pooled_bytes() -> None:
    token_urlsafe(1)  # the pool now holds bytes the child would otherwise share
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child process
        os.write(write_end, token_urlsafe(32).encode())
        os._exit(0)
    os.close(write_end)
    os.waitpid(child, 0)
    with os.fdopen(read_end) as pipe:
        from_child = pipe.read()
    assert len(from_child) == 43 and from_child != token_urlsafe(32)


@given(st.text(alphabet=st.characters(max_codepoint=0x3000), max_size=60))
def test_display_name_drops_exactly_the_control_and_format_characters(raw: str) -> None:
    expected = unicodedata.normalize("NFC", raw).replace("\\", "/").rsplit("/", 1)[-1]
    expected = "".join(ch for ch in expected if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp"))
    assert display_name(raw) == (expected.strip().strip(".") or "upload")  # (60 characters stay under 200 bytes)
