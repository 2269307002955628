"""Upload a file (one tus stream, or N partial uploads joined by tus concatenation) or stdin (deferred
length), resuming from the state file and retrying with backoff."""

from __future__ import annotations

import hashlib
import itertools
import mimetypes
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urljoin

from pyfiledrop.client.http import HttpError, RateLimiter, TransportError, file_identity
from pyfiledrop.client.progress import Progress
from pyfiledrop.client.state import StateStore, entry_key
from pyfiledrop.client.tus import OffsetConflict, Session, TusClient, UploadGone
from pyfiledrop.units import format_size

T = TypeVar("T")

STORED_FOR_OWNER = "received — stored for the owner of this drop"

MIN_PART = 1 << 20  # a parallel stream gets at least this many bytes
STDIN_CHUNK = 16 << 20  # bytes per PATCH from stdin (held in memory until acknowledged)
_BACKOFF_CAP = 30.0
_COMPLETE_WAIT = 120.0  # seconds to wait for the server to finish an upload whose last answer was lost


class UploadFailed(Exception):
    """An upload could not be finished; the message says why."""


class Cancelled(Exception):
    pass


@dataclass
class Options:
    url: str
    jobs: int = 1
    retries: int = 6
    backoff: float = 0.5
    timeout: float = 60.0
    progress: bool = False
    verify: bool = False
    limit_rate: int = 0
    name: str | None = None
    token: str | None = None
    state: StateStore = field(default_factory=StateStore)
    quiet: bool = False


@dataclass
class Result:
    name: str
    size: int
    upload_url: str
    download_url: str
    sha256: str
    sent_bytes: int
    resumed_from: int
    seconds: float
    streams: int
    local_sha256: str | None = None

    @property
    def upload_id(self) -> str:
        return self.upload_url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]

    def line(self) -> str:
        # Through a drop link (without -a) nobody but the drop's owner may download: say so, print no dead link.
        return f"{self.download_url or STORED_FOR_OWNER}  {self.sha256}  {self.name}"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "size": self.size, "download_url": self.download_url or None, "sha256": self.sha256,
            "upload_url": self.upload_url, "sent_bytes": self.sent_bytes, "resumed_from": self.resumed_from,
            "seconds": round(self.seconds, 3), "streams": self.streams, "verified": self.local_sha256 is not None,
        }  # fmt: skip

    def summary(self) -> str:
        rate = self.sent_bytes / max(self.seconds, 1e-6)
        text = f"{self.name}: {_size(self.size)} in {self.seconds:.2f} s ({_size(round(rate))}/s sent"
        if self.streams > 1:
            text += f", {self.streams} streams"
        if self.resumed_from:
            text += f", resumed at {_size(self.resumed_from)}"
        return text + (", sha256 verified locally)" if self.local_sha256 else ")")


@dataclass
class _Part:
    url: str
    start: int  # position in the local file (and, for a region, in the upload)
    length: int
    offset: int = 0  # bytes the server has confirmed
    region: bool = False  # a region of one upload written in parallel (pyfiledrop's extension), not a tus part


class _Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent = 0

    def add(self, count: int) -> None:
        with self._lock:
            self.sent += count


class Retrier:
    """Call again on transient failures, with exponential backoff and jitter; ``reset`` after progress."""

    def __init__(self, options: Options, note: Callable[[str], None], cancel: threading.Event | None = None,
                 label: str = "") -> None:  # fmt: skip
        self.options = options
        self.note = note
        self.label = label
        self.cancel = cancel or threading.Event()
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def failed(self, what: str, exc: Exception) -> None:
        """Sleep before the next try, or raise UploadFailed when the tries are used up."""
        if not retryable(exc):
            raise UploadFailed(f"{what}: {exc}") from exc
        self.failures += 1
        if self.failures > self.options.retries:
            raise UploadFailed(f"{what}: {exc} (gave up after {self.options.retries} retries)") from exc
        delay = min(self.options.backoff * 2 ** (self.failures - 1), _BACKOFF_CAP)
        delay *= 0.75 + random.random() / 2  # noqa: S311 - jitter, not cryptography
        if not isinstance(exc, OffsetConflict):
            prefix = f"{self.label}: " if self.label else ""
            self.note(f"{prefix}{what}: {exc}; retry {self.failures}/{self.options.retries} in {delay:.1f} s")
        if self.cancel.wait(delay):
            raise Cancelled()

    def call(self, what: str, fn: Callable[[], T]) -> T:
        while True:
            try:
                return fn()
            except (TransportError, HttpError) as exc:
                self.failed(what, exc)


def retryable(exc: Exception) -> bool:
    if isinstance(exc, TransportError):
        return exc.transient
    if isinstance(exc, OffsetConflict):
        return True
    return isinstance(exc, HttpError) and not isinstance(exc, UploadGone) and exc.retryable


# -- files ------------------------------------------------------------------------------------------------------


def upload_file(path: str, options: Options, session: Session, cancel: threading.Event,
                name: str | None = None) -> Result:  # fmt: skip
    """``name``: what the server stores it as (default: the file's own name; ``dir/sub/b.txt`` for ``-r``)."""
    try:
        abspath, size, mtime_ns = file_identity(path)
    except OSError as exc:
        raise UploadFailed(str(exc.strerror)) from exc
    if not Path(abspath).is_file():
        raise UploadFailed("not a regular file")
    name = name or Path(abspath).name
    key = entry_key(session.base_url, abspath, size, mtime_ns)
    started = time.monotonic()
    client = session.client()
    progress = Progress(name, size, enabled=options.progress)
    retrier = Retrier(options, progress.note, cancel, name)
    local_hash = _LocalHash(abspath) if options.verify else None
    try:
        entry = options.state.get(key)
        resumed = _resume(entry, client, retrier, progress) if entry else None
        if resumed is None and entry is not None:
            options.state.remove(key)
        if isinstance(resumed, str):  # the final upload exists: nothing left to send
            final_url, parts, resumed_from = resumed, [], size
        else:
            parts = resumed if resumed is not None else _create(client, retrier, name, size, options, key)
            resumed_from = sum(p.offset for p in parts)
            if resumed_from:
                progress.update(resumed_from)
                progress.note(f"{name}: resuming at {_size(resumed_from)} of {_size(size)}")
            final_url = ""
        stats = _Stats()
        _send_parts(abspath, parts, session, options, progress, stats, cancel)
        if parts and parts[0].region:
            final_url = parts[0].url  # one upload all along: nothing to join
        elif len(parts) > 1:
            final_url = _concatenate(client, retrier, parts, name, size, options, key)
        elif parts:
            final_url = parts[0].url
        info = _wait_complete(client, retrier, final_url, size)
        local = local_hash.result() if local_hash is not None else None
        if local is not None and local != info["sha256"]:
            raise UploadFailed(f"the server's sha256 {info['sha256']} is not the file's {local}")
        options.state.remove(key)
        return Result(name, size, _absolute(session, final_url), _absolute(session, info.get("download_url") or ""),
                      str(info["sha256"]), stats.sent,
                      resumed_from, time.monotonic() - started, max(len(parts), 1), local)  # fmt: skip
    finally:
        progress.close()
        client.close()
        if local_hash is not None:
            local_hash.stop()


def _metadata(name: str) -> dict[str, str]:
    return {"filename": name, "filetype": mimetypes.guess_type(name)[0] or "application/octet-stream"}


def _create(client: TusClient, retrier: Retrier, name: str, size: int, options: Options, key: str) -> list[_Part]:
    streams = max(1, min(options.jobs, size // MIN_PART))
    metadata = _metadata(name)
    if streams == 1:
        url = retrier.call("create", lambda: client.create(size, metadata))
        parts = [_Part(url, 0, size)]
    elif client.supports_parallel_write():  # one upload, its regions written at once: no concatenation pass
        url = retrier.call("create", lambda: client.create(size, metadata))
        bounds = [size * i // streams for i in range(streams + 1)]
        parts = [_Part(url, start, end - start, region=True) for start, end in itertools.pairwise(bounds)]
    else:
        bounds = [size * i // streams for i in range(streams + 1)]
        parts = []
        for start, end in itertools.pairwise(bounds):
            url = retrier.call("create", partial(client.create, end - start, metadata, concat="partial"))
            parts.append(_Part(url, start, end - start))
    _remember_token(options, client)
    options.state.put(key, {"parts": [[p.url, p.start, p.length] for p in parts], "token": client.session.token,
                            "regions": parts[0].region})  # fmt: skip
    return parts


def _region_offset(info: dict[str, Any], part: _Part) -> int:
    """How far the server's received bytes run from the region's start, within the region."""
    for start, end in info.get("received", []):
        if int(start) <= part.start <= int(end):
            return min(int(end), part.start + part.length) - part.start
    return 0


def _remember_token(options: Options, client: TusClient) -> None:
    token = client.session.token
    if token and options.state.token(client.session.base_url) != token:
        options.state.set_token(client.session.base_url, token)


def _resume(entry: dict[str, Any], client: TusClient, retrier: Retrier, progress: Progress) -> list[_Part] | str | None:
    """The parts with the offsets the server has, the final URL if it exists, or None to start over."""
    if entry.get("token") and not client.session.token:
        client.session.token = str(entry["token"])
    final = entry.get("final")
    if final:
        try:
            retrier.call("resume", lambda: client.head(final))
            return str(final)
        except UploadFailed as exc:
            if not isinstance(exc.__cause__, UploadGone):
                raise
    regions = bool(entry.get("regions"))
    parts = [_Part(str(url), int(start), int(length), region=regions) for url, start, length in entry.get("parts", [])]
    if not parts:
        return None
    if regions:
        return _resume_regions(parts, client, retrier, progress)
    for part in parts:
        try:
            got = retrier.call("resume", partial(client.head, part.url))
        except UploadFailed as exc:
            if isinstance(exc.__cause__, UploadGone):
                progress.note("the server no longer has the unfinished upload; starting over")
                return None
            raise
        if got.length is not None and got.length != part.length:
            return None
        part.offset = got.offset
    return parts


def _resume_regions(
    parts: list[_Part], client: TusClient, retrier: Retrier, progress: Progress
) -> list[_Part] | str | None:
    """Regions of one upload: how far each got, from the server's received ranges."""
    try:
        info = retrier.call("resume", partial(client.info, parts[0].url))
    except UploadFailed as exc:
        if isinstance(exc.__cause__, UploadGone):
            progress.note("the server no longer has the unfinished upload; starting over")
            return None
        raise
    if info.get("complete"):
        return parts[0].url
    for part in parts:
        part.offset = _region_offset(info, part)
    return parts


def _send_parts(path: str, parts: list[_Part], session: Session, options: Options, progress: Progress,
                stats: _Stats, cancel: threading.Event) -> None:  # fmt: skip
    todo = [p for p in parts if p.offset < p.length]
    if not todo:
        return
    limiter = RateLimiter(options.limit_rate)
    errors: list[BaseException] = []

    def run(part: _Part) -> None:
        try:
            _send_part(path, part, session, options, progress, stats, limiter, cancel)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
            cancel.set()

    if len(todo) == 1:
        run(todo[0])
    else:
        threads = [threading.Thread(target=run, args=(p,), daemon=True) for p in todo]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    if errors:
        failure = next((e for e in errors if not isinstance(e, Cancelled)), errors[0])
        raise failure


def _send_part(path: str, part: _Part, session: Session, options: Options, progress: Progress, stats: _Stats,
               limiter: RateLimiter, cancel: threading.Event) -> None:  # fmt: skip
    client = session.client()
    retrier = Retrier(options, progress.note, cancel, Path(path).name)
    shown = part.offset  # what the progress bar counts for this part

    def on_sent(count: int) -> None:
        nonlocal shown
        if cancel.is_set():
            raise Cancelled()
        shown += count
        stats.add(count)
        progress.update(count)

    try:
        with Path(path).open("rb") as file:
            ask = False
            while part.offset < part.length:
                try:
                    if ask:
                        got = (
                            _region_offset(client.info(part.url), part) if part.region else client.head(part.url).offset
                        )
                        if got > part.offset:
                            retrier.reset()
                        part.offset, ask = got, False
                        progress.update(part.offset - shown)
                        shown = part.offset
                        continue
                    count = part.length - part.offset
                    position = part.start + part.offset
                    if part.region:
                        end = client.patch_file(part.url, file, position, position, count, on_sent, limiter,
                                                anywhere=True)  # fmt: skip
                        new = min(end, part.start + part.length) - part.start
                    else:
                        new = client.patch_file(part.url, file, position, part.offset, count, on_sent, limiter)
                    if new <= part.offset:
                        raise TransportError(f"the server did not advance past {part.offset}")
                    part.offset = new
                    progress.update(part.offset - shown)
                    shown = part.offset
                    retrier.reset()
                except (TransportError, HttpError) as exc:
                    ask = True
                    retrier.failed("send", exc)
    finally:
        client.close()


def _concatenate(client: TusClient, retrier: Retrier, parts: list[_Part], name: str, size: int, options: Options,
                 key: str) -> str:  # fmt: skip
    concat = "final;" + " ".join(p.url for p in parts)
    timeout = max(options.timeout, 60.0 + size / (50 << 20))  # the server joins and hashes before it answers
    url = retrier.call("concatenate", lambda: client.create(None, _metadata(name), concat=concat,
                                                                     timeout=timeout))  # fmt: skip
    options.state.update(key, lambda entry: entry.__setitem__("final", url))
    return url


def _wait_complete(client: TusClient, retrier: Retrier, url: str, size: int) -> dict[str, Any]:
    deadline = time.monotonic() + _COMPLETE_WAIT
    while True:
        info = retrier.call("status", lambda: client.info(url))
        if info.get("complete") and info.get("sha256"):
            return info
        if time.monotonic() > deadline:
            raise UploadFailed(f"the server has {info.get('received_bytes')} of {size} bytes but did not finish")
        time.sleep(0.05)


class _LocalHash:
    """The file's sha256, computed in a thread beside the upload (``--verify``)."""

    def __init__(self, path: str) -> None:
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="verify")
        self._future: Future[str] = self._pool.submit(self._hash, path)

    def _hash(self, path: str) -> str:
        hasher = hashlib.sha256()
        with Path(path).open("rb", buffering=0) as file:
            buffer = bytearray(4 << 20)
            view = memoryview(buffer)
            while not self._stop.is_set():
                n = file.readinto(buffer)
                if not n:
                    break
                hasher.update(view[:n])
        return hasher.hexdigest()

    def result(self) -> str:
        return self._future.result()

    def stop(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=False)


# -- stdin ------------------------------------------------------------------------------------------------------


def upload_stream(stream: BinaryIO, options: Options, session: Session, cancel: threading.Event) -> Result:
    """Upload what a pipe gives, with tus creation-defer-length; the length is declared with the last PATCH."""
    name = options.name or "stdin"
    started = time.monotonic()
    client = session.client()
    progress = Progress(name, None, enabled=options.progress)
    retrier = Retrier(options, progress.note, cancel, name)
    hasher = hashlib.sha256()
    hashing = ThreadPoolExecutor(1, thread_name_prefix="sha256")
    stats = _Stats()
    try:
        block = _read_block(stream)
        following = _read_block(stream) if len(block) == STDIN_CHUNK else b""
        known = None if following else len(block)
        url = retrier.call("create", lambda: client.create(known, _metadata(name)))
        _remember_token(options, client)
        offset = 0
        pending: Future[None] | None = None
        while block:
            last = not following
            if pending is not None:
                pending.result()
            pending = hashing.submit(hasher.update, block)
            end = offset + len(block)
            _send_block(client, retrier, url, block, offset, end if last and known is None else None, stats, progress)
            offset = end
            block, following = following, (_read_block(stream) if len(following) == STDIN_CHUNK else b"")
        if pending is not None:
            pending.result()
        info = _wait_complete(client, retrier, url, offset)
        local = hasher.hexdigest()
        if info["sha256"] != local:
            raise UploadFailed(f"the server's sha256 {info['sha256']} is not that of the bytes sent ({local})")
        return Result(name, offset, _absolute(session, url), _absolute(session, info.get("download_url") or ""), local,
                      stats.sent, 0,
                      time.monotonic() - started, 1, local)  # fmt: skip
    finally:
        hashing.shutdown(wait=False)
        progress.close()
        client.close()


def _read_block(stream: BinaryIO) -> bytes:
    pieces: list[bytes] = []
    size = 0
    while size < STDIN_CHUNK:
        piece = stream.read(STDIN_CHUNK - size)
        if not piece:
            break
        pieces.append(piece)
        size += len(piece)
    return pieces[0] if len(pieces) == 1 else b"".join(pieces)


def _send_block(client: TusClient, retrier: Retrier, url: str, block: bytes, start: int, declare: int | None,
                stats: _Stats, progress: Progress) -> None:  # fmt: skip
    end = start + len(block)
    view = memoryview(block)
    position = start
    while True:
        try:
            if position >= end and declare is None:
                return
            new = client.patch_bytes(url, view[position - start :], position, upload_length=declare)
            stats.add(end - position)
            progress.update(new - position)
            if new >= end:
                return
            position = new
            retrier.reset()
        except (TransportError, HttpError) as exc:
            retrier.failed("send", exc)
            got = retrier.call("status", lambda: client.head(url))
            if got.offset < start:
                raise UploadFailed(f"the server lost bytes before {start} that stdin cannot send again") from exc
            if got.offset >= end and (declare is None or got.length is not None):
                progress.update(end - position)
                return
            progress.update(got.offset - position)
            position = got.offset


def _absolute(session: Session, url: object) -> str:
    """A link as the server gave it (a path, or absolute behind --public-url), made absolute: printed and --json
    URLs work as they are, anywhere."""
    if not isinstance(url, str) or not url:
        return str(url)
    return urljoin(session.base_url + "/", url)


def _size(count: int) -> str:
    return format_size(count)
