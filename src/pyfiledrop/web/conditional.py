"""Conditional requests (RFC 9110 §13) on a resource that exists and has a strong ETag: downloads and static files."""

from __future__ import annotations

import re

from pyfiledrop.errors import PreconditionFailed
from pyfiledrop.web.http import Request

# entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE, etagc = %x21 / %x23-7E / obs-text (§8.8.3)
_ENTITY_TAG = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*')
_MAX_TAGS = 64  # a list longer than this is not a cache's; it is compared no further


def not_modified(request: Request, etag: str) -> bool:
    """RFC 9110 §13.2.2, steps 1 and 3, for ``etag`` (strong, quoted): True when the answer is 304 Not Modified;
    PreconditionFailed (412) when If-Match does not match, or If-None-Match matches a request that is not GET/HEAD.
    Dates (If-Modified-Since, If-Unmodified-Since) are not looked at: these resources carry no Last-Modified."""
    if_match = request.header("if-match")
    if if_match is not None and not _matches(if_match, etag, weak=False):
        raise PreconditionFailed("If-Match does not name the current version of this resource")
    if_none_match = request.header("if-none-match")
    if if_none_match is None or not _matches(if_none_match, etag, weak=True):
        return False
    if request.method in ("GET", "HEAD"):
        return True
    raise PreconditionFailed("If-None-Match names the current version of this resource")


def _matches(field: str, etag: str, *, weak: bool) -> bool:
    """Whether the field (``*`` or a list of entity-tags) names ``etag``: strong comparison for If-Match, weak for
    If-None-Match (§8.8.3.2). A malformed member matches nothing."""
    if field.strip() == "*":
        return True  # the resource exists: that is all "*" asks
    for member in field.split(",")[:_MAX_TAGS]:
        parsed = _ENTITY_TAG.fullmatch(member)
        if parsed is None:
            continue
        is_weak, opaque = parsed.groups()
        if opaque == etag and (weak or not is_weak):
            return True
    return False
