"""The tracker's transitions on a real event loop, against the fake logind: the hold follows the count of
transfers in flight and the grace, and the hot path sends nothing over D-Bus."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from pyfiledrop.awake.tracker import Tracker, banner
from tests.awake.conftest import Buses


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


def test_the_hold_outlives_short_gaps_and_ends_a_grace_after_the_last_transfer(
    make_buses: Callable[..., Buses],
) -> None:
    buses = make_buses(logind=True, desktop=False)

    async def scenario() -> None:
        tracker = Tracker("auto", grace=2.0)  # well above the 0.3 s gaps, even on a loaded machine
        await tracker.start()
        tracker.begin("upload")
        tracker.begin("download")
        tracker.begin("job")
        await _until(lambda: tracker.status().held)
        assert tracker.status().reason.startswith("1 upload, 1 download, 1 video job in flight; logind block")
        for kind in ("upload", "download", "job"):
            tracker.end(kind)
        for _ in range(3):  # a transfer every 0.3 s: each one inside the grace of the one before
            await asyncio.sleep(0.3)
            with tracker.transfer("upload"):
                await asyncio.sleep(0.01)
        assert len([e for e in buses.events() if e["event"] == "inhibit"]) == 1 and len(buses.held()) == 1
        assert "grace" in tracker.status().reason
        await _until(lambda: not tracker.status().held)
        assert tracker.status().reason == "nothing in flight"
        await _until(lambda: buses.held() == [])  # the fake logind notes the release a moment after the close
        tracker.close()

    asyncio.run(scenario())


def test_close_releases_a_held_hold_at_once(make_buses: Callable[..., Buses]) -> None:
    buses = make_buses(logind=True, desktop=False)

    async def scenario() -> None:
        tracker = Tracker("auto", grace=3600)
        await tracker.start()
        with tracker.transfer():
            await _until(lambda: tracker.status().held)
        tracker.close()
        await _until(lambda: buses.held() == [])  # close() waited for it; the fake logind sees the EOF just after
        tracker.close()  # twice is harmless

    asyncio.run(scenario())


def test_never_counts_without_holding(make_buses: Callable[..., Buses]) -> None:
    buses = make_buses(logind=True, desktop=False)

    async def scenario() -> None:
        tracker = Tracker("never")
        await tracker.start()
        with tracker.transfer():
            await asyncio.sleep(0.2)
            assert tracker.in_flight() == "1 upload in flight"
        assert tracker.status().as_json()["held"] is False
        tracker.close()

    asyncio.run(scenario())
    assert buses.events() == []


def test_the_banner_line() -> None:
    auto = "auto (held while transfers run and 120 s after the last; nothing in flight now)"
    assert banner("auto", 120, False) == auto
    assert banner("always", 120, True) == "always (held from start-up to shutdown); the screen is kept on too"
    assert banner("never", 120, True).startswith("never (--keep-awake never")


def test_a_job_runner_thread_counts_itself_through_the_loop(make_buses: Callable[..., Buses]) -> None:
    buses = make_buses(logind=True, desktop=False)

    async def scenario() -> None:
        tracker = Tracker("auto", grace=0)
        await tracker.start()
        await asyncio.to_thread(tracker.begin_threadsafe, "job")
        await _until(lambda: tracker.status().held)
        assert tracker.status().reason.startswith("1 video job in flight")
        await asyncio.to_thread(tracker.end_threadsafe, "job")
        await _until(lambda: not tracker.status().held)
        tracker.close()

    asyncio.run(scenario())
    buses.wait_for(lambda: buses.held() == [], what="the fake logind to see the release")
    assert [e["event"] for e in buses.events()] == ["inhibit", "release"]
