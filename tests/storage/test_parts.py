"""The part planner: S3's limits (10,000 parts, 5 MiB to 5 GiB each, 5 TiB an object) for every size."""

from __future__ import annotations

import pytest

from pyfiledrop.storage.parts import ALIGN, MAX_OBJECT, MAX_PART, MAX_PARTS, MIN_PART, Plan, PlanError, plan
from pyfiledrop.units import GIB, MIB


def check(parts: Plan, size: int) -> None:
    """Parts tile [0, size) exactly; all but the last within S3's sizes; no more than 10,000."""
    count = parts.count(size)
    assert 1 <= count <= MAX_PARTS
    position = 0
    for number in (1, 2, count - 1, count):
        if not 1 <= number <= count:
            continue
        start, end = parts.bounds(number, size)
        assert parts.part_of(start) == number
        if number < count:
            assert MIN_PART <= end - start <= MAX_PART
        else:
            assert end == size and 0 <= end - start <= MAX_PART
        position = max(position, end)
    assert position == size
    last_start, _ = parts.bounds(count, size)
    assert size == 0 or (parts.part_of(size - 1) == count and last_start <= size - 1)


@pytest.mark.parametrize(
    "size", [0, 1, 5 * MIB, 8 * MIB, 8 * MIB + 1, 5 * GIB + 1, 50 * GIB, 78_125 * MIB + 3, MAX_OBJECT]
)
def test_a_declared_size_fits_in_equal_parts(size: int) -> None:
    parts = plan(size)
    check(parts, size)
    assert parts.tiers[0][0] % MIB == 0
    if size <= ALIGN * MAX_PARTS:
        assert parts.tiers[0][0] == ALIGN  # client chunks of 8 MiB are whole parts: nothing is staged


def test_fifty_gib_has_parts_aligned_to_the_chunk_size() -> None:
    parts = plan(50 * GIB)
    assert parts.tiers[0][0] % ALIGN == 0 and parts.count(50 * GIB) <= MAX_PARTS


def test_beyond_five_tib_is_refused_at_once() -> None:
    with pytest.raises(PlanError):
        plan(MAX_OBJECT + 1)


@pytest.mark.parametrize("size", [1, 8 * MIB, 10 * GIB, 1024 * GIB, MAX_OBJECT])
def test_a_deferred_length_reaches_five_tib_in_growing_parts(size: int) -> None:
    parts = plan(None)
    assert parts.capacity >= MAX_OBJECT
    check(parts, size)
    assert parts.bounds(1) == (0, 8 * MIB)  # small uploads keep small parts


def test_deferred_length_cannot_run_out_of_parts_late() -> None:
    parts = plan(None)
    assert parts.part_of(MAX_OBJECT - 1) <= MAX_PARTS
    with pytest.raises(PlanError):
        parts.part_of(MAX_OBJECT)


@pytest.mark.parametrize("chunk", [1, 65_536, 3 * MIB + 7, 8 * MIB, 13 * MIB])
def test_any_chunk_size_maps_each_byte_to_one_part(chunk: int) -> None:
    parts = plan(100 * MIB)
    for offset in range(0, 100 * MIB, chunk * 37 + 1):
        number = parts.part_of(offset)
        start, end = parts.bounds(number)
        assert start <= offset < end


def test_the_plan_survives_its_text_form() -> None:
    for parts in (plan(None), plan(123 * GIB), plan(0)):
        assert Plan.from_text(parts.to_text()) == parts
