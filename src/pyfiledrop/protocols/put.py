"""One-request uploads for scripts: ``curl -T file http://host:16273/`` (transfer.sh style)."""

from __future__ import annotations

import functools
from urllib.parse import unquote

from pyfiledrop.domain.model import Protocol, Upload, UploadState
from pyfiledrop.engine.service import WHOLE_MAX_BYTES, Chunk, NewUpload
from pyfiledrop.errors import PyfiledropError, TooLarge
from pyfiledrop.web.api import upload_json
from pyfiledrop.web.auth import token_headers
from pyfiledrop.web.context import Context
from pyfiledrop.web.http import Request, Response, as_utf8, json_response, text_response, timed_stream
from pyfiledrop.web.links import STORED_FOR_OWNER, download_link


async def put(ctx: Context, request: Request, raw_name: str, drop_token: str | None = None) -> Response:
    length = request.content_length
    if length is not None and length > ctx.settings.max_size_bytes:
        raise TooLarge(ctx.settings.max_size_bytes, length)  # before a byte is stored
    uploader = await ctx.access.uploader(request, drop_token=drop_token)
    identity = uploader.identity
    name = unquote(raw_name) or as_utf8(request.header("x-filename") or "") or "upload"
    new = NewUpload(
        filename=name,
        owner=uploader.owner,
        allowance=uploader.allowance,
        size=length,
        protocol=Protocol.PUT,
        content_type=(request.header("content-type") or "application/octet-stream").split(";")[0].strip(),
        client_address=uploader.client_address,
    )
    body = timed_stream(request, ctx.idle_timeout)
    with ctx.service.whole_buffer(
        length if length is not None and new.allowance is None else WHOLE_MAX_BYTES + 1
    ) as whole:
        if whole is not None:  # small: held whole, read and stored in one go
            upload = await ctx.service.create_whole(new, whole, functools.partial(body.read_whole, whole), body.lend)
        else:
            upload = await _stream(ctx, new, Chunk(offset=0, body=body, length=length, exact_offset=True))
    headers = [("x-upload-id", upload.id), *token_headers(identity, request.scheme == "https")]
    complete = upload.state is UploadState.COMPLETE
    url = download_link(ctx, request, upload, identity) if complete else ctx.tus_url(request, upload.id)
    if complete:
        headers.append(("x-sha256", upload.sha256 or ""))
    if url is not None:
        headers.append(("location", url))
    if "application/json" in (request.header("accept") or ""):
        return json_response(upload_json(ctx, request, upload, identity), 201, headers)
    return text_response((url or STORED_FOR_OWNER) + "\n", 201, headers)


async def _stream(ctx: Context, new: NewUpload, chunk: Chunk) -> Upload:
    """A body too big to hold whole, written as it comes. The request is the upload's only way in (its id is told
    only on success), so a refused or failed one leaves nothing: no partial file, no record."""
    upload = await ctx.service.create(new)
    try:
        upload = await ctx.service.write(upload.id, chunk)
        if upload.size is None:  # chunked transfer encoding: the length is known now
            upload = await ctx.service.declare_size(upload.id, upload.received.total)
    except PyfiledropError:
        await ctx.service.abandon(upload.id)
        raise
    return upload
