"""Share links over the API: make one for a file (/api/uploads/{id}/shares) or for several (/api/shares), list them,
revoke them (/api/shares/{id}). What a link's holder gets at /s/{token} is in web/share_links.py."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pyfiledrop import passwords
from pyfiledrop.domain.ids import UploadId, parse_upload_id
from pyfiledrop.domain.model import Upload, UploadState
from pyfiledrop.errors import BadRequest, UploadConflict, UploadNotFound
from pyfiledrop.meta.shares import NewShare, Share
from pyfiledrop.web.auth import Identity
from pyfiledrop.web.context import Context
from pyfiledrop.web.http import Request, Response, json_response, no_content

_MAX_FILES = 10_000  # in one share
_MAX_LABEL = 200
_LARGEST = 2**62  # SQLite integers are 64-bit


async def share_json(ctx: Context, request: Request, share: Share, token: str | None = None) -> dict[str, Any]:
    names = []
    for upload_id in share.upload_ids:
        try:
            names.append((await ctx.service.meta.get(upload_id)).filename)
        except UploadNotFound:
            names.append("")
    data: dict[str, Any] = {
        "id": share.id,
        "upload_id": share.upload_id,
        "upload_ids": list(share.upload_ids),
        "filenames": names,
        "label": share.label,
        "several": share.several,
        "created_at": share.created_at,
        "expires_at": share.expires_at,
        "password_required": share.password_hash is not None,
        "max_downloads": share.max_downloads,
        "downloads": share.downloads,
        "revoked": share.revoked,
        "active": share.active,
    }
    if token is not None:  # shown once: only the token's hash is stored
        data["token"] = token
        data["url"] = f"{ctx.base_url(request)}/s/{token}"
    return data


async def create(ctx: Context, request: Request, raw_id: str) -> Response:
    """POST /api/uploads/{id}/shares: {"expires_in"?, "password"?, "max_downloads"?} → the link, shown once."""
    upload = await ctx.service.status(parse_upload_id(raw_id))
    _check_shareable(ctx.auth.identify(request), upload)
    body = await request.json()
    new = await _options(body if isinstance(body, dict) else {}, (upload.id,), several=False)
    share, token = await ctx.shares.create(new)
    return json_response(await share_json(ctx, request, share, token), 201)


async def create_selection(ctx: Context, request: Request) -> Response:
    """POST /api/shares: {"upload_ids": [...], "label"?, …} → one link to several files (a page and a zip)."""
    body = await request.json(1 << 20)
    if not isinstance(body, dict) or not isinstance(body.get("upload_ids"), list) or not body["upload_ids"]:
        raise BadRequest('send {"upload_ids": ["…", …]} with the finished uploads to share')
    raw_ids = body["upload_ids"]
    if len(raw_ids) > _MAX_FILES or not all(isinstance(raw, str) for raw in raw_ids):
        raise BadRequest(f"upload_ids must be up to {_MAX_FILES} upload ids")
    identity = ctx.auth.identify(request)
    ids: list[UploadId] = []
    for raw in dict.fromkeys(raw_ids):  # once each, in the order given
        upload = await ctx.service.status(parse_upload_id(raw))
        _check_shareable(identity, upload)
        ids.append(upload.id)
    new = await _options(body, tuple(ids), several=True)
    share, token = await ctx.shares.create(new)
    return json_response(await share_json(ctx, request, share, token), 201)


async def list_shares(ctx: Context, request: Request, raw_id: str) -> Response:
    upload = await ctx.service.status(parse_upload_id(raw_id))
    ctx.auth.identify(request).check_manage(upload.owner)
    shares = await ctx.shares.for_upload(upload.id)
    return json_response({"shares": [await share_json(ctx, request, s) for s in shares]})


async def list_mine(ctx: Context, request: Request) -> Response:
    """GET /api/shares: the links to this owner's files (the admin's ?all=1: everyone's), newest first."""
    identity = ctx.auth.identify(request)
    everyone = identity.admin and request.query.get("all", "") in ("1", "true")
    shares = await ctx.shares.for_owner(None if everyone else identity.require_owner())
    return json_response({"shares": [await share_json(ctx, request, s) for s in shares]})


async def revoke(ctx: Context, request: Request, share_id: str) -> Response:
    share = await ctx.shares.get(share_id)
    upload = await ctx.service.meta.get(share.upload_id)
    ctx.auth.identify(request).check_manage(upload.owner)
    await ctx.shares.revoke(share.id)
    return no_content(204)


def _check_shareable(identity: Identity, upload: Upload) -> None:
    identity.check_manage(upload.owner)
    if upload.state is not UploadState.COMPLETE:
        raise UploadConflict(f"only a finished upload can be shared ({upload.filename} is {upload.state.value})")


async def _options(body: dict[str, Any], upload_ids: tuple[UploadId, ...], *, several: bool) -> NewShare:
    expires_in = body.get("expires_in")
    if expires_in is not None and (
        not isinstance(expires_in, int | float) or isinstance(expires_in, bool) or not 0 < expires_in < _LARGEST
    ):
        raise BadRequest("expires_in must be a positive number of seconds, or left out for a link that does not expire")
    max_downloads = body.get("max_downloads")
    if max_downloads is not None and (
        not isinstance(max_downloads, int) or isinstance(max_downloads, bool) or not 0 < max_downloads < _LARGEST
    ):
        raise BadRequest("max_downloads must be a whole number above 0, or left out for no limit")
    password = body.get("password")
    if password is not None and (not isinstance(password, str) or not password):
        raise BadRequest("password must be a non-empty string, or left out for a link without one")
    label = body.get("label") or ""
    if not isinstance(label, str) or len(label) > _MAX_LABEL:
        raise BadRequest(f"label must be text of up to {_MAX_LABEL} characters")
    password_hash = await asyncio.to_thread(passwords.hash_password, password) if password else None
    return NewShare(
        upload_ids=upload_ids,
        expires_at=time.time() + float(expires_in) if expires_in is not None else None,
        password_hash=password_hash,
        max_downloads=max_downloads,
        label=" ".join(label.split()),
        several=several,
    )
