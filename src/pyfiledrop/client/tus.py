"""The tus 1.0.0 calls the uploader makes (creation, defer-length, concatenation), plus pyfiledrop's
``/api/uploads/{id}`` for the sha256 and download link of a finished upload."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import SplitResult, urljoin, urlsplit

from pyfiledrop.client.http import UNLIMITED, Connection, HttpError, RateLimiter, Response, TransportError

TUS_VERSION = "1.0.0"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
TOKEN_HEADER = "X-Pyfiledrop-Token"  # noqa: S105 - a header name
DROP_HEADER = "X-Pyfiledrop-Drop"
PASSWORD_HEADER = "X-Pyfiledrop-Password"  # noqa: S105 - a header name
PARALLEL_WRITE_HEADER = "X-Pyfiledrop-Parallel-Write"


class UploadGone(HttpError):
    """404/410: the server no longer knows this upload (expired, deleted, or another server)."""


class OffsetConflict(HttpError):
    """409: our idea of the offset was wrong; ask the server again."""


class NotTusServer(HttpError):
    """The answer did not come from a tus server (no Tus-Resumable header): a wrong URL or port, not worth a retry."""

    def __init__(self, status: int, root: str) -> None:
        Exception.__init__(self, f"{root} does not look like a pyfiledrop or tus server (HTTP {status})")
        self.status = status
        self.url = root

    @property
    def retryable(self) -> bool:
        return False


class PasswordNeeded(HttpError):
    """401 for want of the server's (or the drop link's) password."""

    @property
    def retryable(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class Offset:
    offset: int
    length: int | None


class Session:
    """What every stream to one server shares: its base URL and the owner token (thread-safe)."""

    def __init__(self, url: str, token: str | None, timeout: float, password: str | None = None) -> None:
        self.base = normalize_url(url)
        self.token = token
        self.timeout = timeout
        self.headers: dict[str, str] = {}  # sent with every request
        drop = re.fullmatch(r"(.*)/d/([A-Za-z0-9_-]+)", self.base.path)
        if drop:  # a drop link's URL: upload through it, to the server it names
            self.base = self.base._replace(path=drop.group(1))
            self.headers[DROP_HEADER] = drop.group(2)
        if password:
            self.headers[PASSWORD_HEADER] = password
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.base.geturl()

    def learn_token(self, response: Response) -> None:
        token = response.header(TOKEN_HEADER.lower())
        if token:
            with self._lock:
                if self.token is None:
                    self.token = token

    def client(self) -> TusClient:
        return TusClient(self)


def normalize_url(url: str) -> SplitResult:
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// or https:// URL")
    path = parts.path.rstrip("/")
    for suffix in ("/files", "/upload"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
    return parts._replace(path=path, query="", fragment="")


def encode_metadata(metadata: Mapping[str, str]) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in metadata.items())


class TusClient:
    """One connection's worth of tus calls; make one per thread with ``Session.client()``."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.conn = Connection(session.base, session.timeout)

    def close(self) -> None:
        self.conn.close()

    # -- helpers ------------------------------------------------------------------------------------------------

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Tus-Resumable": TUS_VERSION, "User-Agent": "pyfiledrop-upload", **self.session.headers}
        if self.session.token and DROP_HEADER not in headers:
            headers[TOKEN_HEADER] = self.session.token
        headers.update(extra or {})
        return headers

    def _path(self, url: str) -> str:
        """A request target for an upload URL (absolute or path-only) on this server."""
        target = urlsplit(urljoin(self.session.base_url + "/", url))
        return target.path + (f"?{target.query}" if target.query else "")

    def _check(self, response: Response, *ok: int, tus: bool = True) -> Response:
        """``response`` if its status is one of ``ok``, else the error, naming the URL it came from."""
        self.session.learn_token(response)
        if response.status in ok:
            return response
        url = self.conn.url(self.conn._target)
        if _foreign(response, tus):
            raise NotTusServer(response.status, self.conn.url(self.session.base.path + "/"))
        message = _error_message(response)
        if response.status == 401 and "password" in message.lower():
            raise PasswordNeeded(response.status, self._password_hint(message), url)
        if response.status in (404, 410):
            raise UploadGone(response.status, message, url)
        if response.status == 409:
            raise OffsetConflict(response.status, message, url)
        raise HttpError(response.status, message, url)

    def _password_hint(self, message: str) -> str:
        if PASSWORD_HEADER in self.session.headers:
            return "the password given with --password (or PYFILEDROP_PASSWORD) is wrong"
        return "this server needs a password: give it with --password (or set PYFILEDROP_PASSWORD)"

    # -- tus ----------------------------------------------------------------------------------------------------

    def create(self, length: int | None, metadata: Mapping[str, str], *, concat: str | None = None,
               timeout: float | None = None) -> str:  # fmt: skip
        """POST /files/: the new upload's URL path."""
        extra = {"Upload-Metadata": encode_metadata(metadata)} if metadata else {}
        if concat is not None:
            extra["Upload-Concat"] = concat
        if length is None:
            if concat is None or concat == "partial":
                extra["Upload-Defer-Length"] = "1"
        else:
            extra["Upload-Length"] = str(length)
        path = self.session.base.path + "/files/"
        response = self._check(self.conn.request("POST", path, self._headers(extra), timeout=timeout), 201)
        location = response.header("location")
        if not location:
            raise HttpError(response.status, "the server answered 201 without a Location")
        return self._path(location)

    def head(self, url: str) -> Offset:
        response = self._check(self.conn.request("HEAD", self._path(url), self._headers()), 200, 204)
        offset = response.header("upload-offset")
        if offset is None or not offset.isdigit():
            raise HttpError(response.status, "the HEAD answer has no Upload-Offset")
        length = response.header("upload-length")
        return Offset(int(offset), int(length) if length and length.isdigit() else None)

    def patch_file(self, url: str, file: BinaryIO, file_offset: int, upload_offset: int, count: int,
                   on_sent: Callable[[int], None], limiter: RateLimiter = UNLIMITED, *,
                   anywhere: bool = False) -> int:  # fmt: skip
        """Send ``count`` bytes of ``file`` from ``file_offset`` to the upload at ``upload_offset``.

        ``anywhere``: pyfiledrop's parallel-write extension (the offset may be any byte not yet received; the
        answer is where the received run from it ends).
        """
        extra = {"Upload-Offset": str(upload_offset), "Content-Type": OFFSET_CONTENT_TYPE}
        if anywhere:
            extra[PARALLEL_WRITE_HEADER] = "1"
        headers = self._headers(extra)
        response = self.conn.send_file("PATCH", self._path(url), headers, file, file_offset, count, on_sent, limiter)
        return _new_offset(self._check(response, 204, 200))

    def patch_bytes(self, url: str, data: bytes | memoryview, upload_offset: int, *,
                    upload_length: int | None = None) -> int:  # fmt: skip
        extra = {"Upload-Offset": str(upload_offset), "Content-Type": OFFSET_CONTENT_TYPE}
        if upload_length is not None:
            extra["Upload-Length"] = str(upload_length)
        response = self.conn.request("PATCH", self._path(url), self._headers(extra), data)
        return _new_offset(self._check(response, 204, 200))

    def delete(self, url: str) -> None:
        self._check(self.conn.request("DELETE", self._path(url), self._headers()), 204, 404, 410)

    # -- pyfiledrop ---------------------------------------------------------------------------------------------

    def supports_parallel_write(self) -> bool:
        """Whether the server is a pyfiledrop that takes parallel PATCHes into one upload (GET /api/config)."""
        headers = {"User-Agent": "pyfiledrop-upload", "Accept": "application/json", **self.session.headers}
        try:
            response = self.conn.request("GET", f"{self.session.base.path}/api/config", headers)
            return response.status == 200 and json.loads(response.body).get("parallel_write") is True
        except (HttpError, TransportError, ValueError, AttributeError):
            return False

    def info(self, url: str) -> dict[str, Any]:
        """The upload's JSON record (sha256, download_url, …) from /api/uploads/{id}."""
        upload_id = self._path(url).split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        path = f"{self.session.base.path}/api/uploads/{upload_id}"
        headers = self._headers({"Accept": "application/json"})
        del headers["Tus-Resumable"]
        response = self._check(self.conn.request("GET", path, headers), 200, tus=False)
        data: dict[str, Any] = json.loads(response.body)
        return data


def _new_offset(response: Response) -> int:
    offset = response.header("upload-offset")
    if offset is None or not offset.isdigit():
        raise HttpError(response.status, "the PATCH answer has no Upload-Offset")
    return int(offset)


_TRANSIENT_GATEWAY = frozenset({502, 503, 504})  # a proxy in front of a server that is restarting: retry


def _foreign(response: Response, tus: bool) -> bool:
    """Whether an error answer came from something other than pyfiledrop or a tus server: tus servers put
    Tus-Resumable on every answer but OPTIONS's, pyfiledrop's API answers in JSON."""
    if response.status in _TRANSIENT_GATEWAY or response.status == 429:
        return False
    if tus:
        return "tus-resumable" not in response.headers
    return "json" not in (response.header("content-type") or "")


def _error_message(response: Response) -> str:
    text = response.text()
    if "html" in (response.header("content-type") or "") or text[:15].lower().startswith(("<!doctype", "<html")):
        title = re.search(r"<title>([^<]{1,120})</title>", text, re.IGNORECASE)
        return title.group(1).strip() if title else "an HTML page"  # never the whole page
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            return text[:300]
        if isinstance(data, dict):
            return str(data.get("detail") or data.get("error") or data.get("message") or text)[:300]
    return text[:300]
