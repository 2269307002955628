"""GET/HEAD of finished files: by exact id only, Range requests, RFC 6266 names, ETag from the sha256."""

from __future__ import annotations

import base64
import mimetypes
import re
import time
from urllib.parse import quote

from pyfiledrop.domain.ids import is_upload_id, parse_alias
from pyfiledrop.domain.mediatype import FALLBACK, safe_media_type
from pyfiledrop.domain.model import ConcatKind, Upload, UploadState
from pyfiledrop.domain.names import base_name
from pyfiledrop.errors import DownloadsDisabled, RangeNotSatisfiable, UploadConflict, UploadGone, UploadNotFound
from pyfiledrop.web.conditional import not_modified
from pyfiledrop.web.context import Context
from pyfiledrop.web.http import Headers, Request, Send, no_content
from pyfiledrop.web.links import has_download_key

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")  # ASCII digits: str's \d takes any script's
_BEYOND_ANY_FILE = 1 << 63  # what a position with more digits than an int64 stands for: past any file's end


async def find(ctx: Context, key: str) -> Upload:
    """An upload id, or the dzuuid a Dropzone page used (the seed's /download/{dzuuid} links)."""
    meta = ctx.service.meta
    if is_upload_id(key):
        try:
            return await meta.get(key)  # type: ignore[arg-type]
        except UploadNotFound:
            pass
    return await meta.get_by_alias(parse_alias(key))


async def serve(ctx: Context, request: Request, send: Send, key: str) -> None:
    upload = await find(ctx, key)
    if upload.state is UploadState.TERMINATED:
        raise UploadGone(upload.id)
    identity = ctx.auth.identify(request)  # a malformed token is the client's mistake (401) whatever else it holds
    if ctx.settings.allow_downloads or has_download_key(ctx, request, upload):
        pass  # open to all, or a URL that carries its own capability (web/links.py)
    elif not identity.may_manage(upload.owner):
        raise DownloadsDisabled()
    await send_upload(ctx, request, send, upload)


async def send_upload(ctx: Context, request: Request, send: Send, upload: Upload) -> None:
    """Send a finished upload whose access was already checked (by link, token or share)."""
    with ctx.awake.transfer("download"):  # a download in flight keeps the host awake, as an upload does
        await _send_upload(ctx, request, send, upload)


async def _send_upload(ctx: Context, request: Request, send: Send, upload: Upload) -> None:
    if upload.concat is ConcatKind.FINAL and upload.state is UploadState.RECEIVING:
        upload = await ctx.service.joins.wait(upload)  # its parts are being joined: about a second per GiB
    if upload.state is UploadState.TERMINATED or upload.expired(time.time()):
        raise UploadGone(upload.id)  # expired: gone at once, whenever the sweep frees the bytes
    blob = upload.blob
    if upload.concat is ConcatKind.FINAL and upload.state is not UploadState.COMPLETE:
        raise UploadConflict(f"upload {upload.id} is a tus final upload whose parts are still being joined: retry")
    if upload.state is not UploadState.COMPLETE or blob is None:
        raise UploadConflict(f"upload {upload.id} is not complete: {upload.received.total} of {upload.size} bytes")
    if not await ctx.service.storage.exists(blob):
        raise UploadGone(upload.id)  # the file vanished from disk: say so rather than send a short file
    url = ctx.service.storage.download_url(blob, content_disposition(base_name(upload.filename)), served_type(upload))
    if url is not None:  # --s3-presign: S3 sends the bytes (and answers Range itself); the link is short-lived
        await no_content(302, [("location", url), ("cache-control", "no-store")]).send(send)
        return
    headers = _headers(upload)
    etag = headers[0][1]
    head = request.method == "HEAD"
    if not_modified(request, etag):  # a 304 keeps what a cache must update: ETag and Cache-Control (RFC 9110 §15.4.5)
        await no_content(304, [h for h in headers if h[0] in ("etag", "cache-control")]).send(send)
        return
    byte_range = _parse_range(request.header("range"), blob.size, request.header("if-range"), etag)
    if byte_range is None:
        await _send_whole(ctx, request, send, upload, headers, head)
        return
    start, end = byte_range
    headers += [("content-range", f"bytes {start}-{end - 1}/{blob.size}"), ("content-length", str(end - start))]
    await send({"type": "http.response.start", "status": 206, "headers": _encode(headers)})
    await _send_body(ctx, send, upload, start, end, head)


async def _send_whole(ctx: Context, request: Request, send: Send, upload: Upload, headers: Headers, head: bool) -> None:
    blob = upload.blob
    assert blob is not None
    headers.append(("content-length", str(blob.size)))
    await send({"type": "http.response.start", "status": 200, "headers": _encode(headers)})
    path = ctx.service.storage.local_path(blob)
    if not head and path is not None and "http.response.pathsend" in request.scope.get("extensions", {}):
        await send({"type": "http.response.pathsend", "path": str(path)})  # the server sends the file itself
        return
    await _send_body(ctx, send, upload, 0, blob.size, head)


async def _send_body(ctx: Context, send: Send, upload: Upload, start: int, end: int, head: bool) -> None:
    blob = upload.blob
    assert blob is not None
    if not head:
        async for block in ctx.service.storage.read(blob, start, end):
            await send({"type": "http.response.body", "body": block, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


def _headers(upload: Upload) -> Headers:
    sha256 = upload.sha256 or ""
    headers: Headers = [
        ("etag", f'"{sha256}"'),
        ("content-type", served_type(upload)),
        ("content-disposition", content_disposition(base_name(upload.filename))),  # 'dir/sub/b.txt' saves as b.txt
        ("accept-ranges", "bytes"),
        ("cache-control", "private, no-cache"),
        ("x-content-type-options", "nosniff"),
        ("content-security-policy", "sandbox; default-src 'none'"),
    ]
    if sha256:
        headers.append(("repr-digest", f"sha-256=:{base64.b64encode(bytes.fromhex(sha256)).decode()}:"))
    return headers


def served_type(upload: Upload) -> str:
    """The declared type when it is a media type (checked again: records from before the check at intake); none
    declared: the file name's extension may tell; a declared type that is no media type: octet-stream."""
    if upload.content_type == FALLBACK:
        return mimetypes.guess_type(upload.filename)[0] or FALLBACK
    return safe_media_type(upload.content_type)


def content_disposition(filename: str) -> str:
    """RFC 6266: an ASCII fallback plus the exact name as RFC 8187 ``filename*``: both printable ASCII whatever the
    name holds (CR, LF, quotes, non-Latin-1 text), so no name can end the header or the head."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\%' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='', errors='replace')}"


def _parse_range(value: str | None, size: int, if_range: str | None, etag: str) -> tuple[int, int] | None:
    """One 'bytes=' range → [start, end); None means 'send it all' (also for several ranges)."""
    if value is None or (if_range is not None and if_range != etag):
        return None
    match = _RANGE.fullmatch(value.strip())
    if match is None:
        return None  # RFC 9110: a Range the server does not understand is ignored
    first, last = match.groups()
    if first == "" and last == "":
        return None
    if first == "":
        length = _position(last)
        if length == 0:
            raise RangeNotSatisfiable(size)
        return max(size - length, 0), size
    start = _position(first)
    end = min(_position(last) + 1, size) if last else size
    if start >= size or (last and _position(last) < start):
        raise RangeNotSatisfiable(size)
    return start, end


def _position(digits: str) -> int:
    """A byte position of any length: int() refuses more than 4300 digits, and no file is past 2**63 anyway."""
    significant = digits.lstrip("0")
    return int(significant or "0") if len(significant) <= 19 else _BEYOND_ANY_FILE


def _encode(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
