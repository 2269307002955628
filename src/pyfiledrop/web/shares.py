"""Share links over HTTP: /api/uploads/{id}/shares to make and list them, /api/shares/{id} to revoke, /s/{token}."""

from __future__ import annotations

import time
from typing import Any

from pyfiledrop.domain.ids import parse_upload_id
from pyfiledrop.domain.model import UploadState
from pyfiledrop.errors import BadRequest, UploadConflict
from pyfiledrop.meta.shares import Share
from pyfiledrop.web.api import seconds_from_now
from pyfiledrop.web.context import Context
from pyfiledrop.web.downloads import send_upload
from pyfiledrop.web.http import Request, Response, Send, json_response, no_content


def _share_json(ctx: Context, request: Request, share: Share, token: str | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": share.id,
        "upload_id": share.upload_id,
        "created_at": share.created_at,
        "expires_at": share.expires_at,
        "active": share.active,
    }
    if token is not None:  # shown once: only the token's hash is stored
        data["token"] = token
        data["url"] = f"{ctx.base_url(request)}/s/{token}"
    return data


async def create(ctx: Context, request: Request, raw_id: str) -> Response:
    upload = await ctx.service.status(parse_upload_id(raw_id))
    ctx.auth.identify(request).check_manage(upload.owner)
    if upload.state is not UploadState.COMPLETE:
        raise UploadConflict("only a finished upload can be shared")
    body = await request.json()
    expires_in = body.get("expires_in") if isinstance(body, dict) else None
    message = "expires_in must be a positive number of seconds, or left out for a link that does not expire"
    expires_at = time.time() + seconds_from_now(expires_in, message) if expires_in is not None else None
    share, token = await ctx.shares.create(upload.id, expires_at)
    return json_response(_share_json(ctx, request, share, token), 201)


async def list_shares(ctx: Context, request: Request, raw_id: str) -> Response:
    upload = await ctx.service.status(parse_upload_id(raw_id))
    ctx.auth.identify(request).check_manage(upload.owner)
    return json_response({"shares": [_share_json(ctx, request, s) for s in await ctx.shares.for_upload(upload.id)]})


async def revoke(ctx: Context, request: Request, share_id: str) -> Response:
    share = await ctx.shares.get(share_id)
    upload = await ctx.service.meta.get(share.upload_id)
    ctx.auth.identify(request).check_manage(upload.owner)
    await ctx.shares.revoke(share.id)
    return no_content(204)


async def download(ctx: Context, request: Request, send: Send, token: str) -> None:
    """The link is the capability, even with downloads off; revoked or expired links answer 410."""
    if not 20 <= len(token) <= 64:
        raise BadRequest("malformed share link")
    share = await ctx.shares.resolve(token)
    await send_upload(ctx, request, send, await ctx.service.meta.get(share.upload_id))
