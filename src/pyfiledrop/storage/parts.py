"""The part planner: which S3 multipart part holds which bytes of an upload, decided once, when it is created.

S3 takes at most 10,000 parts, each at least 5 MiB except the last and at most 5 GiB, for objects up to 5 TiB.
A known size gets equal parts: the smallest multiple of ``ALIGN`` (the chunk size clients are told) that fits the
whole upload in 10,000 parts, so a client's aligned chunks are whole parts and need no staging. A deferred length
gets parts that grow by tiers (1,000 of 8 MiB, then 16 MiB, … 1 GiB, then 2,000 of 2 GiB): small uploads keep
small parts, and any size up to 5 TiB still fits — it can never run out of parts late, at part 10,001.
Every replica computes the same plan from the same numbers, so any of them can upload any part.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from pyfiledrop.units import GIB, MIB

TIB = 1 << 40

MAX_PARTS = 10_000
MIN_PART = 5 * MIB  # S3: every part but the last
MAX_PART = 5 * GIB
MAX_OBJECT = 5 * TIB
ALIGN = 8 * MIB  # parts are multiples of this: the default chunk size of every client (config.chunk_size)
_TIER_PARTS = 1_000
_GROWING = tuple((8 * MIB) << tier for tier in range(8))  # 8 MiB … 1 GiB, 1,000 parts each
_LAST_TIER = (2 * GIB, MAX_PARTS - _TIER_PARTS * len(_GROWING))


class PlanError(ValueError):
    """The upload cannot be one S3 object (larger than 5 TiB)."""


@dataclass(frozen=True, slots=True)
class Plan:
    """Parts in tiers of equal size: ``tiers`` holds (part size, part count); parts are numbered from 1."""

    tiers: tuple[tuple[int, int], ...]
    size: int | None  # the declared size; None: deferred, the last part is known once the size is
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)  # first byte of each tier
    _numbers: tuple[int, ...] = field(init=False, repr=False, compare=False)  # first part number of each tier

    def __post_init__(self) -> None:
        starts, numbers = [0], [1]
        for part_size, count in self.tiers:
            starts.append(starts[-1] + part_size * count)
            numbers.append(numbers[-1] + count)
        object.__setattr__(self, "_starts", tuple(starts))
        object.__setattr__(self, "_numbers", tuple(numbers))

    @property
    def capacity(self) -> int:
        """The most bytes this plan can take."""
        return min(self._starts[-1], MAX_OBJECT)

    def part_of(self, offset: int) -> int:
        """The number of the part that holds the byte at ``offset``."""
        if not 0 <= offset < self.capacity:
            raise PlanError(f"offset {offset} is beyond what one S3 object can hold ({self.capacity} bytes)")
        tier = bisect.bisect_right(self._starts, offset) - 1
        part_size = self.tiers[tier][0]
        return self._numbers[tier] + (offset - self._starts[tier]) // part_size

    def bounds(self, number: int, size: int | None = None) -> tuple[int, int]:
        """Bytes ``[start, end)`` of part ``number``; the last one ends at the size (given, or declared)."""
        tier = bisect.bisect_right(self._numbers, number) - 1
        if not 1 <= number < self._numbers[-1]:
            raise PlanError(f"there is no part {number}")
        part_size = self.tiers[tier][0]
        start = self._starts[tier] + (number - self._numbers[tier]) * part_size
        total = size if size is not None else self.size
        end = start + part_size
        return start, end if total is None else min(end, total)

    def count(self, size: int) -> int:
        """How many parts an upload of ``size`` bytes has (at least one: an empty object is one empty part)."""
        return 1 if size == 0 else self.part_of(size - 1)

    def to_text(self) -> str:
        tiers = ",".join(f"{part_size}x{count}" for part_size, count in self.tiers)
        return f"{tiers};{'' if self.size is None else self.size}"

    @classmethod
    def from_text(cls, text: str) -> Plan:
        tiers, _, size = text.partition(";")
        pairs = tuple(tuple(int(n) for n in tier.split("x")) for tier in tiers.split(","))
        return cls(tuple((a, b) for a, b in pairs), int(size) if size else None)


def plan(size: int | None, align: int = ALIGN) -> Plan:
    """The parts of an upload of ``size`` bytes (None: deferred length)."""
    if size is None:
        return Plan((*((part_size, _TIER_PARTS) for part_size in _GROWING), _LAST_TIER), None)
    if size < 0 or size > MAX_OBJECT:
        raise PlanError(f"an S3 object holds at most {MAX_OBJECT} bytes, not {size}")
    align = max(align, MIN_PART)
    needed = -(-size // MAX_PARTS)  # the smallest part that fits the whole size in 10,000 parts
    part_size = max(align, -(-needed // align) * align)
    if part_size > MAX_PART:  # an alignment that does not fit: MiB steps (5 TiB / 10,000 is far below 5 GiB)
        part_size = -(-needed // MIB) * MIB
    return Plan(((part_size, MAX_PARTS),), size)
