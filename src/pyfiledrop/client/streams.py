"""Sending a file's parts: N streams at once (``-j N``), or as many as pay (``-j auto``, the default).

Against pyfiledrop (its parallel-write extension: one upload, no concatenation) the file is cut into segments that a
pool of streams sends in file order, so the hashed prefix follows the streams closely: the server reads back and
hashes the bytes that arrived ahead of it while the upload goes on, not all at the end (with N fixed ranges, the
last three quarters of -j 4 waited for the first one to finish: that made -j 4 slower than -j 1). With -j N the pool
has N streams. ``-j auto`` starts with one and adds one while the last one added raised the throughput (``Ramp``),
up to twice the cores (one per two cores against a server on this machine, which shares them): where one stream
already fills the CPUs or the link, a second one only adds work — the server reads back what arrives ahead of the
hashed prefix — so it leaves again.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from pyfiledrop.client.http import HttpError, RateLimiter, TransportError
from pyfiledrop.client.progress import Progress
from pyfiledrop.client.retry import Cancelled, Policy, Retrier
from pyfiledrop.client.tus import Session, TusClient

AUTO = 0  # Options.jobs for -j auto
SEGMENTS = 16  # -j auto cuts a file into about this many segments (a PATCH each: a round trip each) …
SEGMENT_MIN = 16 << 20  # … of at least this many bytes …
SEGMENT_MAX = 128 << 20  # … and at most this many (a stream added late still finds work)
SEGMENT_FLOOR = 1 << 20  # -j N: no segment shorter than this (but the last)
WINDOW_SECONDS = 0.5  # a throughput is measured over at least this long …
WINDOW_BYTES = 64 << 20  # … and this many bytes
GAIN = 1.25  # one stream more stays when the throughput grew by this factor


@dataclass
class Part:
    url: str
    start: int  # position in the local file (and, for a region, in the upload)
    length: int
    offset: int = 0  # bytes the server has confirmed
    region: bool = False  # a region of one upload written in parallel (pyfiledrop's extension), not a tus part


class Stats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent = 0

    def add(self, count: int) -> None:
        with self._lock:
            self.sent += count


def segment_bounds(size: int, streams: int | None = None) -> list[int]:
    """Where a file of ``size`` bytes is cut for -j auto (``streams`` None) or -j N: [0, …, size]. For -j N, about
    four segments per stream, so the streams work near each other in file order."""
    if streams is None:
        length = min(max(size // SEGMENTS, SEGMENT_MIN), SEGMENT_MAX)
    else:
        length = min(max(size // (4 * streams), SEGMENT_FLOOR), SEGMENT_MAX)
    return [*range(0, size, length), size] if size else [0, 0]


def auto_ceiling(base_url: str, cores: int | None = None) -> int:
    """The most streams -j auto tries: twice the cores; against a server on this machine (a loopback address), one
    per two cores, since each stream's bytes cost the server about a core too (2 cores: one stream, as -j 1)."""
    cores = cores or os.cpu_count() or 1
    if is_loopback(base_url):
        return max(1, cores // 2)
    return max(1, min(2 * cores, 16))


def is_loopback(base_url: str) -> bool:
    host = (urlsplit(base_url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: not looked up here (that would cost a DNS round trip before every upload)
        return False


class Ramp:
    """How many streams -j auto wants now, from the bytes sent: measured over windows (``WINDOW_SECONDS`` and
    ``WINDOW_BYTES`` both; the first one is a warm-up), one stream more after each window whose throughput beat the
    one before by ``GAIN``; the first window that does not ends the ramp, and the stream added last leaves (after
    its segment): more streams must pay for the read-back they cost the server. Called from every stream's
    thread."""

    def __init__(self, ceiling: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = ceiling
        self.wanted = 1
        self.most = 1
        self.settled = ceiling <= 1
        self._clock = clock
        self._lock = threading.Lock()
        self._since = clock()
        self._bytes = 0
        self._before = 0.0  # bytes per second with one stream fewer
        self._warming = True

    def add(self, count: int) -> None:
        if self.settled:
            return
        with self._lock:
            self._bytes += count
            elapsed = self._clock() - self._since
            if elapsed < WINDOW_SECONDS or self._bytes < WINDOW_BYTES or self.settled:
                return
            self._decide(self._bytes / elapsed)
            self._since, self._bytes = self._clock(), 0

    def _decide(self, rate: float) -> None:
        if self._warming:  # the first window: connection set-up and TCP's slow start, not the stream's speed
            self._warming = False
            return
        gained = rate > self._before * GAIN
        if gained and self.wanted < self.ceiling:
            self._before = rate
            self.wanted += 1
            self.most = max(self.most, self.wanted)
            return
        if not gained and self.wanted > 1:
            self.wanted -= 1  # the last one added did not pay (it costs the server a read-back): it leaves
        self.settled = True


class _Pool:
    """Streams taking parts in order; with a ramp, as many as it wants at each moment."""

    def __init__(self, parts: list[Part], jobs: int, ramp: Ramp | None, send: Callable[[Part], None],
                 cancel: threading.Event) -> None:  # fmt: skip
        self.todo = list(reversed(parts))
        self.jobs = jobs
        self.ramp = ramp
        self.send = send
        self.cancel = cancel
        self.lock = threading.Lock()
        self.active = 0
        self.errors: list[BaseException] = []

    def wanted(self) -> int:
        return self.ramp.wanted if self.ramp is not None else self.jobs

    def next_part(self) -> Part | None:
        with self.lock:
            if self.cancel.is_set() or not self.todo or self.active > self.wanted():
                self.active -= 1
                return None
            return self.todo.pop()

    def stream(self) -> None:
        try:
            while (part := self.next_part()) is not None:
                self.send(part)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            self.errors.append(exc)
            self.cancel.set()
            with self.lock:
                self.active -= 1

    def run(self) -> None:
        threads: list[threading.Thread] = []
        deadline = time.monotonic() + 30 * 86400  # bounded: a month
        while time.monotonic() < deadline:
            with self.lock:
                start = bool(self.todo) and not self.cancel.is_set() and self.active < self.wanted()
                if start:
                    self.active += 1
            if start:
                thread = threading.Thread(target=self.stream, daemon=True)
                thread.start()
                threads.append(thread)
                continue
            threads = [t for t in threads if t.is_alive()]
            if not threads and (not self.todo or self.cancel.is_set()):
                return
            threads[0].join(0.05) if threads else time.sleep(0.05)


def send_parts(path: str, parts: list[Part], session: Session, options: Policy, progress: Progress, stats: Stats,
               cancel: threading.Event, limiter: RateLimiter, jobs: int, ramp: Ramp | None = None) -> None:  # fmt: skip
    """Send what is missing of ``parts``: ``jobs`` streams at once, or as many as ``ramp`` wants."""
    todo = [p for p in parts if p.offset < p.length]
    if not todo:
        return

    def count_sent(count: int) -> None:
        if cancel.is_set():
            raise Cancelled()
        stats.add(count)
        progress.update(count)
        if ramp is not None:
            ramp.add(count)

    def send(part: Part) -> None:
        _send_part(path, part, session, options, progress, count_sent, limiter, cancel)

    pool = _Pool(todo, jobs, ramp, send, cancel)
    if len(todo) == 1 or (pool.wanted() == 1 and ramp is None):
        try:
            for part in todo:
                send(part)
        except BaseException as exc:  # noqa: BLE001 - raised below, as from the threads
            pool.errors.append(exc)
    else:
        pool.run()
    if pool.errors:
        failure = next((e for e in pool.errors if not isinstance(e, Cancelled)), pool.errors[0])
        raise failure


def region_offset(info: dict[str, Any], part: Part) -> int:
    """How far the server's received bytes run from the region's start, within the region."""
    for start, end in info.get("received", []):
        if int(start) <= part.start <= int(end):
            return min(int(end), part.start + part.length) - part.start
    return 0


def _send_part(path: str, part: Part, session: Session, options: Policy, progress: Progress,
               count_sent: Callable[[int], None], limiter: RateLimiter, cancel: threading.Event) -> None:  # fmt: skip
    client = session.client()
    retrier = Retrier(options, progress.note, cancel, Path(path).name)
    shown = part.offset  # what the progress bar counts for this part

    def on_sent(count: int) -> None:
        nonlocal shown
        count_sent(count)
        shown += count

    def confirmed(offset: int) -> None:  # the server's word corrects what the bar showed
        nonlocal shown
        part.offset = offset
        progress.update(part.offset - shown)
        shown = part.offset

    try:
        with Path(path).open("rb") as file:
            ask = False
            while part.offset < part.length:
                try:
                    if ask:
                        got = _confirmed_offset(client, part)
                        if got > part.offset:
                            retrier.reset()
                        confirmed(got)
                        ask = False
                        continue
                    confirmed(_patch(client, file, part, on_sent, limiter))
                    retrier.reset()
                except (TransportError, HttpError) as exc:
                    ask = True
                    retrier.failed("send", exc)
    finally:
        client.close()


def _confirmed_offset(client: TusClient, part: Part) -> int:
    return region_offset(client.info(part.url), part) if part.region else client.head(part.url).offset


def _patch(client: TusClient, file: BinaryIO, part: Part, on_sent: Callable[[int], None], limiter: RateLimiter) -> int:
    """One PATCH of the rest of ``part``; the part's new offset."""
    count = part.length - part.offset
    position = part.start + part.offset
    if part.region:
        end = client.patch_file(part.url, file, position, position, count, on_sent, limiter, anywhere=True)
        new = min(end, part.start + part.length) - part.start
    else:
        new = client.patch_file(part.url, file, position, part.offset, count, on_sent, limiter)
    if new <= part.offset:
        raise TransportError(f"the server did not advance past {part.offset}")
    return new
