"""Drop links over HTTP: the admin makes, lists and revokes them under /api/drops; a holder opens /d/{token},
which is the page in drop mode, and uploads with the token in X-Pyfiledrop-Drop (or PUTs to /d/{token}/name)."""

from __future__ import annotations

import math
import time
from typing import Any

from pyfiledrop import passwords
from pyfiledrop.engine import events
from pyfiledrop.errors import BadRequest, Forbidden, PyfiledropError
from pyfiledrop.meta.drops import Drop, NewDrop
from pyfiledrop.web.access import DROP_HEADER
from pyfiledrop.web.context import Context
from pyfiledrop.web.http import Request, Response, json_response, no_content

_MAX_LABEL = 200
_LARGEST = 2**62  # SQLite integers are 64-bit


async def drop_json(ctx: Context, drop: Drop) -> dict[str, Any]:
    usage = await ctx.service.meta.usage(drop.owner)
    return {
        "id": drop.id,
        "label": drop.label,
        "max_bytes": drop.max_bytes,
        "max_files": drop.max_files,
        "files_used": usage.files,
        "bytes_used": usage.owner,
        "created_at": drop.created_at,
        "expires_at": drop.expires_at,
        "password_required": drop.password_hash is not None,
        "revoked": drop.revoked,
    }


async def current(ctx: Context, request: Request) -> Response:
    """What a holder may know of their link: its label, limits and how much is used."""
    token = request.header(DROP_HEADER)
    if not token:
        raise BadRequest("send the drop link's token in the X-Pyfiledrop-Drop header")
    drop = await ctx.access.drops.resolve(token)
    data = await drop_json(ctx, drop)
    del data["revoked"]
    return json_response(data)


async def check_password(ctx: Context, request: Request) -> Response:
    """Let a holder's page check the link's password before the first upload (204, or 401 / 429)."""
    token = request.header(DROP_HEADER)
    if not token:
        raise BadRequest("send the drop link's token in the X-Pyfiledrop-Drop header")
    drop = await ctx.access.drops.resolve(token)
    body = await request.json()
    password = body.get("password") if isinstance(body, dict) else None
    if not isinstance(password, str) or not password:
        raise BadRequest('send {"password": "..."}')
    if drop.password_hash is not None:
        await ctx.access.verify(request, drop.password_hash, password)
    return no_content(204)


def _require_admin(ctx: Context, request: Request) -> None:
    if not ctx.auth.identify(request).admin:
        raise Forbidden("drop links are made and managed with the admin token")


async def create(ctx: Context, request: Request) -> Response:
    _require_admin(ctx, request)
    body = await request.json()
    if not isinstance(body, dict):
        raise BadRequest('send a JSON object, e.g. {"label": "footage", "max_files": 10}')
    label = body.get("label") or "Drop link"
    if not isinstance(label, str) or len(label) > _MAX_LABEL:
        raise BadRequest(f"label must be text of at most {_MAX_LABEL} characters")
    password = body.get("password")
    if password is not None and (not isinstance(password, str) or not password):
        raise BadRequest("password must be non-empty text, or null for none")
    expires_in = _positive(body, "expires_in")
    new = NewDrop(
        label=label,
        password_hash=passwords.hash_password(password) if password else None,
        max_bytes=_whole(body, "max_bytes"),
        max_files=_whole(body, "max_files"),
        expires_at=time.time() + expires_in if expires_in is not None else None,
    )
    drop, token = await ctx.access.drops.create(new)
    events.name_drop(drop.owner, drop.label)
    events.emit("drop.created", id=drop.id, label=drop.label, password=drop.password_hash is not None,
                max_bytes=drop.max_bytes, max_files=drop.max_files, expires_at=drop.expires_at)  # fmt: skip
    data = await drop_json(ctx, drop)
    data["token"] = token  # shown once: only its hash is stored
    data["url"] = f"{ctx.base_url(request)}/d/{token}"
    return json_response(data, 201)


def _positive(body: dict[str, Any], name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise BadRequest(f"{name} must be a positive number, or null for no limit")
    if value > _LARGEST or not math.isfinite(value):  # in this order: isfinite(10**400) raises OverflowError
        raise BadRequest(f"{name} is too large")
    return float(value)


def _whole(body: dict[str, Any], name: str) -> int | None:
    value = _positive(body, name)
    if value is not None and (not value.is_integer() or value > _LARGEST):
        raise BadRequest(f"{name} must be a whole number up to {_LARGEST}, or null for no limit")
    return None if value is None else int(value)


async def list_drops(ctx: Context, request: Request) -> Response:
    _require_admin(ctx, request)
    return json_response({"drops": [await drop_json(ctx, drop) for drop in await ctx.access.drops.list()]})


async def revoke(ctx: Context, request: Request, drop_id: str) -> Response:
    _require_admin(ctx, request)
    await ctx.access.drops.revoke(drop_id)
    label = await _label(ctx, drop_id)
    events.emit("drop.revoked", id=drop_id, label=label)
    return no_content(204)


async def _label(ctx: Context, drop_id: str) -> str | None:
    try:
        return (await ctx.access.drops.get(drop_id)).label
    except PyfiledropError:
        return None
