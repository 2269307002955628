"""Worker-thread jobs that use the caller's memory (a buffer, a file descriptor): whoever started one must not
reuse that memory, or return, before the job is over — even when cancelled."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

_T = TypeVar("_T")

# Jobs started from any thread (a body-reading thread starts the write of the buffer it filled): no event loop needed.
_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="pyfiledrop-io")


def submit(function: Callable[..., _T], *args: Any) -> concurrent.futures.Future[_T]:
    return _POOL.submit(function, *args)


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
    waiting = [asyncio.wrap_future(job) for job in jobs]
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
