"""What the holder of a share link gets at /s/{token}: the file itself (a one-file link), or a page listing the
files with a link to each (/s/{token}/{n}) and a zip of all of them (/s/{token}/zip).

Counting downloads (``max_downloads``): only a GET that sends a file's bytes from its first byte counts. A HEAD,
a 304, the listing page and a link-preview bot (chat apps fetch a link as soon as it is pasted) never do; a Range
request that goes on from further in continues a download already counted, for RESUME_WINDOW after it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import zlib
from collections.abc import AsyncIterator
from urllib.parse import parse_qs

from pyfiledrop.domain.model import Upload, UploadState
from pyfiledrop.domain.names import storage_name
from pyfiledrop.errors import BadRequest, PasswordRequired, ShareClosed, UploadNotFound, WrongPassword
from pyfiledrop.meta.shares import Share
from pyfiledrop.web import share_pages
from pyfiledrop.web.context import Context
from pyfiledrop.web.downloads import _parse_range, content_disposition, send_upload
from pyfiledrop.web.http import Request, Response, Send, json_response, no_content
from pyfiledrop.web.zipstream import Entry, ZipLayout, unique_names

_PREVIEW_BOTS = re.compile(
    r"facebookexternalhit|facebot|twitterbot|slackbot|slack-imgproxy|discordbot|whatsapp|telegrambot|linkedinbot|"
    r"skypeuripreview|microsoftpreview|teamsbot|embedly|iframely|redditbot|applebot|bingpreview|mastodon|"
    r"pinterestbot|vkshare|zoombot|mattermost|rocket\.chat|googlebot|bingbot|duckduckbot|yandexbot|"
    r"signal-|preview",
    re.IGNORECASE,
)
_RANGE_START = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-")
_COOKIE_PREFIX = "pyfiledrop_share_"
_SEND_AT_LEAST = 256 * 1024  # small zip headers are gathered into blocks this big before a send


def is_preview_bot(request: Request) -> bool:
    return bool(_PREVIEW_BOTS.search(request.header("user-agent") or ""))


async def serve(ctx: Context, request: Request, send: Send, token: str, rest: list[str]) -> Response | None:
    share = await _open(ctx, token)
    if share.password_hash is not None and not await _unlocked(ctx, request, share):
        return _password_needed(request, token)
    uploads = await _files(ctx, share)
    title = share.label or (uploads[0].filename if len(uploads) == 1 else f"{len(uploads)} files")
    if is_preview_bot(request):
        detail = "Shared files" if share.several else share_pages.size_text(uploads[0].size or 0)
        return share_pages.preview(title, detail)
    match share.several, rest:
        case False, []:
            await _admit(ctx, request, share, f'"{uploads[0].sha256}"')
            await send_upload(ctx, request, send, uploads[0])
            return None
        case True, []:
            return _listing(ctx, request, share, uploads, title, token)
        case True, ["zip"]:
            await _send_zip(ctx, request, send, share, uploads, title)
            return None
        case True, [number] if number.isdigit() and 1 <= int(number) <= len(uploads):
            await _admit(ctx, request, share, f'"{uploads[int(number) - 1].sha256}"')
            await send_upload(ctx, request, send, uploads[int(number) - 1])
            return None
    raise UploadNotFound("(file of this share link)")


async def unlock(ctx: Context, request: Request, token: str) -> Response:
    """POST /s/{token} from the password form: a cookie for this link only, then back to it."""
    share = await _open(ctx, token)
    form = parse_qs((await request.body(8192)).decode("utf-8", "replace"))
    password = (form.get("password") or [""])[0]
    if share.password_hash is None:
        return no_content(303, [("location", f"/s/{token}")])
    if not password:
        return share_pages.password_form(f"/s/{token}", "Type the password.")
    try:
        await ctx.access.verify(request, share.password_hash, password)
    except WrongPassword:
        return share_pages.password_form(f"/s/{token}", "Wrong password.")
    secure = "; Secure" if request.scheme == "https" else ""
    cookie = (f"{_COOKIE_PREFIX}{share.id}={_pass_value(ctx, share)}; Path=/s/{token}; Max-Age=86400; HttpOnly; "
              f"SameSite=Lax{secure}")  # fmt: skip
    return no_content(303, [("location", f"/s/{token}"), ("set-cookie", cookie)])


# -- access ---------------------------------------------------------------------------------------------------------


async def _open(ctx: Context, token: str) -> Share:
    if not 20 <= len(token) <= 64:
        raise BadRequest("malformed share link")
    return await ctx.shares.resolve(token)


async def _unlocked(ctx: Context, request: Request, share: Share) -> bool:
    """The link's cookie (from the form), or the password itself (curl -u :PASSWORD, X-Pyfiledrop-Password)."""
    assert share.password_hash is not None
    cookie = request.cookies.get(_COOKIE_PREFIX + share.id)
    if cookie is not None and hmac.compare_digest(cookie.encode(), _pass_value(ctx, share).encode()):
        return True
    try:
        await ctx.access.check_password(request, share.password_hash, "this share link needs its password")
    except PasswordRequired:
        return False  # none given (a wrong one is refused: WrongPassword, rate-limited per address)
    return True


def _pass_value(ctx: Context, share: Share) -> str:
    return ctx.auth.capability("share-password", f"{share.id}:{share.password_hash}")


def _password_needed(request: Request, token: str) -> Response:
    if "text/html" in (request.header("accept") or "") or is_preview_bot(request):
        return share_pages.password_form(f"/s/{token}")
    raise PasswordRequired("this share link needs its password: curl -u :PASSWORD, or open it in a browser")


async def _admit(ctx: Context, request: Request, share: Share, etag: str) -> None:
    """Count the download this request starts, or refuse it if the link has none left (see the module's doc)."""
    if request.method == "HEAD" or etag in (request.header("if-none-match") or ""):
        if share.closed_because() is not None:
            raise ShareClosed(share.closed_because() or "")
        return
    match = _RANGE_START.match(request.header("range") or "")
    goes_on = match is not None and match.group(1) not in ("", "0") and request.header("if-range") in (None, etag)
    if goes_on and share.may_resume():
        return
    if not await ctx.shares.count_download(share.id):
        raise ShareClosed("has been downloaded as many times as it allows")


async def _files(ctx: Context, share: Share) -> list[Upload]:
    """The link's files that are still there (one deleted since is left out of the page and the zip)."""
    found = []
    for upload_id in share.upload_ids:
        try:
            upload = await ctx.service.meta.get(upload_id)
        except UploadNotFound:
            continue
        if upload.state is UploadState.COMPLETE and upload.blob is not None:
            found.append(upload)
    if not found:
        raise ShareClosed("no longer has any file: they were deleted or have expired")
    return found


# -- several files ----------------------------------------------------------------------------------------------


def _listing(ctx: Context, request: Request, share: Share, uploads: list[Upload], title: str, token: str) -> Response:
    names = unique_names([u.filename for u in uploads])
    base = f"/s/{token}"
    if "application/json" in (request.header("accept") or ""):
        absolute = ctx.base_url(request) + base
        files = [{"name": name, "size": u.size, "sha256": u.sha256, "url": f"{absolute}/{n}"}
                 for n, (u, name) in enumerate(zip(uploads, names, strict=True), start=1)]  # fmt: skip
        layout = ZipLayout(_entries(uploads, names))
        return json_response({"label": share.label, "files": files, "zip_url": f"{absolute}/zip",
                              "zip_size": layout.length, "expires_at": share.expires_at})  # fmt: skip
    note = ""
    if share.max_downloads is not None:
        left = max(share.max_downloads - share.downloads, 0)
        note = f"This link allows {left} more download{'s' if left != 1 else ''} (a file or the zip counts as one)."
    return share_pages.listing(title, uploads, names, base, note)


def _entries(uploads: list[Upload], names: list[str]) -> list[Entry]:
    return [Entry(name, u.size or 0, u.created_at) for u, name in zip(uploads, names, strict=True)]


async def _send_zip(ctx: Context, request: Request, send: Send, share: Share, uploads: list[Upload],
                    title: str) -> None:  # fmt: skip
    names = unique_names([u.filename for u in uploads])
    layout = ZipLayout(_entries(uploads, names))
    identity = json.dumps([[name, u.sha256] for name, u in zip(names, uploads, strict=True)]).encode()
    etag = f'"zip-{hashlib.sha256(identity).hexdigest()[:40]}"'
    headers = [("etag", etag), ("content-type", "application/zip"),
               ("content-disposition", content_disposition(storage_name(title) + ".zip")),
               ("accept-ranges", "bytes"), ("cache-control", "private, no-cache"),
               ("x-content-type-options", "nosniff")]  # fmt: skip
    if etag in (request.header("if-none-match") or ""):
        await no_content(304, headers[:1]).send(send)
        return
    byte_range = _parse_range(request.header("range"), layout.length, request.header("if-range"), etag)
    start, end = byte_range or (0, layout.length)
    await _admit(ctx, request, share, etag)
    for upload in uploads:
        assert upload.blob is not None
        if not await ctx.service.storage.exists(upload.blob):
            raise ShareClosed(f"lost a file on the server ({upload.filename}); ask whoever sent it")
    crcs = await _crcs_for(ctx, layout, uploads, start, end)
    status = 206 if byte_range is not None else 200
    if byte_range is not None:
        headers.append(("content-range", f"bytes {start}-{end - 1}/{layout.length}"))
    headers.append(("content-length", str(end - start)))
    encoded = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": encoded})
    if request.method != "HEAD":
        await _stream_zip(ctx, send, layout, uploads, start, end, crcs)
    await send({"type": "http.response.body", "body": b""})


async def _crcs_for(ctx: Context, layout: ZipLayout, uploads: list[Upload], start: int, end: int) -> dict[int, int]:
    """The CRCs this range needs and does not compute as it goes: remembered ones, else read from the files now."""
    known = await ctx.shares.known_crc32s(u.sha256 or "" for u in uploads)
    crcs = {index: known[u.sha256 or ""] for index, u in enumerate(uploads) if (u.sha256 or "") in known}
    for index in layout.needed_crcs(start, end):
        if index not in crcs:
            crcs[index] = await _compute_crc(ctx, uploads[index])
            await ctx.shares.remember_crc32(uploads[index].sha256 or "", crcs[index])
    return crcs


async def _compute_crc(ctx: Context, upload: Upload) -> int:
    assert upload.blob is not None
    crc = 0
    async for block in ctx.service.storage.read(upload.blob):
        crc = zlib.crc32(block, crc)
    return crc


async def _stream_zip(ctx: Context, send: Send, layout: ZipLayout, uploads: list[Upload], start: int, end: int,
                      crcs: dict[int, int]) -> None:  # fmt: skip
    storage = ctx.service.storage

    def read(index: int, first: int, last: int) -> AsyncIterator[bytes]:
        blob = uploads[index].blob
        assert blob is not None
        return storage.read(blob, first, last)

    async def remember(index: int, crc: int) -> None:
        await ctx.shares.remember_crc32(uploads[index].sha256 or "", crc)

    pending: list[bytes] = []  # headers and descriptors (tens of bytes) go out with the data around them
    size = 0
    async for piece in layout.stream(start, end, crcs, read, remember):
        if len(piece) >= _SEND_AT_LEAST and not pending:
            await send({"type": "http.response.body", "body": piece, "more_body": True})  # a file block: no copy
            continue
        pending.append(piece)
        size += len(piece)
        if size >= _SEND_AT_LEAST:
            await send({"type": "http.response.body", "body": b"".join(pending), "more_body": True})
            pending, size = [], 0
    if pending:
        await send({"type": "http.response.body", "body": b"".join(pending), "more_body": True})
