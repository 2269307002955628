"""The server's two logs: events (``logging``, ``--log-level``) and the access log (a line per request), both as
text lines or JSON objects (``--log-format``), neither with a secret in it (docs/logging.md).

Secrets stay out two ways: what is logged is chosen (ids, labels, never tokens or passwords), and every line
passes :func:`scrub` as well, which removes drop-link and share tokens from paths (``/d/<token>``,
``/s/<token>``), the values of query parameters, and the admin token and plain password the server was given.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import time
from pathlib import Path
from typing import IO, Any

REDACTED = "[redacted]"
# Query parameters whose values say nothing secret and help reading the log; every other value is redacted.
_PLAIN_QUERY = frozenset({"limit", "offset", "page", "per_page", "sort", "order", "state", "q", "download"})
_TOKEN_PATH = re.compile(r"^(/+(?:d|s)/+)[^/?]+")
_TOKEN_IN_TEXT = re.compile(r"(/(?:d|s)/)[A-Za-z0-9_~.-]{6,}|([?&](?:token|admin|password|key|t)=)[^&\s\"']+")
_secrets: list[str] = []  # the admin token and a plain --password: removed wherever they appear


def add_secret(value: str | None) -> None:
    """Never log ``value`` (at least 8 characters: shorter ones would blank ordinary words)."""
    if value and len(value) >= 8 and value not in _secrets:
        _secrets.append(value)


def scrub(text: str) -> str:
    """``text`` without tokens in paths, secret query values or a known secret."""
    if "/d/" in text or "/s/" in text or "=" in text:
        text = _TOKEN_IN_TEXT.sub(lambda m: (m.group(1) or m.group(2)) + REDACTED, text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def safe_path(path: str, query: str) -> str:
    """A request target for the access log: drop-link and share tokens out of the path, query values out
    but for a few plain ones (paging, sorting)."""
    if path.startswith(("/d/", "/s/", "//")):
        path = _TOKEN_PATH.sub(r"\1" + REDACTED, path)
    if not query:
        return path
    kept = []
    for pair in query.split("&"):
        name, equals, _ = pair.partition("=")
        kept.append(pair if name in _PLAIN_QUERY or not equals else f"{name}={REDACTED}")
    return f"{path}?{'&'.join(kept)}"


class _Clock:
    """Formats the time once per second, not once per line (localtime + strftime: a line per upload)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._second: tuple[int, str] = (-1, "")  # one attribute: threads that log see a pair that belongs together

    def text(self, created: float) -> str:
        second, text = self._second
        if int(created) != second:
            second, text = int(created), time.strftime(self.pattern, time.localtime(created))
            self._second = (second, text)
        return f"{text}.{int((created - second) * 1000):03d}"


class TextFormatter(logging.Formatter):
    """``2026-12-08 01:50:00.123 INFO pyfiledrop.events: upload completed id=… name="a b.txt" size=…``."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = _Clock("%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        line = f"{self.clock.text(record.created)} {record.levelname} {record.name}: {_one_line(record.getMessage())}"
        fields = getattr(record, "fields", None)
        if fields:
            line += " " + " ".join(f"{key}={_text_value(value)}" for key, value in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return scrub(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, event and its fields."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = _Clock("%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": self.clock.text(record.created) + _utc_offset(), "level": record.levelname.lower(),
            "logger": record.name, "message": record.getMessage(),
        }  # fmt: skip
        event = getattr(record, "event", None)
        if event:
            data["event"] = event
        data.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return scrub(json.dumps(data, ensure_ascii=False, default=str))


def _one_line(message: str) -> str:
    """Control characters a client put in a logged value (a path, a name) are escaped: no request forges a line."""
    return message if message.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def _text_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".")
    text = str(value)
    if not text or any(c in text for c in ' "=\\') or not text.isprintable():
        return json.dumps(text, ensure_ascii=False)  # quoted, with newlines and quotes escaped: one line stays one
    return text


def _utc_offset() -> str:
    offset = -time.altzone if time.daylight and time.localtime().tm_isdst else -time.timezone
    sign = "+" if offset >= 0 else "-"
    return f"{sign}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"


def set_up(level: str, log_format: str) -> None:
    """Events go to standard error from the thread that logs (the event loop, mostly): a write per finished
    upload is cheaper there than waking a logging thread for it (measured: +4 % files/s)."""
    # What a record would gather and the formats never show, skipped as the logging HOWTO's "Optimization" says:
    # the caller's file and line (a stack walk), the process id (a system call), thread and process names.
    logging._srcfile = None
    logging.logProcesses = logging.logMultiprocessing = logging.logThreads = False
    output = logging.StreamHandler()
    output.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[output], force=True)


class AccessLog:
    """One line per request, written straight to its stream (no LogRecord: this is on every request's path)."""

    def __init__(self, stream: IO[str], log_format: str) -> None:
        self.stream = stream
        self.json = log_format == "json"
        self.clock = _Clock("%Y-%m-%dT%H:%M:%S" if self.json else "%Y-%m-%d %H:%M:%S")
        self.offset = _utc_offset()

    @classmethod
    def open(cls, target: str, log_format: str) -> AccessLog | None:
        """``-``: standard error; ``off``: none; else a file, appended to (OSError when it cannot be)."""
        match target:
            case "off":
                return None
            case "-":
                return cls(sys.stderr, log_format)
        return cls(Path(target).open("a", buffering=1, encoding="utf-8"), log_format)  # kept open: closed by close()

    def write(self, client: str, method: str, path: str, status: int, sent: int, received: int | None,
              seconds: float) -> None:  # fmt: skip
        now = time.time()
        if self.json:
            line = json.dumps({"time": self.clock.text(now) + self.offset, "log": "access", "client": client,
                               "method": method, "path": path, "status": status, "bytes": sent,
                               "request_bytes": received, "duration_ms": round(seconds * 1000, 1)})  # fmt: skip
        else:
            length = "-" if received is None else received
            line = f'{self.clock.text(now)} {client} "{method} {path}" {status} {sent} {length} {seconds * 1000:.1f}ms'
        with contextlib.suppress(OSError, ValueError):  # a full disk or a closed stream must not fail the request
            self.stream.write(scrub(line) + "\n")

    def close(self) -> None:
        if self.stream is not sys.stderr:
            self.stream.close()
