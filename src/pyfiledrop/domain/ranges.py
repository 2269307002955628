"""RangeSet: the byte ranges of an upload that are durably written. Pure and immutable."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from pyfiledrop.errors import BadRequest


@dataclass(frozen=True, slots=True)
class RangeSet:
    """Sorted, disjoint, non-adjacent half-open ranges ``[start, end)``."""

    spans: tuple[tuple[int, int], ...] = ()

    def add(self, start: int, end: int) -> RangeSet:
        if start < 0 or end < start:
            raise ValueError(f"bad range [{start}, {end})")
        if start == end:
            return self
        merged: list[tuple[int, int]] = []
        for s, e in self.spans:
            if e < start or s > end:  # disjoint and not touching
                merged.append((s, e))
            else:
                start, end = min(s, start), max(e, end)
        merged.append((start, end))
        merged.sort()
        return RangeSet(tuple(merged))

    def union(self, other: RangeSet) -> RangeSet:
        result = self
        for s, e in other.spans:
            result = result.add(s, e)
        return result

    @property
    def total(self) -> int:
        return sum(e - s for s, e in self.spans)

    @property
    def contiguous_prefix(self) -> int:
        """Bytes received from offset 0 with no gap: the tus ``Upload-Offset``."""
        if self.spans and self.spans[0][0] == 0:
            return self.spans[0][1]
        return 0

    def covers(self, start: int, end: int) -> bool:
        return start == end or any(s <= start and end <= e for s, e in self.spans)

    def overlaps(self, start: int, end: int) -> bool:
        return any(s < end and start < e for s, e in self.spans)

    def is_complete(self, size: int) -> bool:
        return size == 0 or self.covers(0, size)

    def missing(self, size: int) -> Iterator[tuple[int, int]]:
        cursor = 0
        for s, e in self.spans:
            if s > cursor:
                yield (cursor, min(s, size))
            cursor = max(cursor, e)
            if cursor >= size:
                return
        if cursor < size:
            yield (cursor, size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.spans)

    def to_text(self) -> str:
        return ",".join(f"{s}-{e}" for s, e in self.spans)

    @classmethod
    def from_text(cls, text: str) -> RangeSet:
        result = cls()
        for part in filter(None, text.split(",")):
            start, _, end = part.partition("-")
            try:
                result = result.add(int(start), int(end))
            except ValueError as exc:
                raise BadRequest(f"bad range list {text!r}") from exc
        return result
