"""The background flusher: retries, logging, close, atexit and forks."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

from sloguard.sli import SLIFlusher, SLIRecorder, merge_rows
from sloguard.slo.spec import SLOSpec
from sloguard.store import BucketRow, SQLiteStore, StoreLockedError

API = SLOSpec(name="api")
NOW = 1_700_000_040.0  # minute 28_333_334


class FlakySink:
    """A store that fails its first ``failures`` writes, then keeps what it is given."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.rows: list[BucketRow] = []
        self.written = threading.Event()
        self.closed = False

    def add(self, rows: Iterable[BucketRow]) -> int:
        if self.failures:
            self.failures -= 1
            raise StoreLockedError("database is locked", path="fake.db", code="SQLITE_BUSY")
        batch = list(rows)
        self.rows.extend(batch)
        self.written.set()
        return len(batch)

    def close(self) -> None:
        self.closed = True


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def total(rows: Iterable[BucketRow]) -> int:
    return sum(row.total for row in rows)


@pytest.fixture
def recorder() -> SLIRecorder:
    return SLIRecorder([API])


@pytest.fixture
def flushers() -> Iterator[list[SLIFlusher]]:
    made: list[SLIFlusher] = []
    yield made
    for flusher in made:
        flusher.close()


def flusher_for(
    recorder: SLIRecorder, sink: FlakySink, made: list[SLIFlusher], **kwargs: object
) -> SLIFlusher:
    flusher = SLIFlusher(recorder, "unused.db", store_factory=lambda path: sink, **kwargs)  # type: ignore[arg-type]
    made.append(flusher)
    return flusher


def test_flush_writes_what_was_recorded_into_the_store(
    recorder: SLIRecorder, tmp_path: Path
) -> None:
    flusher = SLIFlusher(recorder, tmp_path / "sli.db")
    recorder.record("/a", "GET", 200, 0.01, None, NOW)
    recorder.record("/a", "GET", 500, 0.01, "E_1", NOW)
    assert flusher.flush() == 2
    assert flusher.flush() == 0
    flusher.close()
    with SQLiteStore(tmp_path / "sli.db") as store:
        assert store.totals("api", 28_333_334, 28_333_335) == (1, 2)


def test_a_failed_write_keeps_the_rows_and_the_next_flush_writes_them_all(
    recorder: SLIRecorder, flushers: list[SLIFlusher]
) -> None:
    sink = FlakySink(failures=2)
    flusher = flusher_for(recorder, sink, flushers)
    recorder.record("/a", "GET", 200, 0.01, None, NOW)
    assert flusher.flush() == 0
    recorder.record("/a", "GET", 200, 0.01, None, NOW)
    recorder.record("/b", "GET", 200, 0.01, None, NOW)
    assert flusher.flush() == 0
    assert flusher.pending == 2
    assert flusher.flush() == 2
    assert total(sink.rows) == 3
    assert flusher.pending == 0


def test_a_store_that_cannot_be_opened_is_retried_at_the_next_flush(
    recorder: SLIRecorder, flushers: list[SLIFlusher]
) -> None:
    sink, attempts = FlakySink(), []

    def open_store(path: Path) -> FlakySink:
        attempts.append(path)
        if len(attempts) == 1:
            raise OSError("disk on fire")
        return sink

    flusher = SLIFlusher(recorder, "x.db", store_factory=open_store)
    flushers.append(flusher)
    recorder.record("/a", "GET", 200, 0.01, None, NOW)
    assert flusher.flush() == 0
    assert flusher.flush() == 1
    assert total(sink.rows) == 1
    assert attempts == [Path("x.db"), Path("x.db")]


def test_store_failures_are_logged_at_most_once_per_interval(
    recorder: SLIRecorder, flushers: list[SLIFlusher], caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    flusher = flusher_for(recorder, FlakySink(failures=9), flushers, interval_s=5.0, clock=clock)
    recorder.record("/a", "GET", 200, 0.01, None, NOW)
    logged_so_far = []
    with caplog.at_level(logging.WARNING, logger="sloguard.sli"):
        for now in (0.0, 1.0, 4.9, 5.0, 6.0, 10.5):
            clock.now = now
            flusher.flush()
            logged_so_far.append(len(caplog.records))
    assert logged_so_far == [1, 1, 1, 2, 2, 3]
    assert all("locked" in record.getMessage() for record in caplog.records)


def test_close_flushes_the_remainder_closes_the_store_and_is_idempotent(
    recorder: SLIRecorder,
) -> None:
    sink = FlakySink()
    flusher = SLIFlusher(recorder, "x.db", interval_s=3600, store_factory=lambda path: sink)
    flusher.start()
    recorder.record("/a", "GET", 200, 0.01, None, NOW)
    flusher.close()
    flusher.close()
    assert total(sink.rows) == 1
    assert sink.closed
    assert not flusher.running


def test_a_closed_flusher_cannot_be_started_again(recorder: SLIRecorder) -> None:
    flusher = SLIFlusher(recorder, "x.db", store_factory=lambda path: FlakySink())
    flusher.close()
    with pytest.raises(RuntimeError, match="closed"):
        flusher.start()


def test_rows_still_failing_at_close_are_reported_as_lost(
    recorder: SLIRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    sink = FlakySink(failures=99)
    flusher = SLIFlusher(recorder, "x.db", store_factory=lambda path: sink)
    recorder.record("/a", "GET", 200, 0.01, None, NOW)
    with caplog.at_level(logging.WARNING, logger="sloguard.sli"):
        flusher.close()
    assert [r.levelname for r in caplog.records] == ["WARNING", "ERROR"]
    assert "1 SLI bucket rows could not be written" in caplog.records[-1].getMessage()


def test_the_thread_flushes_every_interval_without_being_asked(
    recorder: SLIRecorder, flushers: list[SLIFlusher]
) -> None:
    sink = FlakySink()
    flusher = flusher_for(recorder, sink, flushers, interval_s=0.01)
    recorder.record("/a", "GET", 200, 0.01, None, NOW)
    flusher.start()
    assert sink.written.wait(timeout=10)
    assert total(sink.rows) == 1


def test_start_is_idempotent(recorder: SLIRecorder, flushers: list[SLIFlusher]) -> None:
    flusher = flusher_for(recorder, FlakySink(), flushers, interval_s=3600)
    before = threading.active_count()
    flusher.start()
    flusher.start()
    assert flusher.running
    assert threading.active_count() == before + 1


def test_merging_rows_sums_the_counts_of_each_bucket() -> None:
    a = BucketRow("api", 1, "/a", "2xx", "", 1, 2)
    b = BucketRow("api", 1, "/b", "2xx", "", 3, 3)
    assert merge_rows([a, b], [a]) == [BucketRow("api", 1, "/a", "2xx", "", 2, 4), b]


GRACEFUL_EXIT = """
import sys
from sloguard.sli import SLIFlusher, SLIRecorder
from sloguard.slo.spec import SLOSpec
recorder = SLIRecorder([SLOSpec(name="api")])
SLIFlusher(recorder, sys.argv[1], interval_s=3600).start()
recorder.record("/a", "GET", 200, 0.01, None, 60.0)
"""


def test_a_graceful_exit_flushes_through_atexit(tmp_path: Path) -> None:
    path = tmp_path / "sli.db"
    subprocess.run([sys.executable, "-c", GRACEFUL_EXIT, str(path)], check=True, timeout=60)
    with SQLiteStore(path) as store:
        assert store.totals("api", 1, 2) == (1, 1)


needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# Python 3.12+ warns about forking while other threads run (the flusher's own).
threads_may_run = pytest.mark.filterwarnings("ignore:This process:DeprecationWarning")


def wait_for_child(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@needs_fork
@threads_may_run
def test_a_forked_child_flushes_only_its_own_counts_on_a_fresh_thread(
    recorder: SLIRecorder, tmp_path: Path
) -> None:
    flusher = SLIFlusher(recorder, tmp_path / "sli.db", interval_s=3600)
    flusher.start()
    recorder.record("/a", "GET", 200, 0.01, None, NOW)
    recorder.record("/a", "GET", 200, 0.01, None, NOW)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            fresh = flusher.running and recorder.pending() == 0
            recorder.record("/a", "GET", 500, 0.01, None, NOW)
            flusher.close()
            code = 0 if fresh else 2
        finally:
            os._exit(code)
    assert wait_for_child(pid) == 0
    flusher.close()
    with SQLiteStore(tmp_path / "sli.db") as store:
        assert store.totals("api", 0, 10**9) == (2, 3)


@needs_fork
@threads_may_run
def test_a_forked_child_drops_the_rows_its_parent_keeps_for_retry(recorder: SLIRecorder) -> None:
    sink = FlakySink(failures=1)
    flusher = SLIFlusher(recorder, "x.db", store_factory=lambda path: sink)
    recorder.record("/a", "GET", 200, 0.01, None, NOW)
    flusher.flush()
    pid = os.fork()
    if pid == 0:
        try:
            os._exit(0 if flusher.pending == 0 and flusher.flush() == 0 else 2)
        finally:
            os._exit(1)
    assert wait_for_child(pid) == 0
    assert flusher.pending == 1
    flusher.close()
    assert total(sink.rows) == 1
