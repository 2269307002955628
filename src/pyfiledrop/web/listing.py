"""GET /api/uploads with paging, search and sort (the admin's view of thousands of uploads), and
POST /api/uploads/delete to delete several at once."""

from __future__ import annotations

from collections.abc import Collection

from pyfiledrop.domain.ids import parse_upload_id
from pyfiledrop.errors import BadRequest, PyfiledropError
from pyfiledrop.meta import listing
from pyfiledrop.meta.sql import Database
from pyfiledrop.web import api
from pyfiledrop.web.context import Context
from pyfiledrop.web.http import Request, Response, json_response

_PAGING = ("limit", "offset", "q", "sort", "order")
_MAX_DELETE = 10_000


async def list_uploads(ctx: Context, request: Request) -> Response:
    """Without paging parameters, the whole list as before; with ``limit``/``offset``/``q``/``sort``/``order``, one
    page and the ``total`` that match."""
    if not any(name in request.query for name in _PAGING):
        return await api.list_uploads(ctx, request)
    identity = ctx.auth.identify(request)
    everyone = identity.admin and request.query.get("all", "") in ("1", "true")
    meta = ctx.service.meta
    if not isinstance(meta, Database):
        return await api.list_uploads(ctx, request)
    query = listing.PageQuery(
        owner=None if everyone else identity.require_owner(),
        search=request.query.get("q", "").strip()[:200],
        sort=_choice(request.query.get("sort", "created"), listing.SORTS, "sort"),
        descending=_choice(request.query.get("order", "desc"), {"asc": 0, "desc": 1}, "order") == "desc",
        limit=_number(request.query.get("limit", "100"), "limit", 1, listing.MAX_LIMIT),
        offset=_number(request.query.get("offset", "0"), "offset", 0, 2**62),
    )
    found = await listing.page(meta, query)
    items = []
    for upload in found.uploads:
        item = api.upload_json(ctx, request, upload, identity)
        if upload.owner in found.labels:
            item["drop_label"] = found.labels[upload.owner]
        items.append(item)
    return json_response({"uploads": items, "total": found.total, "limit": query.limit, "offset": query.offset})


async def delete_many(ctx: Context, request: Request) -> Response:
    """{"ids": [...]} → {"deleted": [...], "failed": [{"id", "error"}]}; each one as DELETE /api/uploads/{id}."""
    body = await request.json(1 << 20)
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list) or not ids or len(ids) > _MAX_DELETE or not all(isinstance(i, str) for i in ids):
        raise BadRequest(f'send {{"ids": ["…", …]}} with up to {_MAX_DELETE} upload ids')
    identity = ctx.auth.identify(request)
    identity.require_owner()
    deleted, failed = [], []
    for raw in dict.fromkeys(ids):
        try:
            upload = await ctx.service.status(parse_upload_id(raw))
            identity.check_manage(upload.owner)
            await ctx.service.terminate(upload.id)
        except PyfiledropError as exc:
            failed.append({"id": raw, "error": str(exc)})
        else:
            deleted.append(raw)
    return json_response({"deleted": deleted, "failed": failed})


def _choice(value: str, allowed: Collection[str], name: str) -> str:
    if value not in allowed:
        raise BadRequest(f"{name} must be one of {', '.join(allowed)}")
    return value


def _number(value: str, name: str, low: int, high: int) -> int:
    if not value.isdigit() or not low <= int(value) <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}")
    return int(value)
