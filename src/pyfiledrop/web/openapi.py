"""The OpenAPI 3.1 document of the JSON API (served at /api/openapi.json)."""

from __future__ import annotations

from functools import cache
from typing import Any

from pyfiledrop import __version__
from pyfiledrop.web.http import Response, json_response

_ERROR = {"$ref": "#/components/schemas/Error"}
_UPLOAD_ID = {
    "name": "upload_id", "in": "path", "required": True,
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{24}$"},
}  # fmt: skip


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


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
            "owner": {"type": "string"},
        },
    }  # fmt: skip
    security: list[dict[str, list[str]]] = [{"token": []}, {"bearer": []}, {"cookie": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "pyfiledrop", "version": __version__},
        "paths": {
            "/api/config": {"get": {"summary": "Limits and settings for clients", "responses": {
                "200": _json({"type": "object"}, "server settings")}}},
            "/api/session": {"get": {"summary": "Who am I; issues an owner token to a new client", "responses": {
                "200": _json({"type": "object", "properties": {
                    "owner": {"type": ["string", "null"]}, "admin": {"type": "boolean"},
                    "token": {"type": ["string", "null"]}}}, "identity")}}},
            "/api/uploads": {"get": {
                "summary": "My uploads (all uploads with ?all=1 and the admin token)", "security": security,
                "parameters": [{"name": "all", "in": "query", "schema": {"type": "string", "enum": ["0", "1"]}}],
                "responses": {"200": _json({"type": "object", "properties": {
                    "uploads": {"type": "array", "items": {"$ref": "#/components/schemas/Upload"}}}}, "uploads"),
                    **_errors(401)}}},
            "/api/uploads/{upload_id}": {
                "get": {"summary": "One upload's status, with received ranges for resuming",
                        "parameters": [_UPLOAD_ID], "security": security,
                        "responses": {"200": _json({"$ref": "#/components/schemas/Upload"}, "the upload"),
                                      **_errors(400, 401, 403, 404, 410)}},
                "delete": {"summary": "Delete an upload", "parameters": [_UPLOAD_ID], "security": security,
                           "responses": {"204": {"description": "deleted"}, **_errors(400, 401, 403, 404, 410)}},
            },
        },
        "components": {
            "schemas": {
                "Upload": upload,
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


def document() -> Response:
    return json_response(_document())
