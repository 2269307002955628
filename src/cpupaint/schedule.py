"""What each core should show when: target levels per core over wall-clock ticks.

A schedule is the contract between the command line (which builds it from percents, text or a picture) and the
workers (which each receive their own core's row as JSON on stdin).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

MAX_DURATION = 3600.0
DEFAULT_DURATION = 60.0
DEFAULT_TICK = 1.0
DEFAULT_PERIOD = 0.1


@dataclass(frozen=True)
class CoreSchedule:
    """One core's targets: ``levels[k]`` percent during the k-th tick after ``start`` (Unix time)."""

    core: int
    start: float
    tick: float
    levels: list[float]
    end: float
    closed_loop: bool = True
    period: float = DEFAULT_PERIOD
    pin: bool = True

    def level_at(self, now: float) -> float:
        """Target at Unix time ``now``; 0 outside the schedule."""
        if now < self.start or now >= self.end:
            return 0.0
        index = int((now - self.start) // self.tick)
        return self.levels[min(index, len(self.levels) - 1)]

    def to_json(self) -> str:
        return json.dumps(
            {
                "core": self.core,
                "start": self.start,
                "tick": self.tick,
                "levels": self.levels,
                "end": self.end,
                "closed_loop": self.closed_loop,
                "period": self.period,
                "pin": self.pin,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> CoreSchedule:
        data = json.loads(text)
        return cls(
            core=int(data["core"]),
            start=float(data["start"]),
            tick=float(data["tick"]),
            levels=[float(level) for level in data["levels"]],
            end=float(data["end"]),
            closed_loop=bool(data["closed_loop"]),
            period=float(data["period"]),
            pin=bool(data["pin"]),
        )


@dataclass(frozen=True)
class Schedule:
    """Targets for several cores. ``rows[i]`` belongs to ``cores[i]``; every row has one level per tick."""

    cores: list[int]
    rows: list[list[float]]
    tick: float
    aligned: bool
    duration: float

    def ticks(self) -> int:
        return len(self.rows[0]) if self.rows else 0

    def start_time(self, now: float, lead: float) -> float:
        """When to begin: ``lead`` seconds from now, moved on to the next tick boundary of the wall clock when the
        picture must line up with a viewer that refreshes on whole seconds."""
        earliest = now + lead
        if not self.aligned:
            return earliest
        return math.ceil(earliest / self.tick) * self.tick

    def for_core(self, index: int, start: float, closed_loop: bool, pin: bool) -> CoreSchedule:
        end = start + self.duration
        return CoreSchedule(
            core=self.cores[index],
            start=start,
            tick=self.tick,
            levels=self.rows[index],
            end=end,
            closed_loop=closed_loop,
            pin=pin,
        )

    def mean_target(self, index: int) -> float:
        row = self.rows[index]
        return sum(row) / len(row) if row else 0.0


def tick_count(duration: float, tick: float) -> int:
    """Columns of a picture painted over ``duration`` seconds at one column per ``tick`` (at least one)."""
    return max(1, round(duration / tick))


def constant(cores: list[int], targets: list[float], duration: float, tick: float = DEFAULT_TICK) -> Schedule:
    """Hold each core at one level for the whole duration (``levels``; starts at once, not on a boundary)."""
    ticks = max(1, math.ceil(duration / tick))
    return Schedule(
        cores=cores,
        rows=[[target] * ticks for target in targets],
        tick=tick,
        aligned=False,
        duration=duration,
    )


def picture(cores: list[int], rows: list[list[float]], tick: float) -> Schedule:
    """Paint ``rows`` (one per core, one level per column) column by column, each column one tick, starting on a
    tick boundary of the wall clock so that every column fills exactly one refresh of the viewer's graph."""
    ticks = len(rows[0]) if rows else 0
    return Schedule(cores=cores, rows=rows, tick=tick, aligned=True, duration=ticks * tick)
