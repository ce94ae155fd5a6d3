"""Connections per thread and per process: never shared, never carried across a fork."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from sloguard.store import BucketRow, SQLiteStore

ROW = BucketRow("api", 100, "/a", "2xx", "", 1, 1)
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
# Python 3.12+ warns about forking while other threads run (session fixtures may run some).
threads_may_run = pytest.mark.filterwarnings("ignore:This process:DeprecationWarning")


def connection_id(store: SQLiteStore) -> int:
    with store._pool.connection() as conn:
        return id(conn)


def run_in_threads(count: int, target: object) -> None:
    threads = [threading.Thread(target=target) for _ in range(count)]  # type: ignore[arg-type]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def test_each_thread_uses_its_own_connection_and_keeps_it(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "sli.db")
    seen: list[tuple[int, int]] = []
    barrier = threading.Barrier(4)

    def use_twice() -> None:
        first = connection_id(store)
        barrier.wait()  # all four connections are alive at once, so ids cannot be reused
        seen.append((first, connection_id(store)))

    run_in_threads(4, use_twice)
    assert all(first == second for first, second in seen)
    assert len({first for first, _ in seen}) == 4


def test_writes_from_eight_threads_at_once_all_land(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "sli.db")
    barrier = threading.Barrier(8)

    def write() -> None:
        barrier.wait()
        for _ in range(40):
            store.add([ROW, BucketRow("api", 101, "/b", "5xx", "E", 0, 2)])

    run_in_threads(8, write)
    assert store.totals("api", 0, 1000) == (320, 960)


def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    first, second = SQLiteStore(tmp_path / "sli.db"), SQLiteStore(tmp_path / "sli.db")
    first.add([ROW])
    second.add([ROW])
    assert first.totals("api", 0, 1000) == second.totals("api", 0, 1000) == (2, 2)


@needs_fork
@threads_may_run
def test_a_forked_child_writes_through_a_fresh_connection_and_the_parent_reads_it(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "sli.db")
    store.add([ROW])
    parent_connection = connection_id(store)
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        code = 1
        try:
            fresh = connection_id(store) != parent_connection
            code = 0 if fresh and store.add([ROW]) == 1 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    store.add([ROW])  # the parent's store still works after the fork
    assert store.totals("api", 0, 1000) == (3, 3)


@needs_fork
@threads_may_run
def test_a_fork_never_hands_the_child_a_connection_open_in_the_parent(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "sli.db")
    store.add([ROW])
    pid = os.fork()
    if pid == 0:
        try:
            inherited = list(store._pool._connections)
            os._exit(0 if not inherited else 1)
        finally:
            os._exit(3)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
