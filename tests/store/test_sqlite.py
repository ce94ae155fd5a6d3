"""Round trips through the store: totals, series, breakdowns and exact upserts."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard.store import BucketRow, SQLiteStore, minute_of


def row(
    slo: str = "api",
    minute: int = 100,
    route: str = "/a",
    status_class: str = "2xx",
    error_code: str = "",
    good: int = 1,
    total: int = 1,
) -> BucketRow:
    return BucketRow(slo, minute, route, status_class, error_code, good, total)


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "sli.db")


def test_added_rows_come_back_as_totals_series_and_slo_names(store: SQLiteStore) -> None:
    written = store.add(
        [row(minute=10, good=3, total=4), row(minute=11, good=5, total=5), row(slo="web")]
    )
    assert written == 3
    assert store.totals("api", 10, 12) == (8, 9)
    assert store.series("api", 0, 1000) == [(10, 3, 4), (11, 5, 5)]
    assert store.slos() == ["api", "web"]


def test_adding_the_same_bucket_again_adds_to_its_counts(store: SQLiteStore) -> None:
    store.add([row(good=2, total=3)])
    store.add([row(good=1, total=4), row(good=0, total=1)])
    assert store.totals("api", 100, 101) == (3, 8)
    assert store.breakdown("api", 100, 101, ["route"]) == [(("/a",), 3, 8)]


def test_ranges_include_the_start_minute_and_exclude_the_end(store: SQLiteStore) -> None:
    store.add([row(minute=m, good=1, total=1) for m in (9, 10, 11, 12)])
    assert store.totals("api", 10, 12) == (2, 2)
    assert [m for m, _, _ in store.series("api", 10, 12)] == [10, 11]


def test_an_empty_range_or_unknown_slo_totals_zero(store: SQLiteStore) -> None:
    store.add([row(minute=5)])
    assert store.totals("api", 6, 60) == (0, 0)
    assert store.totals("nope", 0, 60) == (0, 0)
    assert store.series("nope", 0, 60) == []
    assert store.breakdown("nope", 0, 60, ["route"]) == []


def test_adding_no_rows_writes_nothing(store: SQLiteStore) -> None:
    assert store.add([]) == 0
    assert store.slos() == []


def test_breakdown_puts_the_largest_bad_count_first(store: SQLiteStore) -> None:
    store.add(
        [
            row(route="/few-bad", good=8, total=10),
            row(route="/many-bad", good=0, total=5),
            row(route="/tie-small", good=9, total=11),
            row(route="/clean", good=50, total=50),
        ]
    )
    by_route = store.breakdown("api", 0, 1000, ["route"])
    assert [dims[0] for dims, _, _ in by_route] == ["/many-bad", "/tie-small", "/few-bad", "/clean"]
    assert by_route[0] == (("/many-bad",), 0, 5)


def test_breakdown_groups_by_several_dimensions_in_the_order_given(store: SQLiteStore) -> None:
    store.add(
        [
            row(status_class="5xx", error_code="DB_1", good=0, total=3),
            row(status_class="5xx", error_code="DB_1", minute=101, good=0, total=1),
            row(status_class="2xx", good=7, total=7),
        ]
    )
    assert store.breakdown("api", 0, 1000, ["error_code", "status_class"]) == [
        (("DB_1", "5xx"), 0, 4),
        (("", "2xx"), 7, 7),
    ]
    assert store.breakdown("api", 0, 1000, []) == [((), 7, 11)]


@pytest.mark.parametrize(
    "by",
    [
        pytest.param(["slo"], id="not-a-dimension"),
        pytest.param(["route; DROP TABLE sli_buckets"], id="injection"),
        pytest.param(["route", "route"], id="repeated"),
    ],
)
def test_breakdown_rejects_unknown_or_repeated_dimensions(
    store: SQLiteStore, by: list[str]
) -> None:
    with pytest.raises(ValueError, match="dimensions"):
        store.breakdown("api", 0, 10, by)  # type: ignore[arg-type]


def test_a_bucket_minute_is_unix_seconds_floor_divided_by_sixty() -> None:
    assert [minute_of(t) for t in (0, 59.999, 60, 1_700_000_000.5)] == [0, 0, 1, 28_333_333]


def test_counts_beyond_32_bits_stay_exact(store: SQLiteStore) -> None:
    big = 2**40 + 1
    store.add([row(good=big, total=big + 3)])
    store.add([row(good=big, total=big)])
    assert store.totals("api", 0, 1000) == (2 * big, 2 * big + 3)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(
            st.builds(
                lambda minute, route, bad, good: row(
                    minute=minute, route=route, good=good, total=good + bad
                ),
                st.integers(0, 5),
                st.sampled_from(["/a", "/b"]),
                st.integers(0, 3),
                st.integers(0, 3),
            ),
            max_size=6,
        ),
        max_size=4,
    )
)
def test_any_sequence_of_flushes_sums_exactly(batches: list[list[BucketRow]]) -> None:
    expected: dict[int, tuple[int, int]] = {}
    for r in (r for batch in batches for r in batch):
        good, total = expected.get(r.minute, (0, 0))
        expected[r.minute] = (good + r.good, total + r.total)
    with tempfile.TemporaryDirectory() as directory, SQLiteStore(Path(directory) / "s.db") as store:
        for batch in batches:
            store.add(batch)
        assert store.series("api", 0, 6) == [(m, *expected[m]) for m in sorted(expected)]
