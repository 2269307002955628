"""POST /upload: the Dropzone.js chunk protocol of the seed script, byte-compatible, streamed.

Each chunk is a multipart form: dzuuid, dzchunkindex, dztotalfilesize, dzchunksize, dztotalchunkcount,
dzchunkbyteoffset, then the file part ``file``. The file part goes straight to its byte offset; it is
never spooled. Without dzuuid the form is a whole, un-chunked file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from pyfiledrop.domain.ids import parse_alias
from pyfiledrop.domain.model import Protocol, Upload
from pyfiledrop.engine.service import Chunk, NewUpload
from pyfiledrop.errors import BadRequest, PyfiledropError, TooLarge
from pyfiledrop.protocols.formdata import FormStream
from pyfiledrop.protocols.multipart import Field, FilePart, PartEnd, parse_boundary
from pyfiledrop.web.access import Uploader
from pyfiledrop.web.api import upload_json
from pyfiledrop.web.auth import token_headers
from pyfiledrop.web.context import Context
from pyfiledrop.web.http import Request, Response, json_response, timed_stream

_FORM_OVERHEAD = 64 * 1024  # room for the form fields and part headers around the file bytes
_DZ_FIELDS = ("dzchunkindex", "dztotalfilesize", "dzchunksize", "dztotalchunkcount", "dzchunkbyteoffset")


@dataclass(frozen=True, slots=True)
class DzChunk:
    uuid: str
    index: int
    total_size: int
    chunk_size: int
    chunk_count: int
    offset: int

    @property
    def length(self) -> int:
        return max(0, min(self.chunk_size, self.total_size - self.offset))


def parse_chunk_fields(fields: dict[str, str], max_bytes: int) -> DzChunk:
    missing = [name for name in _DZ_FIELDS if name not in fields]
    if missing:
        raise BadRequest(f"not all required fields supplied, missing {', '.join(missing)}")
    try:
        numbers = [int(fields[name]) for name in _DZ_FIELDS]
    except ValueError:
        raise BadRequest(f"{', '.join(_DZ_FIELDS)} must be integers") from None
    chunk = DzChunk(parse_alias(fields["dzuuid"]), *numbers)
    if min(numbers) < 0 or chunk.chunk_size == 0:
        raise BadRequest("Dropzone chunk fields must be non-negative and dzchunksize positive")
    if chunk.total_size > max_bytes:
        raise TooLarge(max_bytes, chunk.total_size)
    if chunk.index >= max(chunk.chunk_count, 1) or chunk.offset != chunk.index * chunk.chunk_size:
        raise BadRequest(f"chunk {chunk.index} of {chunk.chunk_count} at offset {chunk.offset} is inconsistent")
    expected_count = -(-chunk.total_size // chunk.chunk_size)
    if chunk.offset > chunk.total_size or chunk.chunk_count not in (expected_count, max(expected_count, 1)):
        raise BadRequest("dztotalchunkcount does not match dztotalfilesize and dzchunksize")
    return chunk


async def upload(ctx: Context, request: Request) -> Response:
    length = request.content_length
    if length is not None and length > ctx.settings.max_size_bytes + _FORM_OVERHEAD:
        raise TooLarge(ctx.settings.max_size_bytes, length)
    boundary = parse_boundary(request.header("content-type") or "")
    events = FormStream(timed_stream(request, ctx.idle_timeout), boundary)
    uploader = await ctx.access.uploader(request, creates=False)  # counted below, when a chunk creates the file
    identity = uploader.identity
    fields: dict[str, str] = {}
    result: Upload | None = None
    async for event in events:
        match event:
            case Field(name=name, value=value):
                fields[name] = value
            case FilePart(name="file", filename=filename, content_type=content_type) if result is None:
                result = await _receive_file(ctx, uploader, fields, filename, content_type, events.file_data())
            case FilePart() | bytes() | PartEnd():
                pass  # other file parts are not ours to store
    if result is None:
        raise BadRequest("no file provided: the form needs a file part named 'file'")
    body = upload_json(ctx, request, result, identity)
    return json_response(body, 200, token_headers(identity, request.scheme == "https"))


async def _receive_file(
    ctx: Context, uploader: Uploader, fields: dict[str, str], filename: str, content_type: str,
    data: AsyncIterator[bytes],
) -> Upload:  # fmt: skip
    owner, allowance = uploader.owner, uploader.allowance
    if "dzuuid" not in fields:  # the seed's un-chunked single POST
        uploader.count_creation()
        new = NewUpload(filename, owner, None, Protocol.DROPZONE, content_type, allowance=allowance,
                        client_address=uploader.client_address)  # fmt: skip
        created = await ctx.service.create(new)
        try:
            written = await ctx.service.write(created.id, Chunk(0, data, exact_offset=True))
            return await ctx.service.declare_size(created.id, written.received.total)
        except PyfiledropError:  # the form was its only way in: a refused one leaves nothing behind
            await ctx.service.abandon(created.id)
            raise
    chunk = parse_chunk_fields(fields, ctx.settings.max_size_bytes)
    if not await ctx.service.alias_exists(chunk.uuid):
        # The chunk that finds no file creates it. Two first chunks racing may both count: one token too many at
        # worst, never a creation that escapes the limit.
        uploader.count_creation()
    new = NewUpload(filename, owner, chunk.total_size, Protocol.DROPZONE, content_type, alias=chunk.uuid,
                    allowance=allowance, client_address=uploader.client_address)  # fmt: skip
    target = await ctx.service.create(new)  # the first chunk to arrive creates it; the others find it
    if target.size != chunk.total_size:
        raise BadRequest(f"dztotalfilesize {chunk.total_size} differs from the {target.size} bytes announced before")
    return await ctx.service.write(target.id, Chunk(chunk.offset, data, chunk.length, all_or_nothing=True))
