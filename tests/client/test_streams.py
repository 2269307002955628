"""-j auto: the segments, the ramp that picks how many streams send them, and the pool of streams."""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path

import pytest

from pyfiledrop.client import streams
from pyfiledrop.client.streams import GAIN, SEGMENT_MAX, SEGMENT_MIN, WINDOW_BYTES, WINDOW_SECONDS, Part, Ramp
from tests.client.test_upload_cli import _json_lines, _random_file, _state_entries, _upload
from tests.conftest import ServerProcess

MiB = 1 << 20


@pytest.mark.parametrize("size", [0, 1, SEGMENT_MIN - 1, 100 * MiB + 7, 10 * SEGMENT_MAX * 32 + 3])
def test_segments_cover_the_file_in_order_within_their_size_bounds(size: int) -> None:
    bounds = streams.segment_bounds(size)
    assert bounds[0] == 0 and bounds[-1] == size
    lengths = [end - start for start, end in itertools.pairwise(bounds)]
    assert all(length > 0 for length in lengths) or size == 0
    assert all(length <= SEGMENT_MAX for length in lengths)
    assert all(length >= SEGMENT_MIN for length in lengths[:-1])  # only the last one may be short


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _window(ramp: Ramp, clock: _Clock, rate: float) -> None:
    """One measuring window at ``rate`` bytes per second."""
    seconds = max(WINDOW_SECONDS, WINDOW_BYTES / rate) * 1.01
    clock.now += seconds
    ramp.add(int(rate * seconds) + 1)


def _warmed(ceiling: int) -> tuple[Ramp, _Clock]:
    clock = _Clock()
    ramp = Ramp(ceiling, clock)
    _window(ramp, clock, 1e6)  # the warm-up window (slow start) decides nothing
    assert ramp.wanted == 1 and not ramp.settled
    return ramp, clock


def test_the_ramp_adds_a_stream_while_the_speed_grows_up_to_its_ceiling() -> None:
    ramp, clock = _warmed(4)
    for streams_now, rate in enumerate([100e6, 150e6, 200e6, 260e6], start=1):
        assert ramp.wanted == streams_now and not ramp.settled
        _window(ramp, clock, rate)
    assert ramp.wanted == 4 and ramp.most == 4 and ramp.settled  # the ceiling: no more


def test_a_stream_that_made_it_slower_leaves_and_the_ramp_stops() -> None:
    ramp, clock = _warmed(8)
    _window(ramp, clock, 600e6)  # one stream
    assert ramp.wanted == 2
    _window(ramp, clock, 450e6)  # two streams: slower (the machine's cores were already busy)
    assert ramp.wanted == 1 and ramp.settled and ramp.most == 2
    _window(ramp, clock, 10e6)  # settled: nothing changes any more
    assert ramp.wanted == 1


def test_a_stream_that_brought_too_little_leaves_too() -> None:
    ramp, clock = _warmed(8)
    _window(ramp, clock, 600e6)
    _window(ramp, clock, 600e6 * (GAIN - 0.05))  # a little faster with two: not worth the server's read-back
    assert ramp.wanted == 1 and ramp.settled and ramp.most == 2


def test_a_window_needs_both_its_time_and_its_bytes() -> None:
    ramp, clock = _warmed(8)
    clock.now += 10 * WINDOW_SECONDS
    ramp.add(WINDOW_BYTES - 1)  # long enough, too few bytes
    assert ramp.wanted == 1
    ramp.add(1)
    assert ramp.wanted == 2


def test_the_pool_runs_as_many_streams_as_wanted_and_takes_parts_in_order() -> None:
    parts = [Part("u", i * 10, 10) for i in range(12)]
    wanted = [3]
    running = [0]
    most = [0]
    taken: list[int] = []
    lock = threading.Lock()

    class _Wanting(Ramp):
        @property  # type: ignore[override]
        def wanted(self) -> int:
            return wanted[0]

        @wanted.setter
        def wanted(self, value: int) -> None:
            pass

    def send(part: Part) -> None:
        with lock:
            taken.append(part.start)
            running[0] += 1
            most[0] = max(most[0], running[0])
            if len(taken) == 6:
                wanted[0] = 1  # from here on, one stream: the others leave after their part
        time.sleep(0.05)
        with lock:
            running[0] -= 1

    pool = streams._Pool(parts, 0, _Wanting(8), send, threading.Event())
    pool.run()
    assert sorted(taken) == [p.start for p in parts]  # every part once
    assert taken[:3] == [0, 10, 20]  # in file order
    assert most[0] == 3
    assert pool.active == 0 and not pool.errors


def test_upload_with_j_auto_sends_segments_of_one_upload(make_server: type[ServerProcess], tmp_path: Path) -> None:
    server = make_server(tmp_path / "s", ["--allow-downloads"]).start()
    source = tmp_path / "auto.bin"
    digest = _random_file(source, 3 * SEGMENT_MIN + 12345)
    state = tmp_path / "state.json"
    result = _upload(str(source), "--url", server.url, "--json", "--verify", state=state)  # -j auto: the default
    assert result.returncode == 0, result.stderr.decode()
    [record] = _json_lines(result.stdout)
    assert record["sha256"] == digest and record["verified"] is True
    # A loopback server on this machine: at most one stream per two cores (one on a 2-core machine).
    assert 1 <= record["streams"] <= streams.auto_ceiling(server.url) == max(1, (os.cpu_count() or 1) // 2)
    assert _state_entries(state) == {}
    uploads = [p for p in (tmp_path / "s").iterdir() if p.is_file() and p.name.endswith("_auto.bin")]
    assert len(uploads) == 1  # one upload, written segment by segment: no parts, no concatenation


@pytest.mark.parametrize(
    ("url", "cores", "ceiling"),
    [
        ("http://127.0.0.1:8080", 2, 1),
        ("http://localhost:8080", 8, 4),
        ("http://[::1]:8080", 1, 1),
        ("http://192.0.2.7:8080", 2, 4),
        ("https://files.example.org", 32, 16),
    ],
)
def test_auto_tries_fewer_streams_against_a_server_on_this_machine(url: str, cores: int, ceiling: int) -> None:
    assert streams.auto_ceiling(url, cores) == ceiling


def test_j_must_be_auto_or_a_count(tmp_path: Path) -> None:
    result = _upload("f", "--url", "http://127.0.0.1:1", "-j", "lots", state=tmp_path / "s.json", timeout=30)
    assert result.returncode == 2
    assert b"-j/--jobs must be auto or between 1 and 64" in result.stderr
