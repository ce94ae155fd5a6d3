"""Several worker processes flushing into one store file at the same time."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

from sloguard.sli import SLIFlusher, SLIRecorder
from sloguard.slo.spec import SLOKind, SLOSpec
from sloguard.store import SQLiteStore

SLOS = (
    SLOSpec(name="availability"),
    SLOSpec(name="latency", kind=SLOKind.LATENCY, threshold_ms=200, routes=("/api/**",)),
)
ROUTES = ("/api/items", "/api/items/{id}", "/health")
START = 1_700_000_040.0  # minute 28_333_334
WORKERS, REQUESTS = 4, 6_000


def request(i: int) -> tuple[str, str, int, float, str | None, float]:
    """The i-th request every worker sends: spread over routes, statuses, minutes."""
    status = 503 if i % 7 == 0 else 200
    return (
        ROUTES[i % 3],
        "GET",
        status,
        (i % 5) * 0.1,
        "E" if status > 499 else None,
        START + i / 50,
    )


def record_and_flush(path: str, start: Any) -> None:
    recorder = SLIRecorder(SLOS)
    flusher = SLIFlusher(recorder, path, interval_s=0.002)  # flush often, so writers collide
    start.wait()
    flusher.start()
    for i in range(REQUESTS):
        recorder.record(*request(i))
        if i % 100 == 0:  # and from this thread too, racing the flusher thread
            flusher.flush()
    flusher.close()


def test_four_processes_flushing_into_one_file_count_every_request_exactly(
    tmp_path: Path,
) -> None:
    path = str(tmp_path / "sli.db")
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WORKERS)
    workers = [context.Process(target=record_and_flush, args=(path, start)) for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0] * WORKERS
    good_latency = sum(
        1 for i in range(REQUESTS) if request(i)[0] != "/health" and request(i)[3] * 1000 <= 200
    )
    with SQLiteStore(path) as store:
        assert store.totals("availability", 0, 10**9) == (
            WORKERS * sum(1 for i in range(REQUESTS) if request(i)[2] < 500),
            WORKERS * REQUESTS,
        )
        assert store.totals("latency", 0, 10**9) == (
            WORKERS * good_latency,
            WORKERS * sum(1 for i in range(REQUESTS) if request(i)[0] != "/health"),
        )
        assert len(store.series("availability", 0, 10**9)) == 2
