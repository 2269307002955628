"""Upload a file (one tus stream, or N partial uploads joined by tus concatenation) or stdin (deferred
length), resuming from the state file and retrying with backoff."""

from __future__ import annotations

import hashlib
import itertools
import mimetypes
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO, TypeVar
from urllib.parse import urljoin

from pyfiledrop.client.http import HttpError, RateLimiter, TransportError, file_identity
from pyfiledrop.client.progress import Progress
from pyfiledrop.client.retry import Retrier, UploadFailed
from pyfiledrop.client.state import StateStore, entry_key
from pyfiledrop.client.streams import AUTO, Part, Ramp, Stats, auto_ceiling, region_offset, segment_bounds, send_parts
from pyfiledrop.client.tus import Session, TusClient, UploadGone
from pyfiledrop.units import format_size

T = TypeVar("T")

STORED_FOR_OWNER = "received — stored for the owner of this drop"

MIN_PART = 1 << 20  # a parallel stream gets at least this many bytes
STDIN_CHUNK = 16 << 20  # bytes per PATCH from stdin (held in memory until acknowledged)
_BACKOFF_CAP = 30.0
_COMPLETE_WAIT = 120.0  # seconds to wait for the server to finish an upload whose last answer was lost


@dataclass
class Options:
    url: str
    jobs: int = AUTO  # streams per file; AUTO: as many as pay (client/streams.py)
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
        stats = Stats()
        ramp = Ramp(auto_ceiling(session.base_url)) if options.jobs == AUTO and len(parts) > 1 else None
        send_parts(abspath, parts, session, options, progress, stats, cancel, RateLimiter(options.limit_rate),
                   options.jobs, ramp)  # fmt: skip
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
                      resumed_from, time.monotonic() - started, _streams(parts, options, ramp),
                      local)  # fmt: skip
    finally:
        progress.close()
        client.close()
        if local_hash is not None:
            local_hash.stop()


def _streams(parts: list[Part], options: Options, ramp: Ramp | None) -> int:
    """How many streams sent the file (at most), for --json and the summary."""
    if ramp is not None:
        return ramp.most
    return min(options.jobs, len(parts)) if parts and parts[0].region else max(len(parts), 1)


def _metadata(name: str) -> dict[str, str]:
    return {"filename": name, "filetype": mimetypes.guess_type(name)[0] or "application/octet-stream"}


def _create(client: TusClient, retrier: Retrier, name: str, size: int, options: Options, key: str) -> list[Part]:
    metadata = _metadata(name)
    parallel_write = options.jobs != 1 and size >= 2 * MIN_PART and client.supports_parallel_write()
    if parallel_write:  # segments in file order, for N streams or as many as pay
        bounds = segment_bounds(size, None if options.jobs == AUTO else options.jobs)
    elif options.jobs == AUTO:  # another tus server: parts fixed at creation cannot follow a measurement
        bounds = [0, size]
    else:
        streams = max(1, min(options.jobs, size // MIN_PART))
        bounds = [size * i // streams for i in range(streams + 1)]
    if len(bounds) == 2 or parallel_write:  # one upload (its regions written at once: no concatenation pass)
        url = retrier.call("create", lambda: client.create(size, metadata))
        regions = len(bounds) > 2
        parts = [Part(url, start, end - start, region=regions) for start, end in itertools.pairwise(bounds)]
    else:
        parts = []
        for start, end in itertools.pairwise(bounds):
            url = retrier.call("create", partial(client.create, end - start, metadata, concat="partial"))
            parts.append(Part(url, start, end - start))
    _remember_token(options, client)
    options.state.put(key, {"parts": [[p.url, p.start, p.length] for p in parts], "token": client.session.token,
                            "regions": parts[0].region})  # fmt: skip
    return parts


def _remember_token(options: Options, client: TusClient) -> None:
    token = client.session.token
    if token and options.state.token(client.session.base_url) != token:
        options.state.set_token(client.session.base_url, token)


def _resume(entry: dict[str, Any], client: TusClient, retrier: Retrier, progress: Progress) -> list[Part] | str | None:
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
    parts = [Part(str(url), int(start), int(length), region=regions) for url, start, length in entry.get("parts", [])]
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
    parts: list[Part], client: TusClient, retrier: Retrier, progress: Progress
) -> list[Part] | str | None:
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
        part.offset = region_offset(info, part)
    return parts


def _concatenate(client: TusClient, retrier: Retrier, parts: list[Part], name: str, size: int, options: Options,
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
    stats = Stats()
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
                stats: Stats, progress: Progress) -> None:  # fmt: skip
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
