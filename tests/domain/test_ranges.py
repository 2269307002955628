import itertools

from hypothesis import given
from hypothesis import strategies as st

from pyfiledrop.domain.ranges import RangeSet

spans = st.lists(st.tuples(st.integers(0, 200), st.integers(0, 50)).map(lambda t: (t[0], t[0] + t[1])), max_size=30)


def _bytes_of(ranges: list[tuple[int, int]]) -> set[int]:
    return {i for s, e in ranges for i in range(s, e)}


@given(spans)
def test_added_ranges_cover_exactly_the_bytes_added(ranges: list[tuple[int, int]]) -> None:
    result = RangeSet()
    for s, e in ranges:
        result = result.add(s, e)
    assert _bytes_of(list(result)) == _bytes_of(ranges)
    assert result.total == len(_bytes_of(ranges))


@given(spans)
def test_ranges_stay_sorted_disjoint_and_not_touching(ranges: list[tuple[int, int]]) -> None:
    result = RangeSet()
    for s, e in ranges:
        result = result.add(s, e)
    items = list(result)
    assert all(s < e for s, e in items)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(items))


@given(spans, st.integers(0, 260))
def test_missing_is_the_complement_within_size(ranges: list[tuple[int, int]], size: int) -> None:
    result = RangeSet()
    for s, e in ranges:
        result = result.add(s, e)
    missing = _bytes_of(list(result.missing(size)))
    assert missing == set(range(size)) - _bytes_of(ranges)
    assert result.is_complete(size) == (not missing)


@given(spans)
def test_text_round_trip(ranges: list[tuple[int, int]]) -> None:
    result = RangeSet()
    for s, e in ranges:
        result = result.add(s, e)
    assert RangeSet.from_text(result.to_text()) == result


def test_contiguous_prefix_is_the_tus_offset() -> None:
    assert RangeSet().add(10, 20).contiguous_prefix == 0
    assert RangeSet().add(0, 5).add(10, 20).contiguous_prefix == 5
    assert RangeSet().add(0, 5).add(5, 20).contiguous_prefix == 20


def test_duplicate_range_changes_nothing() -> None:
    once = RangeSet().add(0, 100)
    assert once.add(0, 100) == once
    assert once.add(20, 30) == once
