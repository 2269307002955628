"""workers.wrap_job: a worker thread's outcome reaches the event loop as asyncio.wrap_future's would, in batches."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import pytest

from pyfiledrop.workers import wrap_job


def test_results_errors_and_cancellation_come_through_as_with_wrap_future() -> None:
    async def main() -> None:
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            assert await wrap_job(pool.submit(sum, [1, 2, 3])) == 6
            with pytest.raises(ZeroDivisionError):
                await wrap_job(pool.submit(lambda: 1 / 0))
            finished = pool.submit(str, 5)
            finished.result()
            assert await wrap_job(finished) == "5"  # already over when wrapped

            release = threading.Event()
            busy = pool.submit(release.wait, 10)
            queued = pool.submit(release.wait, 10)
            held = pool.submit(release.wait, 10)  # the pool has two threads: this one has not started
            waiter = wrap_job(held)
            waiter.cancel()  # the caller gave up: the job that had not started never runs
            await asyncio.sleep(0)  # (a future's done callbacks run on the loop's next turn)
            assert held.cancelled()
            release.set()
            assert await wrap_job(busy) and await wrap_job(queued)

            never = concurrent.futures.Future[int]()
            pending = wrap_job(never)
            never.cancel()
            with pytest.raises(asyncio.CancelledError):
                await pending

    asyncio.run(main())


def test_jobs_that_end_before_the_loop_looks_cost_one_wake_up() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        wake_ups = []
        threadsafe = loop.call_soon_threadsafe

        def counting(callback, *args):  # type: ignore[no-untyped-def]
            wake_ups.append(callback)
            return threadsafe(callback, *args)

        loop.call_soon_threadsafe = counting  # type: ignore[method-assign,assignment]
        gate = threading.Event()

        def after_gate(n: int) -> int:
            gate.wait(10)
            return n

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            jobs = [pool.submit(after_gate, n) for n in range(8)]
            waiting = [wrap_job(job) for job in jobs]
            gate.set()
            concurrent.futures.wait(jobs)  # blocks the loop: all eight end before it can look
            assert await asyncio.gather(*waiting) == list(range(8))
        assert len(wake_ups) == 1

    asyncio.run(main())


def test_a_job_that_ends_after_its_loop_closed_is_dropped_quietly(caplog: pytest.LogCaptureFixture) -> None:
    gate = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        job = pool.submit(gate.wait, 10)

        async def start() -> None:
            wrap_job(job)

        asyncio.run(start())  # the loop closes with the job still running
        gate.set()
        assert job.result(5) is True
    assert not caplog.records  # its callback met a closed loop and said nothing ("exception calling callback")
