"""What every request passes before a handler: CSRF check for cookie-authenticated browser requests, and
rate limits on creating uploads. Both answer with domain errors, mapped to HTTP in web/errors.py."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlsplit

from pyfiledrop.errors import Forbidden, RateLimited
from pyfiledrop.web.auth import COOKIE, HEADER
from pyfiledrop.web.http import Request

_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MAX_TRACKED_CLIENTS = 10_000  # bounded memory under a flood of addresses


def check_csrf(request: Request, public_url: str | None) -> None:
    """A cross-site page must not act with this browser's owner cookie.

    Requests that carry their token in a header are not at risk (a browser never adds those by itself), nor
    are requests without the cookie. For the rest, the Origin (or Referer) must be this server.
    """
    override = (request.header("x-http-method-override") or "").upper()  # the method the router will act on
    if (request.method not in _STATE_CHANGING and override not in _STATE_CHANGING) or COOKIE not in request.cookies:
        return
    if request.header(HEADER) or (request.header("authorization") or "").lower().startswith("bearer "):
        return
    if request.header("sec-fetch-site") == "cross-site":
        raise Forbidden("cross-site request refused: this server does not act on another site's behalf")
    source = request.header("origin") or request.header("referer")
    if source is None:
        return  # not a browser page (curl, scripts): SameSite=Strict already keeps the cookie from other sites
    if source.strip() == "null":
        # An opaque origin (a sandboxed iframe, a data: URL, some cross-site redirects): a page, and not ours.
        raise Forbidden("cross-origin request from an opaque origin (Origin: null) refused")
    expected = urlsplit(public_url).netloc if public_url else request.header("host")
    netloc = _netloc(source)
    if netloc is None or netloc != expected:
        raise Forbidden(f"cross-origin request from {(netloc or source)[:200]!r} refused")


def _netloc(url: str) -> str | None:
    try:
        return urlsplit(url).netloc
    except ValueError:  # "http://[::1" and the like: not an origin we could be
        return None


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token bucket per client address: ``per_minute`` tokens a minute, bursts up to the same amount."""

    def __init__(self, per_minute: int, what: str) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.what = what
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, client: str, now: float | None = None) -> None:
        """Spend one token; RateLimited (with the seconds until the next one) if there is none."""
        self.check(client, now)
        self._buckets[client].tokens -= 1

    def check(self, client: str, now: float | None = None) -> None:
        """RateLimited if ``client`` has no token left, without spending one."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.pop(client, None) or _Bucket(self.capacity, now)
        bucket.tokens = min(self.capacity, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        self._buckets[client] = bucket
        while len(self._buckets) > _MAX_TRACKED_CLIENTS:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1:
            retry_after = math.ceil((1 - bucket.tokens) / self.rate)
            raise RateLimited(self.what, retry_after)


def client_address(request: Request, behind_proxy: bool) -> str:
    """The socket peer, or with --behind-proxy the address the proxy appended to X-Forwarded-For."""
    if behind_proxy:
        forwarded = request.header("x-forwarded-for")
        if forwarded:
            return forwarded.split(",")[-1].strip()
    client = request.scope.get("client")
    return str(client[0]) if client else "unknown"
