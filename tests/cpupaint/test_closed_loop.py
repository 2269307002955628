"""The closed loop's arithmetic: the duty of the next period from the core's measured busy time and the worker's own.

Counters are scripted here so that the subtraction of other load is checked exactly; the real counters are
exercised by test_levels and test_picture_run.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from cpupaint.counters import CoreTimes
from cpupaint.worker import ClosedLoop


@dataclass
class Script:
    """What the core's counter and the worker's CPU clock say right now (seconds)."""

    busy: float = 0.0
    total: float = 0.0
    own: float = 0.0

    def core(self) -> CoreTimes:
        return CoreTimes(self.busy, self.total)

    def own_cpu(self) -> float:
        return self.own


def test_on_an_idle_core_the_duty_is_the_target() -> None:
    script = Script()
    loop = ClosedLoop(script.core, script.own_cpu)
    loop.begin(100.0, 101.0)
    assert loop.duty(100.0, 40.0) == pytest.approx(0.4)


def test_load_from_others_is_subtracted() -> None:
    script = Script()
    loop = ClosedLoop(script.core, script.own_cpu)
    loop.begin(100.0, 101.0)
    # Half a second in: the core was busy 0.4 s, of which 0.15 s was the worker — others ran 0.25 s (50 %).
    script.busy, script.own = 0.4, 0.15
    # 70 % of the tick is 0.7 s; 0.4 s done, others will add 0.25 s: the worker owes 0.05 s of 0.5 s.
    assert loop.duty(100.5, 70.0) == pytest.approx(0.1)
    # A target below what others already do: the worker rests.
    assert loop.duty(100.5, 30.0) == 0.0


def test_a_shortfall_is_made_up_before_the_tick_ends_and_the_next_tick_forecasts_from_the_last() -> None:
    script = Script()
    loop = ClosedLoop(script.core, script.own_cpu)
    loop.begin(100.0, 101.0)
    # The worker got only 0.1 s in the first 0.8 s (the core was contended), nobody else ran.
    script.busy, script.own = 0.1, 0.1
    assert loop.duty(100.8, 50.0) == 1.0  # 0.4 s owed in 0.2 s: as much as possible
    # Next tick: others kept the core 30 % busy through the last one.
    script.busy, script.own = 1.0, 0.7
    loop.begin(101.0, 102.0)
    assert loop.duty(101.0, 50.0) == pytest.approx(0.2)
