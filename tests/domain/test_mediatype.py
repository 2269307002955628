"""The media type grammar of RFC 9110 §8.3.1, as the server applies it to types clients declare."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyfiledrop.domain.mediatype import FALLBACK, MAX_LENGTH, REFUSED, declared_type, is_media_type, safe_media_type


@pytest.mark.parametrize(
    "value",
    ["text/plain", "application/vnd.api+json", "text/plain;charset=utf-8", "text/plain ; charset=utf-8",
     'text/plain; charset="utf-8"', 'a/b; x="quoted \\" pair"', "text/plain;", "text/plain; ;", "*/*",
     "multipart/form-data; boundary=----x"],
)  # fmt: skip
def test_media_types_pass(value: str) -> None:
    assert is_media_type(value)
    assert safe_media_type(value) == value


@pytest.mark.parametrize(
    "value",
    ["", "text", "text/", "/plain", "text/plain/x", "text /plain", "text/plain; charset", "text/plain; =x",
     "text/plain; charset=€", 'text/plain; x="é"', "text/plain\r\n\r\n<script>", "text/html\r", "text/html\n",
     "text/html\x00", "text/html, text/plain", 'text/plain; x="open', "tëxt/plain", "text/plain; a=b c"],
)  # fmt: skip
def test_anything_else_is_octet_stream(value: str) -> None:
    assert not is_media_type(value)
    assert safe_media_type(value) == FALLBACK


def test_blanks_around_are_dropped_and_none_is_octet_stream() -> None:
    assert safe_media_type("  text/csv\t") == "text/csv"
    assert safe_media_type(None) == FALLBACK
    assert safe_media_type("a/" + "b" * MAX_LENGTH) == FALLBACK


@given(st.text(max_size=80))
def test_what_passes_is_printable_ascii_a_header_can_carry(value: str) -> None:
    served = safe_media_type(value)
    assert served.isascii() and served.isprintable()
    assert "\r" not in served and "\n" not in served and "\x00" not in served
    served.encode("latin-1")


def test_what_is_stored_of_a_declared_type() -> None:
    assert declared_type("text/csv ") == "text/csv"
    assert declared_type(None) == declared_type("") == declared_type(" ") == FALLBACK  # none declared
    assert declared_type("text/html\r\n\r\n<script>") == REFUSED
    assert safe_media_type(REFUSED) == FALLBACK
