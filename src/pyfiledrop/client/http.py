"""A minimal HTTP/1.1 client on ``http.client``: keep-alive, large buffers, and file bodies sent with
``socket.sendfile`` (zero-copy on Linux: the bytes go from the page cache to the socket without
passing through Python)."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import SplitResult

_SLICE = 8 << 20  # bytes per sendfile call: progress and rate limiting happen between slices
_SNDBUF = 4 << 20

# Statuses worth a retry: the request may succeed later as it is.
RETRYABLE_STATUSES = frozenset({408, 423, 425, 429, 500, 502, 503, 504})


class TransportError(Exception):
    """The connection failed (refused, reset, timed out): retry — unless ``transient`` is False (a host name that
    does not resolve stays so: retrying it for minutes only hides the typo)."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


class HttpError(Exception):
    def __init__(self, status: int, message: str, url: str = "") -> None:
        text = f"HTTP {status}: {message}" if message else f"HTTP {status}"
        super().__init__(f"{url}: {text}" if url else text)
        self.status = status
        self.url = url

    @property
    def retryable(self) -> bool:
        return self.status in RETRYABLE_STATUSES


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def text(self) -> str:
        return self.body.decode("utf-8", "replace").strip()


class RateLimiter:
    """At most ``rate`` bytes per second across every thread that shares it (0: unlimited)."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._start = time.monotonic()
        self._sent = 0
        self._lock = threading.Lock()

    def slice_size(self) -> int:
        return _SLICE if self.rate <= 0 else max(min(_SLICE, self.rate // 8), 16 * 1024)

    def wait(self, sent: int) -> None:
        if self.rate <= 0:
            return
        with self._lock:
            self._sent += sent
            due = self._start + self._sent / self.rate  # when the bytes sent so far are allowed out
        ahead = due - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


UNLIMITED = RateLimiter(0)


class Connection:
    """One keep-alive connection to one server; not thread-safe (one per upload stream)."""

    def __init__(self, base: SplitResult, timeout: float) -> None:
        self.base = base
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._target = ""  # the path of the request under way, for messages

    def url(self, path: str = "/") -> str:
        """The absolute URL of ``path`` on this server: every error names the URL it tried."""
        return f"{self.base.scheme}://{self.base.netloc}{path}"

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            host = self.base.hostname or "localhost"
            cls = http.client.HTTPSConnection if self.base.scheme == "https" else http.client.HTTPConnection
            conn = cls(host, self.base.port, timeout=self.timeout, blocksize=1 << 20)
            conn.connect()
            if conn.sock is not None:
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SNDBUF)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes | memoryview = b"",
        *, timeout: float | None = None,
    ) -> Response:  # fmt: skip
        self._target = path

        def send(conn: http.client.HTTPConnection) -> None:
            self._start(conn, method, path, headers, len(body))
            if body:
                conn.send(body)

        return self._exchange(send, timeout)

    def send_file(
        self, method: str, path: str, headers: Mapping[str, str], file: BinaryIO, offset: int, count: int,
        on_sent: Callable[[int], None], limiter: RateLimiter = UNLIMITED,
    ) -> Response:  # fmt: skip
        """The body is ``count`` bytes of ``file`` from ``offset``, sent with sendfile."""
        self._target = path

        def send(conn: http.client.HTTPConnection) -> None:
            self._start(conn, method, path, headers, count)
            sock = conn.sock
            assert sock is not None
            position, end = offset, offset + count
            while position < end:
                want = min(limiter.slice_size(), end - position)
                sent = sock.sendfile(file, position, want)
                if sent == 0:
                    raise TransportError(f"{getattr(file, 'name', 'the file')} ended early (was it truncated?)")
                position += sent
                on_sent(sent)
                limiter.wait(sent)

        return self._exchange(send, None)

    @staticmethod
    def _start(conn: http.client.HTTPConnection, method: str, path: str, headers: Mapping[str, str],
               length: int) -> None:  # fmt: skip
        conn.putrequest(method, path, skip_accept_encoding=True)  # the URL in messages: see _exchange_once
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(length))
        conn.endheaders()

    def _exchange(self, send: Callable[[http.client.HTTPConnection], None], timeout: float | None) -> Response:
        reused = self._conn is not None
        try:
            return self._exchange_once(send, timeout)
        except TransportError as exc:
            # A kept-alive connection the server has since closed fails before anything was processed:
            # try once more on a new connection instead of waiting for a retry with backoff.
            if reused and isinstance(exc.__cause__, _STALE):
                return self._exchange_once(send, timeout)
            raise

    def _exchange_once(self, send: Callable[[http.client.HTTPConnection], None], timeout: float | None) -> Response:
        try:
            conn = self._connection()
            if conn.sock is not None:
                conn.sock.settimeout(timeout or self.timeout)
            try:
                send(conn)
            except (BrokenPipeError, ConnectionResetError) as exc:
                # The server may have answered (and closed) before reading the whole body: read its answer.
                try:
                    answer = conn.getresponse()
                    response = Response(answer.status, _headers(answer), answer.read())
                except (OSError, http.client.HTTPException):
                    raise exc from None
                self.close()
                return response
            answer = conn.getresponse()
            response = Response(answer.status, _headers(answer), answer.read())
            if answer.will_close:
                self.close()
            return response
        except (socket.gaierror, UnicodeError) as exc:  # UnicodeError: a label too long or empty, refused by idna
            self.close()
            raise TransportError(
                f"{self.url(self._target)}: cannot resolve host {self.base.hostname!r} ({_describe(exc)})",
                transient=False,
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise TransportError(f"{self.url(self._target)}: {_describe(exc)}") from exc
        finally:
            if self._conn is not None and self._conn.sock is not None:
                self._conn.sock.settimeout(self.timeout)


_STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


def _headers(answer: http.client.HTTPResponse) -> dict[str, str]:
    return {name.lower(): value for name, value in answer.getheaders()}


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def file_identity(path: str) -> tuple[str, int, int]:
    """(absolute path, size, mtime in ns): what the resume state is keyed by."""
    absolute = Path(path).absolute()
    st = absolute.stat()
    return str(absolute), st.st_size, st.st_mtime_ns
