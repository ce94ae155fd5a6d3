"""Counting requests in memory: the good rules, status classes, exactness, forks."""

from __future__ import annotations

import math
import os
import sys
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sloguard.sli import SLIRecorder, status_class
from sloguard.slo.spec import SLOKind, SLOSpec
from sloguard.store import BucketRow

AVAILABILITY = SLOSpec(name="availability")
LATENCY = SLOSpec(name="latency", kind=SLOKind.LATENCY, threshold_ms=250)
SLOW_LATENCY = SLOSpec(name="slow", kind=SLOKind.LATENCY, threshold_ms=1000, routes=("/api/**",))
NOW = 1_700_000_040.0  # the first second of minute 28_333_334


def totals(rows: list[BucketRow]) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for row in rows:
        good, total = out.get(row.slo, (0, 0))
        out[row.slo] = (good + row.good, total + row.total)
    return out


@pytest.mark.parametrize(
    ("slo", "status", "duration_s", "good"),
    [
        pytest.param(AVAILABILITY, 200, 9.0, True, id="availability-2xx"),
        pytest.param(AVAILABILITY, 404, 0.0, True, id="availability-4xx-is-good"),
        pytest.param(AVAILABILITY, 499, 0.0, True, id="availability-499"),
        pytest.param(AVAILABILITY, 500, 0.0, False, id="availability-500"),
        pytest.param(AVAILABILITY, 503, 0.0, False, id="availability-503"),
        pytest.param(LATENCY, 200, 0.25, True, id="latency-at-threshold"),
        pytest.param(LATENCY, 200, 0.2500001, False, id="latency-just-over"),
        pytest.param(LATENCY, 500, 0.001, True, id="latency-ignores-status"),
        pytest.param(LATENCY, 200, math.nan, False, id="latency-nan"),
        pytest.param(LATENCY, 200, math.inf, False, id="latency-inf"),
    ],
)
def test_a_request_is_good_by_the_rule_of_its_slo_kind(
    slo: SLOSpec, status: int, duration_s: float, good: bool
) -> None:
    recorder = SLIRecorder([slo])
    recorder.record("/x", "GET", status, duration_s, None, NOW)
    assert totals(recorder.drain()) == {slo.name: (int(good), 1)}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(101, "1xx", id="101"),
        pytest.param(204, "2xx", id="204"),
        pytest.param(308, "3xx", id="308"),
        pytest.param(429, "4xx", id="429"),
        pytest.param(599, "5xx", id="599"),
        pytest.param(0, "5xx", id="zero"),
        pytest.param(600, "5xx", id="600"),
        pytest.param(-404, "5xx", id="negative"),
    ],
)
def test_status_codes_map_to_classes_and_invalid_ones_count_as_server_errors(
    status: int, expected: str
) -> None:
    recorder = SLIRecorder([AVAILABILITY])
    recorder.record("/x", "GET", status, 0.0, None, NOW)
    [row] = recorder.drain()
    assert status_class(status) == row.status_class == expected
    assert row.good == (expected != "5xx")


def test_drained_rows_carry_minute_route_class_and_error_code() -> None:
    recorder = SLIRecorder([AVAILABILITY])
    recorder.record("/a", "GET", 200, 0.1, None, NOW + 59.9)
    recorder.record("/a", "GET", 502, 0.1, "UPSTREAM_1", NOW + 60)
    recorder.record("/a", "POST", 201, 0.1, None, NOW + 1)
    assert recorder.drain() == [
        BucketRow("availability", 28_333_334, "/a", "2xx", "", 2, 2),
        BucketRow("availability", 28_333_335, "/a", "5xx", "UPSTREAM_1", 0, 1),
    ]
    assert recorder.drain() == []


def test_one_request_counts_once_for_each_slo_that_selects_it() -> None:
    recorder = SLIRecorder([AVAILABILITY, LATENCY, SLOW_LATENCY])
    recorder.record("/api/slow", "GET", 200, 0.5, None, NOW)
    recorder.record("/web", "GET", 503, 0.1, None, NOW)
    assert totals(recorder.drain()) == {
        "availability": (1, 2),
        "latency": (1, 2),
        "slow": (1, 1),
    }


def test_requests_no_slo_selects_are_not_kept() -> None:
    recorder = SLIRecorder([SLOW_LATENCY])
    recorder.record("/health", "GET", 200, 0.0, None, NOW)
    assert recorder.pending() == 0
    assert recorder.drain() == []


REQUESTS = st.tuples(
    st.sampled_from(["/api/a", "/api/b", "/web"]),
    st.sampled_from(["GET", "POST"]),
    st.sampled_from([200, 404, 500, 503, 0]),
    st.floats(0, 2) | st.sampled_from([0.25, 1.0, 0.0, math.nan, math.inf]),
    st.sampled_from([None, "E_1"]),
    st.floats(NOW, NOW + 300),
)


@settings(max_examples=200)
@given(st.lists(REQUESTS, max_size=40))
def test_drained_counts_equal_judging_every_request_on_its_own(
    requests: list[tuple[str, str, int, float, str | None, float]],
) -> None:
    slos = [AVAILABILITY, LATENCY, SLOW_LATENCY, SLOSpec(name="posts", methods=("POST",))]
    recorder = SLIRecorder(slos)
    expected: Counter[tuple[str, int, str, str, str, str]] = Counter()
    for route, method, status, duration_s, error_code, now in requests:
        recorder.record(route, method, status, duration_s, error_code, now)
        for index in recorder.classifier.match(route, method):
            slo = slos[index]
            if slo.threshold_ms is None:
                good = 100 <= status < 500  # an invalid status is the server's failure
            else:
                good = duration_s * 1000 <= slo.threshold_ms
            key = (slo.name, int(now // 60), route, status_class(status), error_code or "")
            expected[(*key, "total")] += 1
            expected[(*key, "good")] += good
    actual: Counter[tuple[str, int, str, str, str, str]] = Counter()
    for row in recorder.drain():
        actual[(*row.key, "total")] += row.total
        actual[(*row.key, "good")] += row.good
    assert +actual == +expected


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so a race has every chance to show
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.mark.usefixtures("tiny_switch_interval")
def test_counts_stay_exact_with_eight_threads_recording_while_another_drains() -> None:
    recorder = SLIRecorder([AVAILABILITY, LATENCY])
    per_thread, drained, done = 20_000, [], threading.Event()
    start = threading.Barrier(9)

    def record(worker: int) -> None:
        start.wait()
        for i in range(per_thread):
            recorder.record(
                f"/r{i % 3}", "GET", 500 if i % 4 == 0 else 200, 0.3, None, NOW + worker
            )

    def drain() -> None:
        start.wait()
        while not done.is_set():
            drained.extend(recorder.drain())

    threads = [threading.Thread(target=record, args=(w,)) for w in range(8)]
    drainer = threading.Thread(target=drain)
    for thread in [*threads, drainer]:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    drainer.join()
    drained.extend(recorder.drain())
    assert totals(drained) == {"availability": (120_000, 160_000), "latency": (0, 160_000)}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process:DeprecationWarning")  # 3.12+, other threads
def test_a_forked_child_starts_from_zero_and_the_parent_keeps_its_counts() -> None:
    recorder = SLIRecorder([AVAILABILITY])
    recorder.record("/a", "GET", 200, 0.0, None, NOW)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            recorder.record("/a", "GET", 200, 0.0, None, NOW)
            code = 0 if totals(recorder.drain()) == {"availability": (1, 1)} else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert totals(recorder.drain()) == {"availability": (1, 1)}
