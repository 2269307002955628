"""tus 1.0.0 at /files/: core, creation(-with-upload, -defer-length), termination, checksum,
expiration and concatenation. One small handler per verb; the engine does the work."""

from __future__ import annotations

import functools
import re

from pyfiledrop.domain.checksum import ALGORITHMS, parse_checksum_header
from pyfiledrop.domain.ids import UploadId, parse_upload_id
from pyfiledrop.domain.model import ConcatKind, Protocol, Upload, UploadState
from pyfiledrop.engine import events
from pyfiledrop.engine.service import Chunk, NewUpload
from pyfiledrop.errors import (
    BadRequest,
    Forbidden,
    OffsetMismatch,
    PyfiledropError,
    TooLarge,
    UnsupportedMediaType,
    VersionMismatch,
)
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
from pyfiledrop.web.errors import Style, render
from pyfiledrop.web.http import Headers, Request, Response, no_content, timed_stream

OFFSET_CONTENT_TYPE = "application/offset+octet-stream"

PARALLEL_WRITE_HEADER = "x-pyfiledrop-parallel-write"
_ORIGIN = re.compile(r"null|[A-Za-z][A-Za-z0-9+.\-]*://[A-Za-z0-9\-._~%!$&'()*+,;=\[\]:]{1,260}")  # RFC 6454 §7
CORS_ALLOW_HEADERS = (
    "Authorization, Origin, X-Requested-With, X-Request-ID, X-HTTP-Method-Override, Content-Type, Upload-Length, "
    "Upload-Offset, Tus-Resumable, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Checksum, "
    "X-Pyfiledrop-Token, X-Pyfiledrop-Drop, X-Pyfiledrop-Password, X-Pyfiledrop-Parallel-Write"
)
CORS_EXPOSE_HEADERS = (
    "Upload-Offset, Location, Upload-Length, Tus-Version, Tus-Resumable, Tus-Max-Size, Tus-Extension, "
    "Tus-Checksum-Algorithm, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Expires, "
    "X-Pyfiledrop-Token, X-Upload-Id, X-Download-Url"
)


def cors_headers(request: Request) -> Headers:
    origin = request.header("origin")
    if origin is None or not _ORIGIN.fullmatch(origin):
        return []  # only an origin is echoed back, never whatever else a client put in the header
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
    # The spec allows 200 or 204; 200 is what the published conformance suite and some proxies expect.
    return no_content(200, headers)


async def create(ctx: Context, request: Request) -> Response:
    metadata = parse_metadata(request.header("upload-metadata"))
    concat_header = request.header("upload-concat")
    concat, part_ids = parse_concat(concat_header) if concat_header else ("", [])
    size = _declared_length(request, final=concat == "final")
    with_upload = _has_body(request)
    checksum = _check_initial_chunk(request, size, final=concat == "final") if with_upload else None
    # A part is only raw material for a final upload. Sent without a token (tus-js-client in Node keeps no cookies),
    # it is owned by nobody, so the final upload that names it can be made by whoever holds its URL, the same
    # capability that lets them PATCH or DELETE it; sent with a token, only that owner may use it.
    uploader = await ctx.access.uploader(request, issue=concat != "partial")
    identity = uploader.identity
    new = NewUpload(
        filename=_relative_path(metadata) or metadata.get("filename") or metadata.get("name"),
        owner=uploader.owner,
        allowance=uploader.allowance,
        size=size,
        protocol=Protocol.TUS,
        content_type=metadata.get("filetype") or metadata.get("type") or "application/octet-stream",
        metadata=metadata,
        concat=ConcatKind(concat),
        client_address=uploader.client_address,
    )
    if concat == "final":
        upload = await ctx.service.concatenate(new, part_ids)
    elif with_upload and not concat and checksum is None and (whole := await _create_whole(ctx, request, new)):
        headers = [("location", ctx.tus_url(request, whole.id)), ("x-upload-id", whole.id)]
        return no_content(
            201, headers + token_headers(identity, request.scheme == "https") + _offset_headers(ctx, whole)
        )
    else:
        upload = await ctx.service.create(new)
    headers = [("location", ctx.tus_url(request, upload.id)), ("x-upload-id", upload.id)]
    headers += token_headers(identity, request.scheme == "https")
    if with_upload:  # creation-with-upload
        try:
            upload = await _write(ctx, request, upload.id, 0, checksum)
        except PyfiledropError as exc:
            # As tusd: the upload exists, so say where, and the client can HEAD it and resume.
            response = render(exc, Style.TUS)
            response.headers += headers
            if not request.body_consumed:
                response.header("connection", "close")
            return response
    return no_content(201, headers + _offset_headers(ctx, upload))


async def _create_whole(ctx: Context, request: Request, new: NewUpload) -> Upload | None:
    """creation-with-upload of a whole small file: stored in one go (see ``UploadService.create_whole``)."""
    size = new.size
    if size is None or request.content_length != size or new.allowance is not None:
        return None
    with ctx.service.whole_buffer(size) as buffer:
        if buffer is None:
            return None
        body = timed_stream(request, ctx.idle_timeout)
        return await ctx.service.create_whole(new, buffer, functools.partial(body.read_whole, buffer), body.lend)


def _check_initial_chunk(request: Request, size: int | None, *, final: bool) -> tuple[str, bytes] | None:
    """creation-with-upload: refuse a bad first chunk before the upload exists, so no orphan is left behind."""
    if final:
        raise Forbidden("a final concatenated upload cannot carry data")
    _check_content_type(request)
    length = request.content_length
    if size is not None and length is not None and length > size:
        raise TooLarge(size, length)
    return _checksum(request)


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


_RESUMES = events.Throttle()


async def head(ctx: Context, request: Request, raw_id: str) -> Response:
    upload = await ctx.service.status(parse_upload_id(raw_id))
    if upload.offset and upload.state is UploadState.RECEIVING and _RESUMES.first_in_a_while(upload.id):
        events.upload("resumed", upload, offset=upload.offset)  # a client asks where to go on from: it resumes
    headers = [("cache-control", "no-store"), *_offset_headers(ctx, upload)]
    if upload.size is None:
        headers.append(("upload-defer-length", "1"))
    else:
        headers.append(("upload-length", str(upload.size)))
    if metadata := upload.client_metadata:
        headers.append(("upload-metadata", format_metadata(metadata)))
    if upload.concat is ConcatKind.PARTIAL:
        headers.append(("upload-concat", "partial"))
    elif upload.concat is ConcatKind.FINAL:
        urls = " ".join(f"/files/{part}" for part in upload.parts)
        headers.append(("upload-concat", f"final;{urls}"))
    return no_content(200, headers)


async def patch(ctx: Context, request: Request, raw_id: str) -> Response:
    upload_id = parse_upload_id(raw_id)
    _check_content_type(request)
    offset = parse_non_negative("Upload-Offset", request.header("upload-offset"))
    if offset is None:
        raise BadRequest("Upload-Offset is required")
    checksum = _checksum(request)
    upload = await ctx.service.status(upload_id)
    if upload.concat is ConcatKind.FINAL:
        # 'The Server MUST respond with the 403 Forbidden status to PATCH requests against a final upload URL.'
        raise Forbidden("a final concatenated upload cannot be modified")
    await ctx.access.check_still_open(upload.owner)
    if _parallel_write(request):
        return await _patch_anywhere(ctx, request, upload, offset, checksum)
    if offset != upload.offset:
        raise OffsetMismatch(upload.offset, offset)  # before Upload-Length is applied: a refused PATCH changes nothing
    length = parse_non_negative("Upload-Length", request.header("upload-length"))
    if length is not None and upload.size is not None and length != upload.size:
        raise BadRequest(f"the upload length is already {upload.size}; it cannot be changed")
    if length is not None and upload.size is None:
        await ctx.service.declare_size(upload_id, length)
    upload = await _write(ctx, request, upload_id, offset, checksum)
    return no_content(204, _offset_headers(ctx, upload))


def _check_content_type(request: Request) -> None:
    content_type = (request.header("content-type") or "").split(";")[0].strip().lower()
    if content_type != OFFSET_CONTENT_TYPE:
        raise UnsupportedMediaType(f"Content-Type must be {OFFSET_CONTENT_TYPE}")


def _checksum(request: Request) -> tuple[str, bytes] | None:
    value = request.header("upload-checksum")
    return parse_checksum_header(value) if value is not None else None


def _parallel_write(request: Request) -> bool:
    return (request.header(PARALLEL_WRITE_HEADER) or "").strip() == "1"


async def _patch_anywhere(
    ctx: Context, request: Request, upload: Upload, offset: int, checksum: tuple[str, bytes] | None
) -> Response:
    """pyfiledrop's extension (``X-Pyfiledrop-Parallel-Write: 1``, advertised in /api/config): several PATCHes
    write disjoint regions of one upload at once, so parallel streams need no concatenation pass. Upload-Offset
    may be any byte not yet received; the answer's Upload-Offset is where the received run from it now ends."""
    if upload.size is None or upload.concat is not ConcatKind.NONE:
        raise BadRequest("parallel writes need an upload of known length that is not a concatenation part")
    upload = await _write(ctx, request, upload.id, offset, checksum, exact=False)
    run_end = next((end for start, end in upload.received if start <= offset <= end), offset)
    if upload.state is not UploadState.RECEIVING:
        run_end = upload.size or 0
    headers = [(name, value) for name, value in _offset_headers(ctx, upload) if name != "upload-offset"]
    return no_content(204, [("upload-offset", str(run_end)), *headers])


async def _write(
    ctx: Context, request: Request, upload_id: UploadId, offset: int, checksum: tuple[str, bytes] | None,
    *, exact: bool = True,
) -> Upload:  # fmt: skip
    chunk = Chunk(
        offset=offset,
        body=timed_stream(request, ctx.idle_timeout),
        length=request.content_length,
        exact_offset=exact,  # the engine checks the offset again while it holds the upload
        checksum=checksum,
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
    if upload.concat is ConcatKind.FINAL and upload.state is not UploadState.COMPLETE:
        # Its parts are still being joined and hashed (engine/concat.py). The concatenation extension: "SHOULD NOT
        # contain the Upload-Offset header unless the concatenation has been successfully finished".
        return [("upload-expires", http_date(upload.updated_at + ctx.settings.stale_after))]
    headers = [("upload-offset", str(upload.offset))]
    if upload.state is UploadState.RECEIVING:
        headers.append(("upload-expires", http_date(upload.updated_at + ctx.settings.stale_after)))
    elif upload.expires_at is not None:
        headers.append(("upload-expires", http_date(upload.expires_at)))
    return headers


def _relative_path(metadata: dict[str, str]) -> str | None:
    """Uppy sends a file of a dropped folder's path as ``relativePath`` ('dir/sub/b.txt'; 'null' when it has none)."""
    path = metadata.get("relativePath")
    return path if path and path != "null" else None
