"""FormStream / FileData: a file part read with ``readinto`` (the fast way) gives exactly what the parser gives.

Bodies are built to be awkward: file data full of CRs, line ends and prefixes of the delimiter, delimiters that
straddle the reads, views of every size (a few bytes at the end of a buffer, slices of an mmap as the storage
passes, plain bytearrays), reads that come back short, fields after the file part, epilogues.
"""

from __future__ import annotations

import asyncio
import mmap
import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pyfiledrop.errors import BadRequest
from pyfiledrop.protocols.formdata import FileData, FormStream
from pyfiledrop.protocols.multipart import Field, FilePart, MultipartParser, PartEnd
from tests.socketlike import PumpingSocketLike, SocketLike

BOUNDARY = b"----pfdBoundary7MA4YWxkTrZu0gW"
DELIMITER = b"\r\n--" + BOUNDARY
READS = (1, 2, 5, 17, 36, 100, 1000, 40_000)  # short reads put delimiters across read boundaries


def form(before: list[tuple[str, str]], data: bytes, after: list[tuple[str, str]], epilogue: bytes = b"") -> bytes:
    def field(name: str, value: str) -> bytes:
        return b"--" + BOUNDARY + f'\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()

    body = b"".join(field(n, v) for n, v in before)
    body += b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="file"; filename="f.bin"\r\n\r\n' + data
    body += b"\r\n" + b"".join(field(n, v) for n, v in after)[:-2] if after else b""
    return body + DELIMITER + b"--\r\n" + epilogue


class Collect:
    """A fill target (``storage.base.FillTarget``) that hands out views of odd sizes and says stop after a few."""

    def __init__(self, rng: random.Random, data: bytearray) -> None:
        self.rng = rng
        self.data = data
        self.left = rng.choice([1, 2, 1000])
        self.view = memoryview(b"")
        self.said_stop = False

    def next_view(self) -> memoryview | None:
        if self.left == 0:
            self.said_stop = True
            return None
        self.left -= 1
        self.view = memoryview(bytearray(self.rng.choice([1, 3, 40, 1023, 1024, 4096, 70_000, 1 << 20])))
        return self.view

    def filled(self, n: int) -> None:
        self.data += self.view[:n]


async def read_fast(body: bytes, seed: int, pumping: bool = False) -> tuple[dict[str, str], bytes]:
    """The file part read with ``readinto`` in odd sizes — and, ``pumping``, now and then with ``pump`` (the body
    reads itself in a worker thread, the delimiter searched there)."""
    rng = random.Random(seed)
    stream = FormStream((PumpingSocketLike if pumping else SocketLike)(body, rng, READS), BOUNDARY)
    fields: dict[str, str] = {}
    data = bytearray()
    buffer = mmap.mmap(-1, 1 << 20)
    async for event in stream:
        match event:
            case Field(name=name, value=value):
                fields[name] = value
            case FilePart():
                part = stream.file_data()
                while True:
                    if pumping and rng.random() < 0.7:
                        assert isinstance(part, FileData)
                        target = Collect(rng, data)
                        pumped = await part.pump(target)
                        if pumped == 0 and not target.said_stop:
                            break
                        if pumped is not None:
                            continue
                    size = rng.choice([1, 3, 40, 1023, 1024, 4096, 70_000, 1 << 20])
                    if rng.random() < 0.5:
                        start = rng.randint(0, (1 << 20) - size)
                        view = memoryview(buffer)[start : start + size]
                    else:
                        view = memoryview(bytearray(size))
                    seen: list[bytes] = []
                    n = await part.readinto(view, lambda read, seen=seen: seen.append(bytes(read)))
                    assert seen == ([bytes(view[:n])] if n else []), "observe sees exactly the bytes given, once"
                    if n == 0:
                        break
                    data += view[:n]
    return fields, bytes(data)


def read_with_parser(body: bytes) -> tuple[dict[str, str], bytes]:
    parser = MultipartParser(BOUNDARY)
    fields: dict[str, str] = {}
    data = bytearray()
    for event in parser.feed(body):
        if isinstance(event, Field):
            fields[event.name] = event.value
        elif isinstance(event, bytes):
            data += event
    parser.close()
    return fields, bytes(data)


awkward = st.lists(
    st.sampled_from([b"\r", b"\n", b"\r\n", b"-", b"--", DELIMITER[:5], DELIMITER[:-1], b"\r\n--" + BOUNDARY[:9]])
    | st.binary(max_size=300),
    max_size=60,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(
    data=awkward, large=st.integers(0, 300_000), after=st.booleans(), seed=st.integers(0, 10_000), pumping=st.booleans()
)
def test_readinto_gives_what_the_parser_gives(data: bytes, large: int, after: bool, seed: int, pumping: bool) -> None:
    data = data + random.Random(seed).randbytes(large) + data
    assume(DELIMITER not in data)  # the awkward pieces can join into the delimiter: no valid form holds that
    body = form([("dzuuid", "x"), ("dzchunkindex", "0")], data, [("late", "field")] if after else [], b"epilogue")
    expected = read_with_parser(body)
    assert expected[1] == data
    assert asyncio.run(read_fast(body, seed, pumping)) == expected


@pytest.mark.parametrize("seed", range(40))
def test_a_delimiter_at_the_very_start_of_a_read_ends_the_part_once(seed: int) -> None:
    """Reads of exactly the file's remaining length put the delimiter at the start of the next read."""

    async def main() -> list[str]:
        body = form([], b"x" * 5000, [("late", "1")])
        stream = FormStream(SocketLike(body, random.Random(seed), READS), BOUNDARY)
        seen = []
        async for event in stream:
            seen.append(type(event).__name__)
            if isinstance(event, FilePart):
                part, total = stream.file_data(), 0
                while n := await part.readinto(memoryview(bytearray(5000 - total or 1)) if total < 5000 else
                                                memoryview(bytearray(4096))):  # fmt: skip
                    total += n
                assert total == 5000
        return seen

    assert asyncio.run(main()) == ["FilePart", "Field"]


def test_a_body_that_ends_inside_the_file_part_is_a_bad_request() -> None:
    body = form([], b"some data", [])[: -len(DELIMITER) - 4]
    with pytest.raises(BadRequest):
        asyncio.run(read_fast(body, 1))


def test_the_file_part_ends_once_and_the_stream_goes_on_after_it() -> None:
    async def main() -> list[object]:
        stream = FormStream(SocketLike(form([], b"abc" * 1000, [("late", "1")]), random.Random(2), READS), BOUNDARY)
        seen: list[object] = []
        async for event in stream:
            if isinstance(event, FilePart):
                part = stream.file_data()
                view = memoryview(bytearray(10_000))
                total = 0
                while n := await part.readinto(view):
                    total += n
                assert total == 3000
                assert await part.readinto(view) == 0, "the end stays the end"
            seen.append(event)
        return seen

    seen = asyncio.run(main())
    assert [type(e).__name__ for e in seen] == ["FilePart", "Field"]
    assert not any(isinstance(e, PartEnd) for e in seen), "the part's end was taken by its reader"
