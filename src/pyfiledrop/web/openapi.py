"""The OpenAPI 3.1 document of the JSON API (served at /api/openapi.json)."""

from __future__ import annotations

from functools import cache
from typing import Any

from pyfiledrop import __version__
from pyfiledrop.web import openapi_video
from pyfiledrop.web.http import Response, json_response

_ERROR = {"$ref": "#/components/schemas/Error"}
_UPLOAD_ID = {
    "name": "upload_id", "in": "path", "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{24}$"},
}  # fmt: skip


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(status): _json(_ERROR, "error") for status in statuses}


@cache
def _document() -> dict[str, Any]:
    upload = {
        "type": "object",
        "required": ["id", "filename", "size", "offset", "received", "state", "complete"],
        "properties": {
            "id": {"type": "string"},
            "filename": {"type": "string"},
            "size": {"type": ["integer", "null"]},
            "offset": {"type": "integer", "description": "bytes received from the start with no gap"},
            "received_bytes": {"type": "integer"},
            "received": {"type": "array", "items": {"type": "array", "items": {"type": "integer"}},
                         "description": "received byte ranges [start, end)"},
            "state": {"type": "string", "enum": ["receiving", "completing", "complete", "terminated"]},
            "complete": {"type": "boolean"},
            "sha256": {"type": ["string", "null"]},
            "content_type": {"type": "string"},
            "protocol": {"type": "string", "enum": ["tus", "dropzone", "put"]},
            "created_at": {"type": "number"},
            "updated_at": {"type": "number"},
            "expires_at": {"type": ["number", "null"]},
            "tus_url": {"type": "string"},
            "download_url": {"type": ["string", "null"]},
            "dzuuid": {"type": "string"},
            "owner": {"type": "string", "description": "admin only"},
            "client_address": {"type": ["string", "null"], "description": "admin only: the address the upload "
                               "came from (the proxy's client with --behind-proxy); null for uploads made before"},
            "drop_label": {"type": "string", "description": "admin listing with paging: the drop link's label"},
        },
    }  # fmt: skip
    security: list[dict[str, list[str]]] = [{"token": []}, {"bearer": []}, {"cookie": []}]
    # Further than a thousand years is no time but "never" (null): refused with 400 (web/api.py).
    number_or_null = {"type": ["number", "null"], "exclusiveMinimum": 0, "maximum": 1000 * 365.25 * 24 * 3600}
    expiry = {"type": "object", "properties": {"expires_in": number_or_null, "expires_at": number_or_null}}
    share = {
        "type": "object",
        "required": ["id", "upload_id", "active"],
        "properties": {
            "id": {"type": "string"},
            "upload_id": {"type": "string"},
            "created_at": {"type": "number"},
            "expires_at": {"type": ["number", "null"]},
            "active": {"type": "boolean"},
            "token": {"type": "string"},
            "url": {"type": "string"},
            "upload_ids": {"type": "array", "items": {"type": "string"}},
            "password_required": {"type": "boolean"},
            "max_downloads": {"type": ["integer", "null"]},
            "downloads": {"type": "integer"},
        },
    }
    share_options = {
        "expires_in": {"type": ["number", "null"], "exclusiveMinimum": 0},
        "password": {"type": ["string", "null"], "minLength": 1},
        "max_downloads": {"type": ["integer", "null"], "minimum": 1},
    }
    paging = [
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
        {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        {"name": "q", "in": "query", "schema": {"type": "string"}},
        {"name": "sort", "in": "query", "schema": {"type": "string", "enum": ["created", "name", "size", "state"]}},
        {"name": "order", "in": "query", "schema": {"type": "string", "enum": ["asc", "desc"]}},
    ]
    drop = {
        "type": "object",
        "required": ["id", "label", "files_used", "bytes_used", "password_required"],
        "properties": {
            "id": {"type": "string"},
            "label": {"type": "string"},
            "max_bytes": {"type": ["integer", "null"]},
            "max_files": {"type": ["integer", "null"]},
            "files_used": {"type": "integer"},
            "bytes_used": {"type": "integer"},
            "created_at": {"type": "number"},
            "expires_at": {"type": ["number", "null"]},
            "password_required": {"type": "boolean"},
            "revoked": {"type": "boolean"},
            "token": {"type": "string"},
            "url": {"type": "string"},
        },
    }
    whole_or_null = {"type": ["integer", "null"], "minimum": 1}
    new_drop = {
        "type": "object",
        "properties": {
            "label": {"type": "string", "maxLength": 200},
            "password": {"type": ["string", "null"], "minLength": 1},
            "max_bytes": whole_or_null,
            "max_files": whole_or_null,
            "expires_in": number_or_null,
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "pyfiledrop", "version": __version__, "description": (
            "HEAD is answered wherever GET is. Any other method on a listed path answers 405 Method Not Allowed "
            "with an Allow header (and OPTIONS 204 with it); a token header that is not printable ASCII answers 401.")},
        "paths": {
            "/api/config": {"get": {"summary": "Limits and settings for clients", "responses": {
                "200": _json({"type": "object"}, "server settings"), **_errors(401)}}},
            "/api/session": {"get": {"summary": "Who am I; issues an owner token to a new client", "responses": {
                "200": _json({"type": "object", "properties": {
                    "owner": {"type": ["string", "null"]}, "admin": {"type": "boolean"},
                    "token": {"type": ["string", "null"]}}}, "identity"), **_errors(401)}}},
            "/api/uploads": {"get": {
                "summary": "My uploads (all uploads with ?all=1 and the admin token)", "security": security,
                "parameters": [{"name": "all", "in": "query", "schema": {"type": "string", "enum": ["0", "1"]}},
                               *paging],
                "responses": {"200": _json({"type": "object", "properties": {
                    "uploads": {"type": "array", "items": {"$ref": "#/components/schemas/Upload"}},
                    "total": {"type": "integer"}}}, "uploads (a page of them, with its total, given paging)"),
                    **_errors(400, 401)}}},
            "/api/uploads/delete": {"post": {
                "summary": "Delete several uploads", "security": security,
                "requestBody": _body({"type": "object", "required": ["ids"], "properties": {
                    "ids": {"type": "array", "minItems": 1, "items": {"type": "string"}}}}),
                "responses": {"200": _json({"type": "object", "properties": {
                    "deleted": {"type": "array"}, "failed": {"type": "array"}}}, "what was deleted and what not"),
                    **_errors(400, 401)}}},
            "/api/shares": {
                "get": {"summary": "My share links (everyone's with ?all=1 and the admin token)", "security": security,
                        "responses": {"200": _json({"type": "object", "properties": {
                            "shares": {"type": "array", "items": share}}}, "share links"), **_errors(401)}},
                "post": {"summary": "One share link to several files: a page and a zip (token shown once)",
                         "security": security, "requestBody": _body({"type": "object", "required": ["upload_ids"],
                             "properties": {**share_options, "label": {"type": "string", "maxLength": 200},
                                            "upload_ids": {"type": "array", "minItems": 1,
                                                           "items": {"type": "string"}}}}),
                         "responses": {"201": _json(share, "the share link"),
                                       **_errors(400, 401, 403, 404, 409, 410)}},
            },
            "/api/uploads/{upload_id}": {
                "get": {"summary": "One upload's status, with received ranges for resuming",
                        "parameters": [_UPLOAD_ID], "security": security,
                        "responses": {"200": _json({"$ref": "#/components/schemas/Upload"}, "the upload"),
                                      **_errors(400, 401, 403, 404, 410)}},
                "delete": {"summary": "Delete an upload", "parameters": [_UPLOAD_ID], "security": security,
                           "responses": {"204": {"description": "deleted"}, **_errors(400, 401, 403, 404, 410)}},
                "patch": {"summary": "Set or extend a finished upload's expiry", "parameters": [_UPLOAD_ID],
                          "security": security, "requestBody": _body(expiry),
                          "responses": {"200": _json({"$ref": "#/components/schemas/Upload"}, "the upload"),
                                        **_errors(400, 401, 403, 404, 409, 410)}},
            },
            "/api/uploads/{upload_id}/shares": {
                "post": {"summary": "Make a share link (token shown once)", "parameters": [_UPLOAD_ID],
                         "security": security, "requestBody": _body({"type": "object", "properties": share_options}),
                         "responses": {"201": _json(share, "the share link"), **_errors(400, 401, 403, 404, 409, 410)}},
                "get": {"summary": "The upload's share links", "parameters": [_UPLOAD_ID], "security": security,
                        "responses": {"200": _json({"type": "object", "properties": {
                            "shares": {"type": "array", "items": share}}}, "share links"),
                            **_errors(400, 401, 403, 404, 410)}},
            },
            "/api/shares/{share_id}": {"delete": {
                "summary": "Revoke a share link", "security": security,
                "parameters": [{"name": "share_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"204": {"description": "revoked"}, **_errors(401, 403, 404)}}},
            "/api/login": {"post": {
                "summary": "Unlock uploading in this browser with the server's password (sets an HttpOnly cookie)",
                "requestBody": _body({"type": "object", "required": ["password"], "properties": {
                    "password": {"type": "string", "minLength": 1}}}),
                "responses": {"204": {"description": "unlocked"}, **_errors(400, 401, 429)}}},
            "/api/drops": {
                "get": {"summary": "All drop links (admin)", "security": security, "responses": {
                    "200": _json({"type": "object", "properties": {"drops": {"type": "array", "items": drop}}},
                                 "drop links"), **_errors(401, 403)}},
                "post": {"summary": "Make a drop link (admin); its token and URL are shown once",
                         "security": security, "requestBody": _body(new_drop),
                         "responses": {"201": _json(drop, "the drop link"), **_errors(400, 401, 403)}},
            },
            "/api/drops/current": {"get": {
                "summary": "The drop link named by X-Pyfiledrop-Drop: label, limits, use",
                "parameters": [{"name": "X-Pyfiledrop-Drop", "in": "header", "required": True,
                                "schema": {"type": "string"}}],
                "responses": {"200": _json(drop, "the drop link"), **_errors(400, 404, 410)}},
                "post": {"summary": "Check the drop link's password (nothing is stored)",
                         "parameters": [{"name": "X-Pyfiledrop-Drop", "in": "header", "required": True,
                                         "schema": {"type": "string"}}],
                         "requestBody": _body({"type": "object", "required": ["password"], "properties": {
                             "password": {"type": "string", "minLength": 1}}}),
                         "responses": {"204": {"description": "right (or the link has none)"},
                                       **_errors(400, 401, 404, 410, 429)}}},
            "/api/drops/{drop_id}": {"delete": {
                "summary": "Revoke a drop link (admin)", "security": security,
                "parameters": [{"name": "drop_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"204": {"description": "revoked"}, **_errors(401, 403, 404)}}},
            "/api/admin/stats": {"get": {"summary": "Counts, disk use and the keep-awake hold (admin)",
                                         "security": security,
                                         "responses": {"200": _json(_STATS, "stats"), **_errors(401, 403)}}},
            "/api/admin/verify": {"post": {
                "summary": "Re-hash every stored file (admin)", "security": security,
                "responses": {"200": _json({"type": "object", "required": ["checked", "ok", "problems"]}, "report"),
                              **_errors(401, 403)}}},
            **openapi_video.paths(security),
        },
        "components": {
            "schemas": {
                "Upload": upload,
                **openapi_video.schemas(),
                "Error": {"type": "object", "required": ["error", "detail"], "properties": {
                    "error": {"type": "string"}, "detail": {"type": "string"}}},
            },
            "securitySchemes": {
                "token": {"type": "apiKey", "in": "header", "name": "X-Pyfiledrop-Token"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "pyfiledrop_token"},
            },
        },
    }  # fmt: skip


_AWAKE = {
    "type": "object", "required": ["mode", "held", "method", "reason"],
    "description": "Whether system sleep is held off now, by which method, or why it cannot be (awake/tracker.py)",
    "properties": {
        "mode": {"type": "string", "enum": ["auto", "always", "never"]}, "held": {"type": "boolean"},
        "method": {"type": ["string", "null"]}, "reason": {"type": "string"},
    },
}  # fmt: skip
_STATS = {
    "type": "object", "required": ["uploads", "complete", "unfinished", "stored_bytes", "awake"],
    "properties": {
        "uploads": {"type": "integer"}, "complete": {"type": "integer"}, "unfinished": {"type": "integer"},
        "stored_bytes": {"type": "integer"}, "awake": _AWAKE,
    },
}  # fmt: skip


@cache
def _with_malformed_request_answers() -> dict[str, Any]:
    """The HTTP server itself answers 400 (empty body) to a request it cannot parse, before the app sees it."""
    doc = _document()
    for operations in doc["paths"].values():
        for operation in operations.values():
            operation["responses"].setdefault("400", {"description": "malformed request"})
    return doc


def document() -> Response:
    return json_response(_with_malformed_request_answers())
