"""The paths the server knows and the methods each answers: what a request no handler took is told (RFC 9110).

A known path asked with another method answers 405 with ``Allow`` (and OPTIONS answers 204 with it); an unknown
path answers 404. ``PUT`` anywhere outside the reserved prefixes is a ``curl -T`` upload named after the path;
under them it is never one (``PUT /api/config`` must not store a file called "config").
"""

from __future__ import annotations

from collections.abc import Sequence

from pyfiledrop.errors import MethodNotAllowed
from pyfiledrop.web.http import Response, no_content, text_response

RESERVED = frozenset({"api", "static", "files", "upload", "download", "s"})  # first path segments
_READ = ("GET", "HEAD")
_ANY = "*"  # one segment, whatever it holds
_REST = "**"  # at the end: one segment or more

# Checked in order; the first pattern that fits the path gives its methods.
_ROUTES: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    ((), (*_READ, "PUT")),
    (("files",), ("OPTIONS", "POST")),
    (("files", _ANY), ("OPTIONS", *_READ, "PATCH", "DELETE")),
    (("download", _ANY), _READ),
    (("s", _ANY), (*_READ, "POST")),  # POST: a share link's password form
    (("s", _ANY, _ANY), _READ),  # one file of a shared selection, or its zip
    (("static", _ANY), _READ),
    (("favicon.ico",), _READ),
    (("d", _ANY), (*_READ, "PUT")),
    (("d", _ANY, _REST), ("PUT",)),
    (("upload",), ("POST",)),
    (("api", "config"), _READ),
    (("api", "session"), (*_READ, "POST")),
    (("api", "forget"), ("POST",)),
    (("api", "login"), ("POST",)),
    (("api", "drops"), (*_READ, "POST")),
    (("api", "drops", "current"), (*_READ, "POST")),
    (("api", "drops", _ANY), ("DELETE",)),
    (("api", "uploads"), _READ),
    (("api", "uploads", "delete"), ("POST",)),  # the admin view's bulk delete
    (("api", "uploads", _ANY), (*_READ, "PATCH", "DELETE")),
    (("api", "uploads", _ANY, "shares"), (*_READ, "POST")),
    (("api", "uploads", _ANY, "video"), (*_READ, "POST")),
    (("api", "jobs", _ANY), (*_READ, "DELETE")),
    (("api", "shares"), (*_READ, "POST")),
    (("api", "shares", _ANY), ("DELETE",)),
    (("api", "admin", "verify"), ("POST",)),
    (("api", "admin", "stats"), _READ),
    (("api", "openapi.json"), _READ),
)


def is_reserved(parts: Sequence[str]) -> bool:
    """Whether a PUT to this path is not an upload (the API, the page's files, the other protocols' URLs)."""
    return bool(parts) and parts[0] in RESERVED


def allowed_methods(parts: Sequence[str]) -> tuple[str, ...] | None:
    """The methods a known path answers; None for a path the server does not know."""
    for pattern, methods in _ROUTES:
        if _fits(pattern, parts):
            return methods
    return None


def unrouted(method: str, parts: Sequence[str]) -> Response:
    """The answer to a request no handler took: 204 + Allow to OPTIONS, MethodNotAllowed (405) on a known path
    asked with another method, else 404."""
    allowed = allowed_methods(parts)
    if allowed is None:
        return text_response("not found\n", 404)
    if method == "OPTIONS":
        return no_content(204, [("allow", ", ".join(dict.fromkeys(("OPTIONS", *allowed))))])
    raise MethodNotAllowed(method, allowed)


def _fits(pattern: Sequence[str], parts: Sequence[str]) -> bool:
    if pattern and pattern[-1] == _REST:
        return len(parts) >= len(pattern) and _fits(pattern[:-1], parts[: len(pattern) - 1])
    return len(pattern) == len(parts) and all(p in (_ANY, part) for p, part in zip(pattern, parts, strict=True))
