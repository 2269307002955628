"""The JSON API under /api/ for the web page and scripts."""

from __future__ import annotations

import math
import time
from typing import Any

from pyfiledrop import __version__
from pyfiledrop.domain.ids import parse_upload_id
from pyfiledrop.domain.mediatype import safe_media_type
from pyfiledrop.domain.model import Upload, UploadState
from pyfiledrop.errors import BadRequest, Forbidden
from pyfiledrop.web.auth import COOKIE, Identity, token_headers
from pyfiledrop.web.context import Context
from pyfiledrop.web.http import Request, Response, json_response, no_content
from pyfiledrop.web.links import STORED_FOR_OWNER, download_link

_LONGEST = 1000 * 365.25 * 24 * 3600  # an expiry further away than this is not a time, it is "never" (null)


def upload_json(ctx: Context, request: Request, upload: Upload, identity: Identity) -> dict[str, Any]:
    complete = upload.state is UploadState.COMPLETE
    data: dict[str, Any] = {
        "id": upload.id,
        "filename": upload.filename,
        "size": upload.size,
        "offset": upload.offset,
        "received_bytes": upload.received.total,
        "received": [list(span) for span in upload.received],
        "state": upload.state.value,
        "complete": complete,
        "sha256": upload.sha256 or None,
        "content_type": safe_media_type(upload.content_type),
        "protocol": upload.protocol.value,
        "created_at": upload.created_at,
        "updated_at": upload.updated_at,
        "expires_at": upload.expires_at,
        "tus_url": ctx.tus_url(request, upload.id),
        "download_url": download_link(ctx, request, upload, identity),
    }
    if complete and data["download_url"] is None:
        data["message"] = STORED_FOR_OWNER  # a drop link's sender: nothing to download, and no dead link
    if upload.alias:
        data["dzuuid"] = upload.alias
    if identity.admin:  # who sent what: the admin's business only
        data["owner"] = upload.owner
        data["client_address"] = upload.client_address
    return data


def _mib(size: int) -> int | float:
    whole, rest = divmod(size, 1 << 20)
    return whole if not rest else round(size / (1 << 20), 3)


async def config(ctx: Context, request: Request) -> Response:
    s = ctx.settings
    return json_response(
        {
            "version": __version__,
            "chunk_size": s.chunk_size,
            "page_chunk_size": s.page_chunk,  # the page's own chunks (larger by default: fewer requests)
            "max_size_mib": _mib(s.max_size_bytes),  # Dropzone's maxFilesize unit
            "max_size_bytes": s.max_size_bytes,
            "timeout_ms": s.timeout,
            "parallel_chunks": not s.disable_parallel_chunks,
            "force_chunking": not s.disable_force_chunking,
            "allow_downloads": s.allow_downloads,
            "tus_endpoint": "/files/",
            "tus_extensions": list(ctx.tus_extensions),
            "stale_after_seconds": s.stale_after,
            "password_required": ctx.access.password_required(request),
            "expire_after_seconds": s.expire_after_seconds,  # the longest expiry an uploader may pick (None: any)
            "parallel_write": True,  # tus PATCH with X-Pyfiledrop-Parallel-Write: 1 (protocols/tus.py)
        }
    )


async def login(ctx: Context, request: Request) -> Response:
    """Unlock uploading in this browser with the server's --password: an HttpOnly cookie for 30 days."""
    body = await request.json()
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(password, str) or not password:
        raise BadRequest('send {"password": "..."}')
    if ctx.access.password_hash is None:
        return no_content(204)  # nothing to unlock
    await ctx.access.verify(request, ctx.access.password_hash, password)
    return no_content(204, [("set-cookie", ctx.access.pass_cookie(request.scheme == "https"))])


async def session(ctx: Context, request: Request) -> Response:
    """Who am I; gives an anonymous browser its owner token (as an HttpOnly cookie)."""
    identity = ctx.auth.identify_or_issue(request)
    body = {"owner": identity.owner, "admin": identity.admin, "token": identity.new_token}
    return json_response(body, headers=token_headers(identity, request.scheme == "https"))


def forget(request: Request) -> Response:
    """'Forget on this browser': drop the owner cookie; the uploads stay on the server for their owner token."""
    secure = "; Secure" if request.scheme == "https" else ""
    cookie = f"{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}"
    return no_content(204, [("set-cookie", cookie)])


async def list_uploads(ctx: Context, request: Request) -> Response:
    identity = ctx.auth.identify(request)
    everyone = identity.admin and request.query.get("all", "") in ("1", "true")
    owner = None if everyone else identity.require_owner()
    uploads = await ctx.service.meta.list(owner)
    now = time.time()  # an expired upload is gone from the list at once, not when the sweep frees its bytes
    items = [
        upload_json(ctx, request, u, identity) for u in uploads if u.concat.value != "partial" and not u.expired(now)
    ]
    return json_response({"uploads": items})


async def get_upload(ctx: Context, request: Request, raw_id: str) -> Response:
    upload = await ctx.service.status(parse_upload_id(raw_id))
    identity = ctx.auth.identify(request)
    if upload.state is UploadState.COMPLETE and not await ctx.access.sent_through_drop(request, upload.owner):
        identity.check_manage(upload.owner)  # unfinished: the id is the capability, as for tus HEAD
    return json_response(upload_json(ctx, request, upload, identity))


async def delete_upload(ctx: Context, request: Request, raw_id: str) -> Response:
    upload = await ctx.service.status(parse_upload_id(raw_id))
    ctx.auth.identify(request).check_manage(upload.owner)
    await ctx.service.terminate(upload.id)
    return no_content(204)


async def admin_stats(ctx: Context, request: Request) -> Response:
    if not ctx.auth.identify(request).admin:
        raise Forbidden("this needs the admin token")
    uploads = await ctx.service.meta.list(None)
    complete = [u for u in uploads if u.state is UploadState.COMPLETE]
    usage = ctx.service.storage.usage()
    return json_response(
        {
            "uploads": len(uploads),
            "complete": len(complete),
            "unfinished": len(uploads) - len(complete),
            "stored_bytes": sum(u.size or 0 for u in complete),
            **usage,
            "awake": ctx.awake.status().as_json(),
        }
    )


async def update_upload(ctx: Context, request: Request, raw_id: str) -> Response:
    """Set or extend a finished upload's expiry: {"expires_in": seconds | null} or {"expires_at": epoch | null}."""
    upload = await ctx.service.status(parse_upload_id(raw_id))
    identity = ctx.auth.identify(request)
    identity.check_manage(upload.owner)
    body = await request.json()
    if not isinstance(body, dict) or not ({"expires_in", "expires_at"} & body.keys()):
        raise BadRequest('send {"expires_in": seconds} or {"expires_at": unix time}; null means never')
    expires_at = _requested_expiry(body)
    limit = ctx.settings.expire_after_seconds
    if not identity.admin and limit is not None and (expires_at is None or expires_at > time.time() + limit):
        raise Forbidden(f"uploads on this server expire within {limit:g} s; only the admin may keep one longer")
    updated = await ctx.service.set_expiry(upload.id, expires_at)
    return json_response(upload_json(ctx, request, updated, identity))


def _requested_expiry(body: dict[str, Any]) -> float | None:
    if "expires_in" in body:
        value = body["expires_in"]
        if value is None:
            return None
        return time.time() + seconds_from_now(value, "expires_in must be a positive number of seconds or null")
    value = body["expires_at"]
    if value is None:
        return None
    message = "expires_at must be a unix time in the future or null"
    return time.time() + seconds_from_now(_number(value, message) - time.time(), message)


def seconds_from_now(value: Any, message: str) -> float:
    """A positive, finite number of seconds up to a thousand years (BadRequest with ``message`` otherwise): JSON's
    1e400 is infinity and 10**400 no float at all, neither a time to store or to send back as JSON."""
    seconds = _number(value, message)
    if not 0 < seconds <= _LONGEST:
        raise BadRequest(message)
    return seconds


def _number(value: Any, message: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(message)
    try:
        number = float(value)
    except OverflowError:
        raise BadRequest(message) from None
    if not math.isfinite(number):
        raise BadRequest(message)
    return number


async def admin_verify(ctx: Context, request: Request) -> Response:
    """Re-hash every stored file and report those that changed or vanished on disk."""
    if not ctx.auth.identify(request).admin:
        raise Forbidden("this needs the admin token")
    checks = await ctx.lifecycle.verify()
    bad = [
        {"key": c.key, "expected_sha256": c.expected_sha256, "actual_sha256": c.actual_sha256, "uploads": c.references}
        for c in checks
        if not c.ok
    ]
    return json_response({"checked": len(checks), "ok": len(checks) - len(bad), "problems": bad})
