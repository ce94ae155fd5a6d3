"""The benchmark code still runs, and each stack under test really does its work.

Speed is not asserted here (``make bench`` measures it); behaviour is: every
request of every in-process variant gets its span, metric, access-log line,
request id and SLI count, so a benchmark can never quietly compare a stack
that skipped its work.
"""

from __future__ import annotations

from typing import Any

import pytest
from benchmarks.e2e_wrk import parse_wrk
from benchmarks.observe import VARIANTS, VariantRun, measure_interleaved

REQUESTS = 200

# variant: (spans per request, spans continuing the caller's trace,
#           access-log lines and metric counts per request, SLI requests stored)
EXPECTED = {
    "bare": (0, 0, 0, 0, None),
    "bare-tp": (0, 0, 0, 0, None),
    "sloguard-100": (1, 0, 1, 1, REQUESTS),
    "sloguard-100-tp": (1, REQUESTS, 1, 1, REQUESTS),
    "peer": (1, 0, 1, 1, None),
    "peer-default-spans": (3, 0, 1, 1, None),
    "peer-tp": (1, REQUESTS, 1, 1, None),
    "sloguard-100-no-tracing": (0, 0, 1, 1, REQUESTS),
    "sloguard-100-no-metrics": (1, 0, 1, 0, REQUESTS),
    "sloguard-100-no-access-log": (1, 0, 0, 1, REQUESTS),
    "sloguard-100-no-sli": (1, 0, 1, 1, 0),
}


def _finish_after_one_round(name: str) -> tuple[dict[str, Any], int, list[dict[str, Any]]]:
    run = VariantRun(name, REQUESTS)
    starts: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            starts.append(message)

    _, lines = run.round(send)
    return run.finish(), lines, starts


@pytest.mark.parametrize("name", [pytest.param(n, id=n) for n in EXPECTED])
def test_each_variant_traces_counts_and_logs_every_request(name: str) -> None:
    spans_per_request, continued, logged, counted, sli = EXPECTED[name]
    counters, lines, starts = _finish_after_one_round(name)
    assert [s["status"] for s in starts] == [200] * REQUESTS
    assert lines == logged * REQUESTS
    assert counters["spans_exported"] == spans_per_request * REQUESTS
    assert counters["spans_continuing_remote_parent"] == continued
    assert counters["metrics_requests_counted"] == counted * REQUESTS
    assert counters["sli_requests_stored"] == sli


@pytest.mark.parametrize("name", ["sloguard-100", "peer"])
def test_instrumented_variants_echo_a_fresh_request_id_per_request(name: str) -> None:
    _, _, starts = _finish_after_one_round(name)
    ids = [dict(s["headers"])[b"x-request-id"] for s in starts]
    assert len(set(ids)) == REQUESTS


def test_one_percent_sampling_traces_few_requests_but_counts_all() -> None:
    counters, lines, _ = _finish_after_one_round("sloguard-1")
    assert counters["spans_exported"] <= REQUESTS // 10
    assert counters["metrics_requests_counted"] == REQUESTS
    assert counters["sli_requests_stored"] == REQUESTS
    assert lines == REQUESTS


def test_every_variant_is_covered_by_the_smoke_test() -> None:
    assert {v.name for v in VARIANTS} == {*EXPECTED, "sloguard-1"}


def test_interleaved_rounds_run_each_variant_in_its_own_interpreter() -> None:
    results = measure_interleaved(["bare", "sloguard-100"], requests=50, rounds=1, progress=print)
    assert results["bare"]["access_log_lines_per_round"] == [0]
    assert results["sloguard-100"]["access_log_lines_per_round"] == [50]
    assert results["sloguard-100"]["spans_exported"] == 100  # warm-up round + 1 timed round
    assert results["sloguard-100"]["median_us"] > 0


WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:8000/items/42
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     5.86ms    1.10ms  30.00ms   90.00%
    Req/Sec     2.66k   100.00     2.80k    70.00%
  Latency Distribution
     50%    5.86ms
     75%    5.97ms
     90%    6.31ms
     99%   14.20ms
  53029 requests in 10.00s, 7.59MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   5302.94
Transfer/sec:    777.12KB
"""


def test_wrk_output_is_parsed_into_rate_latencies_and_errors() -> None:
    parsed = parse_wrk(WRK_OUTPUT)
    assert parsed["requests_per_s"] == 5302.94
    assert parsed["requests"] == 53029
    assert (parsed["p50_ms"], parsed["p99_ms"]) == (5.86, 14.2)
    assert (parsed["non_2xx"], parsed["socket_errors"]) == (4, 3)
