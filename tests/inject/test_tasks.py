"""asyncio task tracking: counts per coroutine, chained factories, slow steps logged with stacks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from sloguard.inject._explain import Outcome, Report
from sloguard.inject._tasks import TaskTracker, install_task_tracking, uninstall_task_tracking
from sloguard.settings import Settings

NAME = f"{__name__}.quick"


async def quick() -> int:
    await asyncio.sleep(0)
    return 1


async def broken() -> None:
    raise ValueError("broken")


async def forever() -> None:
    await asyncio.Event().wait()


async def blocking() -> None:
    time.sleep(0.15)  # the behaviour under test: a step that holds the loop


@pytest.fixture
def tracker() -> Iterator[TaskTracker]:
    tracker = TaskTracker(slow_step_ms=20.0)
    yield tracker
    tracker.close()


def run_tracked(tracker: TaskTracker, *coros: Any) -> list[Any]:
    async def main() -> list[Any]:
        tracker.install(asyncio.get_running_loop())
        tasks = [asyncio.create_task(coro) for coro in coros]
        await asyncio.sleep(0)
        for task in tasks:
            if task.get_coro().__qualname__ == "forever":
                task.cancel()
        return await asyncio.gather(*tasks, return_exceptions=True)

    return asyncio.run(main())


def test_tasks_are_counted_by_coroutine_name(tracker: TaskTracker) -> None:
    assert run_tracked(tracker, quick(), quick()) == [1, 1]
    stats = tracker.stats()[NAME]
    assert (stats.created, stats.completed, stats.live) == (2, 2, 0)
    assert stats.steps == 4


def test_failed_and_cancelled_tasks_are_counted_apart(tracker: TaskTracker) -> None:
    results = run_tracked(tracker, broken(), forever())
    assert isinstance(results[0], ValueError)
    assert isinstance(results[1], asyncio.CancelledError)
    stats = tracker.stats()
    assert stats[f"{__name__}.broken"].failed == 1
    assert stats[f"{__name__}.forever"].cancelled == 1


def test_the_task_still_looks_like_its_coroutine(tracker: TaskTracker) -> None:
    async def main() -> tuple[str, int]:
        tracker.install(asyncio.get_running_loop())
        task = asyncio.create_task(forever())
        await asyncio.sleep(0)
        frames = task.get_stack()
        task.cancel()
        return task.get_coro().__qualname__, len(frames)

    assert asyncio.run(main()) == ("forever", 1)


def test_an_existing_task_factory_is_chained(tracker: TaskTracker) -> None:
    seen: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        seen.append(coro.__qualname__)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def main() -> int:
        asyncio.get_running_loop().set_task_factory(factory)
        tracker.install(asyncio.get_running_loop())
        return await asyncio.create_task(quick())

    assert asyncio.run(main()) == 1
    assert seen[0] == "quick"  # then asyncio.run's own shutdown tasks
    assert tracker.stats()[NAME].completed == 1


def test_coroutine_names_beyond_the_limit_count_as_other() -> None:
    tracker = TaskTracker(max_coroutine_names=1)
    try:
        run_tracked(tracker, quick(), broken())
    finally:
        tracker.close()
    assert sorted(tracker.stats()) == ["other", NAME]


def test_a_slow_step_is_logged_with_the_blocking_stack(
    tracker: TaskTracker, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sloguard.inject.tasks"):
        run_tracked(tracker, blocking(), quick())
    (record,) = caplog.records
    assert record.coroutine == f"{__name__}.blocking"  # type: ignore[attr-defined]
    assert "stack while it held the loop" in record.getMessage()
    assert "time.sleep(0.15)" in record.getMessage()
    assert tracker.stats()[f"{__name__}.blocking"].slow_steps == 1


def test_slow_steps_of_one_coroutine_are_logged_once_per_interval(
    tracker: TaskTracker, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="sloguard.inject.tasks"):
        run_tracked(tracker, blocking(), blocking())
    assert len(caplog.records) == 1
    assert tracker.stats()[f"{__name__}.blocking"].slow_steps == 2


def test_install_hooks_new_loops_and_exports_metrics() -> None:
    registry = CollectorRegistry()
    report = Report()
    settings = Settings(inject={"tasks": {"enabled": True}})
    install_task_tracking(settings, report, registry=registry)
    labels = {"coroutine": NAME}
    try:
        assert asyncio.run(quick()) == 1
        assert registry.get_sample_value("sloguard_asyncio_tasks_completed_total", labels) == 1
        assert registry.get_sample_value("sloguard_asyncio_tasks_live", labels) == 0
    finally:
        uninstall_task_tracking()
    assert [e.target for e in report.entries() if e.outcome is Outcome.INSTRUMENTED] == [
        "asyncio tasks"
    ]


def test_uninstall_restores_the_event_loop_class() -> None:
    original = asyncio.BaseEventLoop.__init__
    install_task_tracking(Settings(), Report(), registry=CollectorRegistry())
    uninstall_task_tracking()
    assert asyncio.BaseEventLoop.__init__ is original
