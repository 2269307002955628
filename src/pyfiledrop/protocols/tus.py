"""tus 1.0.0 at /files/: core, creation(-with-upload, -defer-length), termination, checksum,
expiration and concatenation. One small handler per verb; the engine does the work."""

from __future__ import annotations

from pyfiledrop.engine.checksum import ALGORITHMS, parse_checksum_header
from pyfiledrop.engine.ids import UploadId, parse_upload_id
from pyfiledrop.engine.model import ConcatKind, Protocol, Upload, UploadState
from pyfiledrop.engine.service import Chunk, NewUpload
from pyfiledrop.errors import BadRequest, Forbidden, UnsupportedMediaType, VersionMismatch
from pyfiledrop.protocols.tus_headers import (
    TUS_VERSION,
    format_metadata,
    http_date,
    parse_concat,
    parse_metadata,
    parse_non_negative,
)
from pyfiledrop.web.auth import token_headers
from pyfiledrop.web.context import Context
from pyfiledrop.web.http import Headers, Request, Response, no_content, timed_stream

OFFSET_CONTENT_TYPE = "application/offset+octet-stream"

CORS_ALLOW_HEADERS = (
    "Authorization, Origin, X-Requested-With, X-Request-ID, X-HTTP-Method-Override, Content-Type, Upload-Length, "
    "Upload-Offset, Tus-Resumable, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Checksum, "
    "X-Pyfiledrop-Token"
)
CORS_EXPOSE_HEADERS = (
    "Upload-Offset, Location, Upload-Length, Tus-Version, Tus-Resumable, Tus-Max-Size, Tus-Extension, "
    "Tus-Checksum-Algorithm, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Expires, "
    "X-Pyfiledrop-Token, X-Upload-Id, X-Download-Url"
)


def cors_headers(request: Request) -> Headers:
    origin = request.header("origin")
    if origin is None:
        return []
    return [
        ("access-control-allow-origin", origin),
        ("vary", "Origin"),
        ("access-control-expose-headers", CORS_EXPOSE_HEADERS),
    ]


def check_version(request: Request) -> None:
    """'The Tus-Resumable header MUST be included in every request and response except for OPTIONS.'"""
    if request.method != "OPTIONS" and request.header("tus-resumable") != TUS_VERSION:
        raise VersionMismatch(f"Tus-Resumable must be {TUS_VERSION}")


async def options(ctx: Context, request: Request) -> Response:
    headers = [
        ("tus-version", TUS_VERSION),
        ("tus-extension", ",".join(ctx.tus_extensions)),
        ("tus-max-size", str(ctx.settings.max_size_bytes)),
        ("tus-checksum-algorithm", ",".join(ALGORITHMS)),
    ]
    if request.header("access-control-request-method"):
        headers += [
            ("access-control-allow-methods", "POST, GET, HEAD, PATCH, DELETE, OPTIONS"),
            ("access-control-allow-headers", CORS_ALLOW_HEADERS),
            ("access-control-max-age", "86400"),
        ]
    return no_content(204, headers)


async def create(ctx: Context, request: Request) -> Response:
    identity = ctx.auth.identify_or_issue(request)
    metadata = parse_metadata(request.header("upload-metadata"))
    concat_header = request.header("upload-concat")
    concat, part_ids = parse_concat(concat_header) if concat_header else ("", [])
    new = NewUpload(
        filename=metadata.get("filename") or metadata.get("name"),
        owner=identity.require_owner(),
        size=_declared_length(request, final=concat == "final"),
        protocol=Protocol.TUS,
        content_type=metadata.get("filetype") or metadata.get("type") or "application/octet-stream",
        metadata=metadata,
        concat=ConcatKind(concat),
    )
    if concat == "final":
        upload = await ctx.service.concatenate(new, part_ids)
    else:
        upload = await ctx.service.create(new)
        if _has_body(request):  # creation-with-upload
            upload = await _write(ctx, request, upload.id, 0)
    headers = [("location", ctx.tus_url(request, upload.id)), ("x-upload-id", upload.id)]
    headers += _offset_headers(ctx, upload) + token_headers(identity, request.scheme == "https")
    return no_content(201, headers)


def _declared_length(request: Request, *, final: bool) -> int | None:
    length = parse_non_negative("Upload-Length", request.header("upload-length"))
    defer = request.header("upload-defer-length")
    if final:
        if length is not None:
            raise BadRequest("a final concatenated upload must not carry Upload-Length")
        return None
    if defer is not None:
        if defer.strip() != "1":
            raise BadRequest("Upload-Defer-Length must be 1")
        if length is not None:
            raise BadRequest("send either Upload-Length or Upload-Defer-Length, not both")
        return None
    if length is None:
        raise BadRequest("Upload-Length or Upload-Defer-Length: 1 is required")
    return length


def _has_body(request: Request) -> bool:
    return (request.content_length or 0) > 0 or request.header("transfer-encoding") is not None


async def head(ctx: Context, request: Request, raw_id: str) -> Response:
    upload = await ctx.service.status(parse_upload_id(raw_id))
    headers = [("cache-control", "no-store"), *_offset_headers(ctx, upload)]
    if upload.size is None:
        headers.append(("upload-defer-length", "1"))
    else:
        headers.append(("upload-length", str(upload.size)))
    if upload.metadata:
        headers.append(("upload-metadata", format_metadata(upload.metadata)))
    if upload.concat is ConcatKind.PARTIAL:
        headers.append(("upload-concat", "partial"))
    elif upload.concat is ConcatKind.FINAL:
        urls = " ".join(f"/files/{part}" for part in upload.parts)
        headers.append(("upload-concat", f"final;{urls}"))
    return no_content(200, headers)


async def patch(ctx: Context, request: Request, raw_id: str) -> Response:
    upload_id = parse_upload_id(raw_id)
    upload = await _write(ctx, request, upload_id, None)
    return no_content(204, _offset_headers(ctx, upload))


async def _write(ctx: Context, request: Request, upload_id: UploadId, offset: int | None) -> Upload:
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    if content_type != OFFSET_CONTENT_TYPE:
        raise UnsupportedMediaType(f"Content-Type must be {OFFSET_CONTENT_TYPE}")
    if offset is None:
        offset = parse_non_negative("Upload-Offset", request.header("upload-offset"))
        if offset is None:
            raise BadRequest("Upload-Offset is required")
    length = parse_non_negative("Upload-Length", request.header("upload-length"))
    if length is not None:
        await ctx.service.declare_size(upload_id, length)
    checksum_header = request.header("upload-checksum")
    chunk = Chunk(
        offset=offset,
        body=timed_stream(request, ctx.idle_timeout),
        length=request.content_length,
        exact_offset=True,
        checksum=parse_checksum_header(checksum_header) if checksum_header else None,
    )
    return await ctx.service.write(upload_id, chunk)


async def delete(ctx: Context, request: Request, raw_id: str) -> Response:
    upload_id = parse_upload_id(raw_id)
    upload = await ctx.service.status(upload_id)
    if upload.state is UploadState.COMPLETE and upload.concat is not ConcatKind.PARTIAL:
        # The URL lets its holder abort an unfinished upload; a finished file needs its owner.
        identity = ctx.auth.identify(request)
        if not identity.may_manage(upload.owner):
            raise Forbidden("deleting a finished upload needs its owner's or the admin token")
    await ctx.service.terminate(upload_id)
    return no_content(204)


def _offset_headers(ctx: Context, upload: Upload) -> Headers:
    headers = [("upload-offset", str(upload.offset))]
    if upload.state is UploadState.RECEIVING:
        headers.append(("upload-expires", http_date(upload.updated_at + ctx.settings.stale_after)))
    elif upload.expires_at is not None:
        headers.append(("upload-expires", http_date(upload.expires_at)))
    return headers

