"""The streaming multipart/form-data parser, against bodies built by a small reference encoder."""

from __future__ import annotations

import asyncio
import itertools
import os
import string
from collections.abc import AsyncIterator, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyfiledrop.errors import BadRequest
from pyfiledrop.protocols.multipart import (
    Event,
    Field,
    FilePart,
    MultipartParser,
    PartEnd,
    iter_multipart,
    parse_boundary,
)

BOUNDARY = b"----WebKitFormBoundary7MA4YWxkTrZu0gW"
DELIMITER = b"\r\n--" + BOUNDARY
# RFC 2046 bcharsnospace; a space is allowed too, except at the end.
BCHARS = string.ascii_letters + string.digits + "'()+_,-./:=?"

Part = Field | tuple[FilePart, bytes]

# File data that is close to a delimiter in every way short of being one.
TRICKY_DATA = (
    b"\x00\r\n--" + BOUNDARY[:-1] + b"\r\n-" + BOUNDARY + b"\r\r\n--" + BOUNDARY[:5] + b"--" + BOUNDARY + b"\r\n" * 3
)


# -- reference encoder and helpers ---------------------------------------------------------------------------------


def quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def encode_part(part: Part) -> bytes:
    if isinstance(part, Field):
        head = f'Content-Disposition: form-data; name="{quote(part.name)}"\r\n\r\n'
        return head.encode() + part.value.encode()
    file, data = part
    head = (
        f'Content-Disposition: form-data; name="{quote(file.name)}"; filename="{quote(file.filename)}"\r\n'
        f"Content-Type: {file.content_type}\r\n\r\n"
    )
    return head.encode() + data


def encode(
    parts: Sequence[Part],
    boundary: bytes = BOUNDARY,
    *,
    preamble: bytes = b"",
    epilogue: bytes = b"",
    padding: bytes = b"",
) -> bytes:
    """A multipart/form-data body as RFC 2046 §5.1.1 lays it out."""
    out = [preamble + b"\r\n"] if preamble else []
    for part in parts:
        out.append(b"--" + boundary + padding + b"\r\n" + encode_part(part) + b"\r\n")
    out.append(b"--" + boundary + b"--" + padding + epilogue)
    return b"".join(out)


def expected_events(parts: Sequence[Part]) -> list[Event]:
    events: list[Event] = []
    for part in parts:
        if isinstance(part, Field):
            events.append(part)
        else:
            file, data = part
            events += [file, data, PartEnd()] if data else [file, PartEnd()]
    return events


def merged(events: list[Event]) -> list[Event]:
    """Consecutive data pieces joined into one, to compare with expected_events()."""
    out: list[Event] = []
    for event in events:
        if isinstance(event, bytes):
            assert event, "the parser emitted an empty data piece"
            if out and isinstance(out[-1], bytes):
                out[-1] += event
                continue
        out.append(event)
    return out


def parse(body: bytes, cuts: Sequence[int] = (), boundary: bytes = BOUNDARY, **limits: int) -> list[Event]:
    parser = MultipartParser(boundary, **limits)
    events: list[Event] = []
    edges = [0, *sorted(cuts), len(body)]
    for start, stop in itertools.pairwise(edges):
        events += parser.feed(body[start:stop])
    parser.close()
    return merged(events)


def parse_bytewise(body: bytes, boundary: bytes = BOUNDARY, **limits: int) -> list[Event]:
    return parse(body, range(1, len(body)), boundary, **limits)


def header_part(headers: str, data: bytes = b"x") -> bytes:
    return b"--" + BOUNDARY + b"\r\n" + headers.encode() + b"\r\n\r\n" + data + b"\r\n--" + BOUNDARY + b"--\r\n"


def sample_parts() -> list[Part]:
    return [
        Field("title", "holiday\r\nphotos"),
        (FilePart("file", "a.bin", "application/octet-stream"), TRICKY_DATA),
        Field("note", '€ and "quotes" and a backslash \\'),
    ]


# -- round trips -----------------------------------------------------------------------------------------------


def test_fields_and_a_file_parse_into_their_events() -> None:
    parts = sample_parts()
    assert parse(encode(parts)) == expected_events(parts)


def test_file_data_split_at_every_byte_reassembles_exactly() -> None:
    parts = sample_parts()
    body = encode(parts)
    for cut in range(len(body) + 1):
        assert parse(body, [cut]) == expected_events(parts), f"cut at {cut}"


def test_a_body_fed_one_byte_at_a_time_parses_the_same() -> None:
    parts = sample_parts()
    assert parse_bytewise(encode(parts)) == expected_events(parts)


def test_part_headers_split_across_large_buffers_parse_the_same() -> None:
    parts: list[Part] = [Field("a", "1"), (FilePart("file", "big.bin", "image/png"), os.urandom(40_000) + TRICKY_DATA)]
    body = encode(parts)
    file_start = body.index(b"Content-Type: image/png") + 30
    for cut in range(body.index(b"--" + BOUNDARY, 10), file_start):
        assert parse(body, [cut]) == expected_events(parts), f"cut at {cut}"


def without_boundary(part: Part, boundary: bytes) -> Part:
    """The sender picks a boundary that is not in the content (RFC 2046 §5.1.1); removing it may form it anew."""
    while b"\r\n--" + boundary in encode_part(part):
        if isinstance(part, Field):
            part = Field(part.name, part.value.replace(boundary.decode(), ""))
        else:
            part = (part[0], part[1].replace(boundary, b""))
    return part


@st.composite
def bodies(draw: st.DrawFn) -> tuple[bytes, bytes, list[Part], list[int]]:
    boundary = draw(st.text(BCHARS, min_size=1, max_size=70)).encode()
    delimiter = b"\r\n--" + boundary
    lookalikes = [delimiter[:k] for k in range(1, len(delimiter))] + [b"--" + boundary, b"\r", b"\n", b"\r\n\r\n"]
    names = st.text(st.characters(exclude_categories=["Cc", "Cs"]), max_size=10)
    values = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
    data = st.lists(st.one_of(st.binary(max_size=24), st.sampled_from(lookalikes)), max_size=30).map(b"".join)
    field = st.builds(Field, names, values)
    file = st.tuples(
        st.builds(FilePart, names, names, st.sampled_from(["image/png", "text/plain; charset=utf-8"])), data
    )
    parts = draw(st.lists(st.one_of(field, file), max_size=5))
    parts = [without_boundary(part, boundary) for part in parts]
    preamble = draw(st.binary(max_size=20)).replace(b"-", b"")
    padding = draw(st.sampled_from([b"", b" ", b"\t ", b"   "]))
    body = encode(parts, boundary, preamble=preamble, epilogue=draw(st.binary(max_size=20)), padding=padding)
    cuts = draw(st.lists(st.integers(0, len(body)), max_size=12))
    return body, boundary, parts, cuts


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies(), st.sampled_from([16 * 1024, 400]))
def test_any_body_split_at_random_points_parses_byte_identically(
    case: tuple[bytes, bytes, list[Part], list[int]], max_header_bytes: int
) -> None:
    body, boundary, parts, cuts = case
    assert parse(body, cuts, boundary, max_header_bytes=max_header_bytes) == expected_events(parts)


@settings(max_examples=50, deadline=None)
@given(bodies())
def test_any_body_fed_one_byte_at_a_time_parses_byte_identically(
    case: tuple[bytes, bytes, list[Part], list[int]],
) -> None:
    body, boundary, parts, _ = case
    assert parse_bytewise(body, boundary) == expected_events(parts)


def test_a_file_part_followed_by_more_fields_yields_them_all() -> None:
    parts: list[Part] = [
        (FilePart("file", "a.txt", "text/plain"), b"first\r\n"),
        Field("after", "1"),
        Field("again", "2"),
        (FilePart("second", "b.txt", "text/plain"), b"second"),
        Field("last", ""),
    ]
    assert parse(encode(parts)) == expected_events(parts)


def test_an_empty_file_part_yields_its_start_and_end_only() -> None:
    parts: list[Part] = [(FilePart("file", "empty.txt", "text/plain"), b""), Field("after", "x")]
    assert parse(encode(parts)) == [FilePart("file", "empty.txt", "text/plain"), PartEnd(), Field("after", "x")]


def test_a_body_with_only_the_closing_boundary_has_no_parts() -> None:
    assert parse(b"--" + BOUNDARY + b"--\r\n") == []


def test_the_dropzone_5_chunk_form_parses_into_its_fields_and_file() -> None:
    chunk = os.urandom(3000) + TRICKY_DATA
    fields = {
        "dzuuid": "0b6c4f1e-6c27-4a36-9b4a-2a8f14d1c9e2",
        "dzchunkindex": "2",
        "dztotalfilesize": "10485760",
        "dzchunksize": "2000000",
        "dztotalchunkcount": "6",
        "dzchunkbyteoffset": "4000000",
    }
    # What Chrome sends for Dropzone 5's FormData: the params first, then the chunk as "file" with the file's name
    # and type (Dropzone slices the File with its type).
    body = b"".join(
        b"------WebKitFormBoundary7MA4YWxkTrZu0gW\r\n"
        + f'Content-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    body += (
        b"------WebKitFormBoundary7MA4YWxkTrZu0gW\r\n"
        b'Content-Disposition: form-data; name="file"; filename="holiday 2024.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + chunk + b"\r\n------WebKitFormBoundary7MA4YWxkTrZu0gW--\r\n"
    )
    boundary = parse_boundary("multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW")
    assert parse(body, range(0, len(body), 1000), boundary) == [
        *(Field(name, value) for name, value in fields.items()),
        FilePart("file", "holiday 2024.jpg", "image/jpeg"),
        chunk,
        PartEnd(),
    ]


# -- zero copy and hold-back -----------------------------------------------------------------------------------


def file_parser() -> MultipartParser:
    parser = MultipartParser(BOUNDARY)
    start = parser.feed(b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="f"; filename="f"\r\n\r\n')
    assert start == [FilePart("f", "f", "application/octet-stream")]
    return parser


def test_a_buffer_of_plain_file_data_is_passed_on_as_the_same_object() -> None:
    parser = file_parser()
    data = os.urandom(1 << 20).replace(b"\r", b"")
    events = parser.feed(data)
    assert len(events) == 1
    assert events[0] is data


def test_a_possible_delimiter_start_is_held_back_then_released_without_joining_buffers() -> None:
    parser = file_parser()
    first = b"a" * 1000 + DELIMITER[:-1]
    assert parser.feed(first) == [b"a" * 1000]
    second = b"!" + os.urandom(100_000).replace(b"\r", b"")
    events = parser.feed(second)
    assert events == [DELIMITER[:-1], second]
    assert events[1] is second


def test_a_delimiter_straddling_two_buffers_ends_the_part() -> None:
    parser = file_parser()
    assert parser.feed(b"data" + DELIMITER[:7]) == [b"data"]
    assert parser.feed(DELIMITER[7:] + b"--" + b"x" * 10_000) == [PartEnd()]
    parser.close()


def test_bytes_after_the_closing_boundary_are_ignored_in_later_feeds() -> None:
    parser = MultipartParser(BOUNDARY)
    assert parser.feed(encode([Field("a", "b")])) == [Field("a", "b")]
    assert parser.feed(b"\r\n--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name=z\r\n\r\n") == []
    parser.close()


# -- robustness ------------------------------------------------------------------------------------------------


def test_the_preamble_and_epilogue_are_ignored() -> None:
    parts = sample_parts()
    body = encode(parts, preamble=b"This is a multi-part message in MIME format.", epilogue=b"\r\nbye\r\n")
    assert parse(body) == expected_events(parts)


def test_transport_padding_after_a_boundary_is_tolerated() -> None:
    parts = sample_parts()
    assert parse_bytewise(encode(parts, padding=b" \t  ")) == expected_events(parts)


def test_part_headers_are_case_insensitive_and_parameters_may_be_unquoted() -> None:
    body = header_part("CONTENT-disposition: Form-Data; NAME=upload; FileName=plain.txt\r\ncontent-TYPE: text/csv")
    assert parse(body) == [FilePart("upload", "plain.txt", "text/csv"), b"x", PartEnd()]


def test_escaped_quotes_and_semicolons_in_a_quoted_filename_are_kept() -> None:
    body = header_part(r'Content-Disposition: form-data; name="f"; filename="say \"hi\"; now \\ ok.txt"')
    assert parse(body)[0] == FilePart("f", 'say "hi"; now \\ ok.txt', "application/octet-stream")


def test_a_filename_star_is_decoded_and_preferred_over_filename() -> None:
    body = header_part(
        "Content-Disposition: form-data; name=f; filename=\"x.txt\"; filename*=UTF-8''%E2%82%AC%20rates.txt"
    )
    assert parse(body)[0] == FilePart("f", "€ rates.txt", "application/octet-stream")


def test_a_raw_utf8_filename_is_decoded() -> None:
    body = header_part('Content-Disposition: form-data; name="f"; filename="Ünïcödé 文件.txt"')
    assert parse(body)[0] == FilePart("f", "Ünïcödé 文件.txt", "application/octet-stream")


def test_a_filename_in_latin1_is_still_accepted() -> None:
    body = b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="f"; filename="caf\xe9"\r\n\r\nx'
    assert parse(body + b"\r\n--" + BOUNDARY + b"--")[0] == FilePart("f", "café", "application/octet-stream")


def test_an_empty_filename_is_kept_as_sent() -> None:
    body = header_part('Content-Disposition: form-data; name="file"; filename=""', data=b"")
    assert parse(body) == [FilePart("file", "", "application/octet-stream"), PartEnd()]


def test_lf_only_line_endings_in_part_headers_are_accepted() -> None:
    body = b"--" + BOUNDARY + b'\nContent-Disposition: form-data; name="f"; filename="a"\nContent-Type: text/plain\n\n'
    body += b"data\r\n--" + BOUNDARY + b"--"
    assert parse_bytewise(body) == [FilePart("f", "a", "text/plain"), b"data", PartEnd()]


def test_folded_header_lines_are_joined() -> None:
    body = header_part('Content-Disposition: form-data;\r\n name="f";\r\n\tfilename="a"')
    assert parse(body)[0] == FilePart("f", "a", "application/octet-stream")


# -- errors ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param("Content-Type: text/plain", id="no content-disposition"),
        pytest.param("", id="no headers at all"),
    ],
)
def test_a_part_without_content_disposition_is_rejected(headers: str) -> None:
    body = b"--" + BOUNDARY + b"\r\n" + headers.encode() + b"\r\n\r\nx\r\n--" + BOUNDARY + b"--"
    with pytest.raises(BadRequest, match="no Content-Disposition"):
        parse(body)


def test_a_part_without_a_name_is_rejected() -> None:
    with pytest.raises(BadRequest, match="has no name"):
        parse(header_part('Content-Disposition: form-data; filename="a.txt"'))


def test_a_disposition_other_than_form_data_is_rejected() -> None:
    with pytest.raises(BadRequest, match="not form-data"):
        parse(header_part('Content-Disposition: attachment; name="a"'))


def test_a_parameter_given_twice_is_rejected() -> None:
    with pytest.raises(BadRequest, match="twice"):
        parse(header_part('Content-Disposition: form-data; name="a"; name="b"'))


def test_a_header_line_without_a_colon_is_rejected() -> None:
    with pytest.raises(BadRequest, match="malformed header line"):
        parse(header_part('Content-Disposition: form-data; name="a"\r\nnonsense'))


def test_a_malformed_filename_star_is_rejected() -> None:
    with pytest.raises(BadRequest, match=r"filename\*"):
        parse(header_part("Content-Disposition: form-data; name=f; filename*=%E2%82%AC"))
    with pytest.raises(BadRequest, match="not valid utf-8"):
        parse(header_part("Content-Disposition: form-data; name=f; filename*=utf-8''%E2%82"))


@pytest.mark.parametrize("keep", [0, 1, 10, 60, 200, -40, -10, -3, -1])
def test_a_body_that_ends_before_its_closing_boundary_is_rejected(keep: int) -> None:
    body = encode(sample_parts())
    with pytest.raises(BadRequest, match=r"^the multipart body ended before its closing boundary$"):
        parse(body[:keep])


def test_a_body_without_any_boundary_is_rejected() -> None:
    with pytest.raises(BadRequest, match="ended before its closing boundary"):
        parse(b"name=value&other=1")


def test_too_many_parts_are_rejected() -> None:
    body = encode([Field(f"f{i}", "v") for i in range(5)])
    assert len(parse(body, max_parts=5)) == 5
    with pytest.raises(BadRequest, match="more than 4 parts"):
        parse(body, max_parts=4)


def test_a_field_larger_than_its_limit_is_rejected() -> None:
    body = encode([Field("x", "a" * 11)])
    assert parse(body, max_field_bytes=11) == [Field("x", "a" * 11)]
    with pytest.raises(BadRequest, match=r"^form field 'x' is larger than 10 bytes$"):
        parse_bytewise(body, max_field_bytes=10)


def test_a_file_part_is_not_bound_by_the_field_limit() -> None:
    parts: list[Part] = [(FilePart("file", "a", "text/plain"), b"z" * 1000)]
    assert parse(encode(parts), max_field_bytes=10) == expected_events(parts)


def test_part_headers_longer_than_their_limit_are_rejected() -> None:
    body = header_part(f'Content-Disposition: form-data; name="{"n" * 300}"')
    assert parse(body, max_header_bytes=400) == [Field("n" * 300, "x")]
    with pytest.raises(BadRequest, match="longer than 200 bytes"):
        parse(body, max_header_bytes=200)
    with pytest.raises(BadRequest, match="longer than 200 bytes"):
        parse_bytewise(body, max_header_bytes=200)


def test_a_field_that_is_not_utf8_is_rejected() -> None:
    body = b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="x"\r\n\r\n\xff\xfe\r\n--' + BOUNDARY + b"--"
    with pytest.raises(BadRequest, match="'x' is not valid UTF-8"):
        parse(body)


def test_text_after_a_boundary_on_its_line_is_rejected() -> None:
    body = b"--" + BOUNDARY + b'X\r\nContent-Disposition: form-data; name="x"\r\n\r\nv\r\n--' + BOUNDARY + b"--"
    with pytest.raises(BadRequest, match="is followed by 'X'"):
        parse(body)


def test_an_empty_boundary_is_rejected() -> None:
    with pytest.raises(BadRequest, match="empty"):
        MultipartParser(b"")


# -- parse_boundary ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "boundary"),
    [
        ("multipart/form-data; boundary=----WebKitFormBoundaryAbC", b"----WebKitFormBoundaryAbC"),
        ('multipart/form-data; boundary="quoted:boundary=yes"', b"quoted:boundary=yes"),
        ('Multipart/Form-Data ;charset=utf-8;  BOUNDARY = "with space" ', b"with space"),
        ("multipart/form-data; boundary=" + "b" * 70, b"b" * 70),
    ],
)
def test_a_boundary_is_read_from_the_content_type(header: str, boundary: bytes) -> None:
    assert parse_boundary(header) == boundary


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("application/json", "is not multipart/form-data"),
        ("", "is not multipart/form-data"),
        ("multipart/mixed; boundary=abc", "is not multipart/form-data"),
        ("multipart/form-data", "has no boundary"),
        ("multipart/form-data; charset=utf-8", "has no boundary"),
        ("multipart/form-data; boundary=" + "b" * 71, "1 to 70"),
        ('multipart/form-data; boundary=""', "1 to 70"),
        ('multipart/form-data; boundary="ends with space "', "trailing space"),
        ('multipart/form-data; boundary="unterminated', "malformed"),
    ],
)
def test_a_content_type_without_a_usable_boundary_is_rejected(header: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_boundary(header)


# -- the async wrapper -------------------------------------------------------------------------------------------


async def chunks(body: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


async def collect(body: bytes, size: int, **limits: int) -> list[Event]:
    return [event async for event in iter_multipart(chunks(body, size), BOUNDARY, **limits)]


def test_iter_multipart_streams_the_events_of_an_async_body() -> None:
    parts = sample_parts()
    assert merged(asyncio.run(collect(encode(parts), 7))) == expected_events(parts)


def test_iter_multipart_rejects_a_truncated_body_and_passes_on_limits() -> None:
    body = encode(sample_parts())
    with pytest.raises(BadRequest, match="ended before its closing boundary"):
        asyncio.run(collect(body[:-5], 64))
    with pytest.raises(BadRequest, match="more than 2 parts"):
        asyncio.run(collect(body, 64, max_parts=2))
