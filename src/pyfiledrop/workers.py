"""Worker-thread jobs that use the caller's memory (a buffer, a file descriptor): whoever started one must not
reuse that memory, or return, before the job is over — even when cancelled."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

_T = TypeVar("_T")

# Jobs started from any thread (a body-reading thread starts the write of the buffer it filled): no event loop needed.
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="pyfiledrop-io")


def submit(function: Callable[..., _T], *args: Any) -> concurrent.futures.Future[_T]:
    return _POOL.submit(function, *args)


def wrap_job(job: concurrent.futures.Future[_T]) -> asyncio.Future[_T]:
    """``asyncio.wrap_future`` for the running loop, with the wake-ups batched: a job that ends while the loop
    has not yet taken the results of others does not wake it again. Every wake-up is a write to the loop's
    self-pipe and a read on the loop — system calls, each handing the GIL over; with dozens of small uploads at
    once, two per upload (the body stored, the record written) were a good part of the hand-offs."""
    loop = asyncio.get_running_loop()
    inbox = _INBOXES.get(loop)
    if inbox is None:
        inbox = _INBOXES[loop] = _Inbox(loop)
    future: asyncio.Future[_T] = loop.create_future()
    future.add_done_callback(lambda done: job.cancel() if done.cancelled() else None)
    job.add_done_callback(lambda finished: inbox.post(future, finished))
    return future


class _Inbox:
    """Finished jobs waiting for the event loop to copy their outcome into its futures."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._finished: collections.deque[tuple[asyncio.Future[Any], concurrent.futures.Future[Any]]] = (
            collections.deque()
        )
        self._wake_pending = False

    def post(self, future: asyncio.Future[Any], job: concurrent.futures.Future[Any]) -> None:  # any thread
        with self._lock:
            self._finished.append((future, job))
            if self._wake_pending:
                return
            self._wake_pending = True
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            self._loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:  # on the loop
        with self._lock:
            finished, self._finished = self._finished, collections.deque()
            self._wake_pending = False
        for future, job in finished:
            if future.done():  # cancelled meanwhile
                continue
            if job.cancelled():
                future.cancel()
            elif (error := job.exception()) is not None:
                future.set_exception(error)
            else:
                future.set_result(job.result())


_INBOXES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Inbox] = weakref.WeakKeyDictionary()


async def settle(futures: Sequence[asyncio.Future[Any]]) -> None:
    """Wait until worker-thread jobs are over, even through cancellation (then re-raised): their buffers and file
    descriptors must not be reused or closed under them."""
    cancelled = False
    while not all(future.done() for future in futures):
        try:
            await asyncio.shield(asyncio.wait(futures))
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError


async def settle_jobs(jobs: Sequence[concurrent.futures.Future[Any]]) -> None:
    """``settle`` for jobs started with ``submit``; their outcome is read from the jobs themselves."""
    waiting = [wrap_job(job) for job in jobs]
    try:
        await settle(waiting)
    finally:
        for future in waiting:
            if future.done() and not future.cancelled():
                future.exception()  # marks it retrieved: no "exception was never retrieved" for a copy


async def in_thread(function: Callable[..., _T], *args: Any) -> _T:
    """``function(*args)`` in a worker thread, waited for to its end even through cancellation."""
    job = asyncio.get_running_loop().run_in_executor(None, function, *args)
    await settle([job])
    return job.result()
