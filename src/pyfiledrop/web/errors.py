"""The one table from domain errors to HTTP, and the renderers for each kind of route."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from enum import Enum
from typing import Final

from pyfiledrop import errors as e
from pyfiledrop.httpd.response import plain_refusal
from pyfiledrop.web.http import Response, json_response, text_response

log = logging.getLogger("pyfiledrop.web")

HTTP_STATUS: Final[Mapping[type[e.PyfiledropError], int]] = {
    e.BadRequest: 400,
    e.NotAuthorized: 401,
    e.Forbidden: 403,
    e.DownloadsDisabled: 403,
    e.UploadNotFound: 404,
    e.RequestTimeout: 408,
    e.OffsetMismatch: 409,
    e.UploadConflict: 409,
    e.UploadGone: 410,
    e.DropNotFound: 404,
    e.DropClosed: 410,
    e.ShareClosed: 410,
    e.TooLarge: 413,
    e.UnsupportedMediaType: 415,
    e.RangeNotSatisfiable: 416,
    e.VersionMismatch: 412,
    e.PreconditionFailed: 412,  # after VersionMismatch: the code the server's own 412s would take
    e.MethodNotAllowed: 405,
    e.JobNotFound: 404,
    e.Unprocessable: 422,
    e.UploadLocked: 423,
    e.RateLimited: 429,
    e.ChecksumMismatch: 460,  # tus checksum extension
    e.ClientDisconnected: 499,  # nobody reads it; logged like nginx does
    e.StorageFull: 507,
    e.QuotaExceeded: 507,
}


class Style(Enum):
    TUS = "tus"  # text/plain "ERR_CODE: message", as tusd
    JSON = "json"  # {"error": code, "detail": message}
    TEXT = "text"  # a line for curl users


def style_for(path: str) -> Style:
    if path.startswith("/files"):
        return Style.TUS
    if path.startswith(("/api", "/upload")):
        return Style.JSON
    return Style.TEXT


def refusal(path: str | None, status: int, message: str) -> tuple[bytes, bytes]:
    """An answer the HTTP server makes on its own (a malformed head, a body cut short), as the routes of ``path``
    word their errors: JSON for the API, as its OpenAPI document says; tus and plain text as they were."""
    if path is None or style_for(path) is not Style.JSON:
        return plain_refusal(path, status, message)
    code = next((cls.code for cls, known in HTTP_STATUS.items() if known == status), f"ERR_HTTP_{status}")
    return b"application/json", json.dumps({"error": code, "detail": message}).encode()


def status_for(exc: e.PyfiledropError) -> int:
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def render(exc: BaseException, style: Style) -> Response:
    if isinstance(exc, e.PyfiledropError):
        status, code, message = status_for(exc), exc.code, exc.message
    else:
        log.exception("unexpected error", exc_info=exc)
        status, code, message = 500, "ERR_INTERNAL", "internal server error; the upload can be resumed"
    match style:
        case Style.JSON:
            response = json_response({"error": code, "detail": message}, status)
        case Style.TUS:
            response = text_response(f"{code}: {message}\n", status)
        case Style.TEXT:
            response = text_response(f"error: {message}\n", status)
    if isinstance(exc, e.TooLarge):
        response.header("x-max-upload-size", str(exc.limit))
    if isinstance(exc, e.RateLimited):
        response.header("retry-after", str(exc.retry_after))
    if isinstance(exc, e.OffsetMismatch) and style is Style.TUS:
        # Best practice (tusd does it): the client learns where to resume without another HEAD.
        response.header("upload-offset", str(exc.expected))
    if isinstance(exc, e.MethodNotAllowed):
        response.header("allow", ", ".join(exc.allowed))
    if isinstance(exc, e.RangeNotSatisfiable):
        response.header("content-range", f"bytes */{exc.size}")
    return response
