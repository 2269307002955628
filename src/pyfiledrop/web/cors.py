"""Cross-origin use (``--cors-origins``), the same for tus (``/files/``), Dropzone (``POST /upload``), ``curl -T``
style PUTs and the API (``/api/``): which web pages elsewhere may call this server from a browser.

``*`` (the default, as tusd): any origin, so an Uppy or tus-js-client page hosted elsewhere works. No credential
rides along: no ``Access-Control-Allow-Credentials`` is ever sent and the owner cookie is ``SameSite=Strict``, so
a page elsewhere acts only with a token it was given (the X-Pyfiledrop-Token or drop-link header). A list of
origins restricts it: others get no CORS headers (their page cannot read an answer) and their state-changing
requests are refused with 403 (a simple form POST needs no preflight, so hiding the answer is not enough).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pyfiledrop.errors import Forbidden
from pyfiledrop.web.http import Headers, Request, Response, no_content

ALLOW_HEADERS = (
    "Authorization, Origin, X-Requested-With, X-Request-ID, X-HTTP-Method-Override, Content-Type, Cache-Control, "
    "Accept, Upload-Length, Upload-Offset, Tus-Resumable, Upload-Metadata, Upload-Defer-Length, Upload-Concat, "
    "Upload-Checksum, X-Pyfiledrop-Token, X-Pyfiledrop-Drop, X-Pyfiledrop-Password, X-Pyfiledrop-Parallel-Write, "
    "X-Filename"
)
EXPOSE_HEADERS = (
    "Upload-Offset, Location, Upload-Length, Tus-Version, Tus-Resumable, Tus-Max-Size, Tus-Extension, "
    "Tus-Checksum-Algorithm, Upload-Metadata, Upload-Defer-Length, Upload-Concat, Upload-Expires, "
    "X-Pyfiledrop-Token, X-Upload-Id, X-Download-Url, X-Sha256, Retry-After"
)
ALLOW_METHODS = "POST, GET, HEAD, PATCH, PUT, DELETE, OPTIONS"
_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PREFIXES = ("/files", "/upload", "/api")


# scheme://host[:port] as browsers send it: a name, an IPv4 address or a bracketed IPv6 one.
_ORIGIN = re.compile(r"https?://(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


class Cors:
    def __init__(self, origins: str, public_url: str | None) -> None:
        self.anyone = origins.strip() == "*"
        self.origins = frozenset(o.strip().rstrip("/").lower() for o in origins.split(",") if o.strip())
        self.public_host = urlsplit(public_url).netloc.lower() if public_url else None

    @staticmethod
    def applies(request: Request) -> bool:
        """tus, Dropzone, PUT uploads and the API: what a page elsewhere may call (not the page or downloads)."""
        if request.method == "OPTIONS":
            return request.path.startswith(_PREFIXES) or request.header("access-control-request-method") == "PUT"
        return request.path.startswith(_PREFIXES) or request.method == "PUT"

    def allows(self, origin: str) -> bool:
        return self.anyone or origin.rstrip("/").lower() in self.origins

    def headers(self, request: Request) -> Headers:
        """For an answer to a page on another origin that may read it; none for the rest."""
        origin = request.header("origin")
        if origin is None or not _ORIGIN.fullmatch(origin) or not self.allows(origin):
            return []  # only an origin is echoed ("null" or junk never is)
        return [("access-control-allow-origin", origin), ("vary", "Origin"),
                ("access-control-expose-headers", EXPOSE_HEADERS)]  # fmt: skip

    def preflight(self, request: Request) -> Response:
        """OPTIONS before a cross-origin request with custom headers (Dropzone's X-Requested-With, the API's
        token header), as /files/ answers it."""
        headers: Headers = []
        if request.header("access-control-request-method"):
            headers = [("access-control-allow-methods", ALLOW_METHODS), ("access-control-allow-headers",
                       ALLOW_HEADERS), ("access-control-max-age", "86400")]  # fmt: skip
        return no_content(204, headers)

    def check(self, request: Request) -> None:
        """Forbidden for a state-changing request from a page on an origin that is not allowed."""
        if self.anyone or request.method not in _STATE_CHANGING:
            return
        origin = request.header("origin")
        if origin is None or self.allows(origin):
            return
        own = self.public_host or (request.header("host") or "").lower()
        if urlsplit(origin).netloc.lower() != own:
            raise Forbidden(f"requests from pages on {origin} are not allowed here (--cors-origins)")
