"""asyncio task tracking: counts per coroutine, step timing and a slow-step detector.

The seeds' goroutine tracking, for asyncio. Off by default
(``inject.tasks.enabled``). A :class:`TaskTracker` installs a task factory
on a loop (chaining to the factory already there, such as 3.12's
``eager_task_factory``) that hands each task a thin proxy around its
coroutine. The task drives the proxy exactly as it would the coroutine
(``send``/``throw``), so the proxy sees every step of the task, in the loop's
own thread, and times it with two clock reads. That gives, per coroutine name:
tasks created, completed, cancelled and failed, live tasks, steps, time spent
in steps and between them, the longest step, and slow steps.

Why a coroutine proxy rather than wrapping ``Handle._run``: it costs nothing
for callbacks that are not task steps, it attributes each step to its task,
and it works on any loop whose ``create_task`` honours the task factory --
uvloop included -- where ``Handle`` belongs to the pure-Python loops only.
The price: ``task.get_coro()`` returns the proxy (its ``cr_*`` attributes,
``__name__`` and ``__qualname__`` are the coroutine's, so ``Task.get_stack``,
``print_stack`` and ``repr(task)`` are unchanged).

Slow steps: a step longer than ``slow_step_ms`` is over when the proxy sees
it, and by then its stack is gone. So a watchdog thread wakes every
``slow_step_ms / 2`` and, when the loop's current step has run past the
threshold, samples the loop thread's stack (``sys._current_frames``); the
proxy logs it (logger ``sloguard.inject.tasks``) when the step ends, with the
coroutine name and the step's duration -- at most once per coroutine name per
``slow_step_log_interval_s``. A step shorter than two sampling periods may be
caught by no sample; its log line then shows where the task is suspended now.

Label cardinality is bounded: after ``max_coroutine_names`` distinct names,
new ones are counted as ``other``.
"""

from __future__ import annotations

import asyncio
import collections.abc
import contextlib
import logging
import sys
import threading
import traceback
import weakref
from collections.abc import Callable, Coroutine, Generator, Iterator
from time import monotonic, perf_counter_ns
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

if TYPE_CHECKING:
    from sloguard.inject._rewrite_loader import ReportSink
    from sloguard.settings import Settings
    from sloguard.settings._inject_trace import TaskSettings

__all__ = ["CoroutineStats", "TaskTracker", "install_task_tracking", "uninstall_task_tracking"]

_log = logging.getLogger("sloguard.inject.tasks")
OTHER = "other"
TaskFactory = Callable[..., "asyncio.Future[Any]"]


class CoroutineStats:
    """Plain counters for one coroutine name, updated in the loop thread."""

    __slots__ = (
        "cancelled",
        "completed",
        "created",
        "failed",
        "last_logged",
        "name",
        "slow_steps",
        "step_ns",
        "step_ns_max",
        "steps",
        "wait_ns",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.created = self.completed = self.cancelled = self.failed = 0
        self.steps = self.step_ns = self.step_ns_max = self.wait_ns = self.slow_steps = 0
        self.last_logged = -1e18

    @property
    def live(self) -> int:
        return self.created - self.completed - self.cancelled - self.failed


class _LoopWatch:
    """What one loop is running right now, shared with the watchdog thread."""

    __slots__ = ("running", "sampled_for", "sampled_stack", "started", "thread_id")

    def __init__(self) -> None:
        self.thread_id = 0
        self.running: _TrackedCoroutine | None = None
        self.started = 0
        self.sampled_for = 0
        self.sampled_stack = ""


class _TrackedCoroutine(collections.abc.Coroutine[Any, Any, Any]):
    """A task's coroutine, timed step by step; everything else is the coroutine's."""

    __slots__ = ("_coro", "_last_end", "_stats", "_tracker", "_watch")

    def __init__(
        self, coro: Coroutine[Any, Any, Any], stats: CoroutineStats, watch: _LoopWatch,
        tracker: TaskTracker,
    ) -> None:  # fmt: skip
        self._coro = coro
        self._stats = stats
        self._watch = watch
        self._tracker = tracker
        self._last_end = 0

    def send(self, value: Any) -> Any:
        return self._step(self._coro.send, value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        if val is None and tb is None:
            return self._step(self._coro.throw, typ)
        return self._step(lambda _: self._coro.throw(typ, val, tb), None)  # legacy signature

    def close(self) -> None:
        self._coro.close()

    def __await__(self) -> Generator[Any, None, Any]:
        return self._coro.__await__()

    def __getattr__(self, name: str) -> Any:  # cr_frame, cr_code, __qualname__ ...
        return getattr(self._coro, name)

    def __repr__(self) -> str:
        return repr(self._coro)

    def _step(self, resume: Callable[[Any], Any], value: Any) -> Any:
        watch, stats = self._watch, self._stats
        outer_running, outer_started = watch.running, watch.started  # an eager task nests
        if not watch.thread_id:
            watch.thread_id = threading.get_ident()
        start = perf_counter_ns()
        if self._last_end:
            stats.wait_ns += start - self._last_end
        watch.running, watch.started = self, start
        try:
            return resume(value)
        except StopIteration:
            stats.completed += 1
            raise
        except asyncio.CancelledError:
            stats.cancelled += 1
            raise
        except BaseException:
            stats.failed += 1
            raise
        finally:
            end = self._last_end = perf_counter_ns()
            watch.running, watch.started = outer_running, outer_started
            elapsed = end - start
            stats.steps += 1
            stats.step_ns += elapsed
            stats.step_ns_max = max(stats.step_ns_max, elapsed)
            if elapsed >= self._tracker.slow_step_ns:
                self._tracker._slow_step(self, elapsed, start)


class TaskTracker:
    """Counts tasks and times their steps on the loops it is installed on."""

    def __init__(
        self,
        *,
        slow_step_ms: float = 100.0,
        max_coroutine_names: int = 200,
        slow_step_log_interval_s: float = 1.0,
        clock: Callable[[], float] = monotonic,
    ) -> None:
        self.slow_step_ns = round(slow_step_ms * 1_000_000)
        self.max_coroutine_names = max_coroutine_names
        self.log_interval = slow_step_log_interval_s
        self._clock = clock
        self._stats: dict[str, CoroutineStats] = {}
        self._names: dict[object, CoroutineStats] = {}  # code object -> stats
        self._watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopWatch] = (
            weakref.WeakKeyDictionary()
        )
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None

    @classmethod
    def from_settings(cls, settings: TaskSettings) -> TaskTracker:
        return cls(
            slow_step_ms=settings.slow_step_ms,
            max_coroutine_names=settings.max_coroutine_names,
            slow_step_log_interval_s=settings.slow_step_log_interval_s,
        )

    # -- installing -------------------------------------------------------------------------

    def install(self, loop: asyncio.AbstractEventLoop) -> None:
        """Track the tasks ``loop`` creates from now on; idempotent."""
        if loop in self._watches:
            return
        watch = self._watches[loop] = _LoopWatch()
        previous: TaskFactory | None = loop.get_task_factory()

        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
            if isinstance(coro, Coroutine) and not isinstance(coro, _TrackedCoroutine):
                coro = _TrackedCoroutine(coro, self._stats_for(coro), watch, self)
                coro._stats.created += 1
            if previous is not None:
                return previous(loop, coro, **kwargs)
            return asyncio.Task(coro, loop=loop, **kwargs)

        factory.__sloguard_previous__ = previous  # type: ignore[attr-defined]
        loop.set_task_factory(factory)
        self._start_watchdog()

    def uninstall(self, loop: asyncio.AbstractEventLoop) -> None:
        """Give ``loop`` its previous task factory back."""
        if self._watches.pop(loop, None) is None:
            return
        factory = loop.get_task_factory()
        loop.set_task_factory(getattr(factory, "__sloguard_previous__", None))

    def close(self) -> None:
        """Stop the watchdog thread."""
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=5.0)
            self._watchdog = None

    # -- reading ----------------------------------------------------------------------------

    def stats(self) -> dict[str, CoroutineStats]:
        """The counters by coroutine name (live objects: read, do not keep)."""
        return dict(self._stats)

    def collector(self) -> TaskCollector:
        return TaskCollector(self)

    # -- internals --------------------------------------------------------------------------

    def _stats_for(self, coro: Coroutine[Any, Any, Any]) -> CoroutineStats:
        code = getattr(coro, "cr_code", None) or type(coro)
        stats = self._names.get(code)
        if stats is None:
            name = _coroutine_name(coro)
            stats = self._stats.get(name)
            if stats is None:
                if len(self._stats) >= self.max_coroutine_names:
                    name = OTHER
                stats = self._stats.setdefault(name, CoroutineStats(name))
            if len(self._names) < 4 * self.max_coroutine_names:
                self._names[code] = stats
        return stats

    def _slow_step(self, coro: _TrackedCoroutine, elapsed_ns: int, started: int) -> None:
        stats, watch = coro._stats, coro._watch
        stats.slow_steps += 1
        now = self._clock()
        if now - stats.last_logged < self.log_interval:
            return
        stats.last_logged = now
        if watch.sampled_for == started:
            where = "stack while it held the loop:\n" + watch.sampled_stack
        else:
            frame = getattr(coro._coro, "cr_frame", None)
            stack = "".join(traceback.format_stack(frame)) if frame is not None else "(finished)\n"
            where = "not sampled while running; the task is now at:\n" + stack
        _log.warning(
            "asyncio task step of %s held the event loop for %.1f ms (slow_step_ms=%g); %s",
            stats.name,
            elapsed_ns / 1e6,
            self.slow_step_ns / 1e6,
            where.rstrip("\n"),
            extra={"coroutine": stats.name, "step_ms": round(elapsed_ns / 1e6, 3)},
        )

    def _start_watchdog(self) -> None:
        if self._watchdog is not None:
            return
        self._stop.clear()
        self._watchdog = threading.Thread(
            target=self._watch_loops, name="sloguard-task-watchdog", daemon=True
        )
        self._watchdog.start()

    def _watch_loops(self) -> None:
        interval = self.slow_step_ns / 2e9
        while not self._stop.wait(interval):
            for watch in list(self._watches.values()):
                started = watch.started
                if not started or watch.sampled_for == started:
                    continue
                if perf_counter_ns() - started < self.slow_step_ns:
                    continue
                frame = sys._current_frames().get(watch.thread_id)
                if frame is None:
                    continue
                stack = "".join(traceback.format_stack(frame))
                if watch.started == started:  # still the same step
                    watch.sampled_stack = stack
                    watch.sampled_for = started


def _coroutine_name(coro: Coroutine[Any, Any, Any]) -> str:
    qualname = getattr(coro, "__qualname__", None) or type(coro).__qualname__
    frame = getattr(coro, "cr_frame", None)
    module = frame.f_globals.get("__name__") if frame is not None else None
    return f"{module}.{qualname}" if module else str(qualname)


class TaskCollector(Collector):
    """Prometheus view of a tracker's counters, read at scrape time."""

    def __init__(self, tracker: TaskTracker) -> None:
        self._tracker = tracker

    def collect(self) -> Iterator[Metric]:
        stats = sorted(self._tracker.stats().items())
        for kind, name, help_text, read in _FAMILIES:
            family = kind(name, help_text, labels=["coroutine"])
            for coroutine, one in stats:
                family.add_metric([coroutine], read(one))
            yield family


_Family = tuple[
    type[CounterMetricFamily] | type[GaugeMetricFamily], str, str, Callable[[CoroutineStats], float]
]
_FAMILIES: tuple[_Family, ...] = (
    (GaugeMetricFamily, "sloguard_asyncio_tasks_live", "Tasks not finished yet", lambda s: s.live),
    (CounterMetricFamily, "sloguard_asyncio_tasks_created", "Tasks created", lambda s: s.created),
    (CounterMetricFamily, "sloguard_asyncio_tasks_completed", "Tasks that returned",
     lambda s: s.completed),
    (CounterMetricFamily, "sloguard_asyncio_tasks_cancelled", "Tasks cancelled",
     lambda s: s.cancelled),
    (CounterMetricFamily, "sloguard_asyncio_tasks_failed", "Tasks that raised", lambda s: s.failed),
    (CounterMetricFamily, "sloguard_asyncio_task_steps", "Task steps run", lambda s: s.steps),
    (CounterMetricFamily, "sloguard_asyncio_task_step_seconds", "Time task steps held the loop",
     lambda s: s.step_ns / 1e9),
    (CounterMetricFamily, "sloguard_asyncio_task_wait_seconds", "Time between a task's steps",
     lambda s: s.wait_ns / 1e9),
    (GaugeMetricFamily, "sloguard_asyncio_task_step_max_seconds", "Longest task step",
     lambda s: s.step_ns_max / 1e9),
    (CounterMetricFamily, "sloguard_asyncio_task_slow_steps", "Task steps over slow_step_ms",
     lambda s: s.slow_steps),
)  # fmt: skip


# -- the bootstrap's entry point ------------------------------------------------------------

_installed: tuple[TaskTracker, Callable[..., None], CollectorRegistry, TaskCollector] | None = None


def install_task_tracking(
    settings: Settings, report: ReportSink, *, registry: CollectorRegistry | None = None
) -> TaskTracker:
    """Track tasks on every asyncio loop created from now on (and on the running one)."""
    global _installed
    from prometheus_client import REGISTRY

    uninstall_task_tracking()
    tracker = TaskTracker.from_settings(settings.inject.tasks)
    registry = registry if registry is not None else REGISTRY
    collector = tracker.collector()
    registry.register(collector)
    original_init = asyncio.BaseEventLoop.__init__

    def init_and_track(loop: asyncio.BaseEventLoop, *args: Any, **kwargs: Any) -> None:
        original_init(loop, *args, **kwargs)
        tracker.install(loop)

    asyncio.BaseEventLoop.__init__ = init_and_track  # type: ignore[method-assign,assignment]
    _installed = (tracker, original_init, registry, collector)
    with contextlib.suppress(RuntimeError):  # no loop yet: the usual case under `sloguard run`
        tracker.install(asyncio.get_running_loop())
    report.instrumented(
        "asyncio tasks",
        f"task factory on each new event loop; steps over {tracker.slow_step_ns / 1e6:g} ms "
        "logged by sloguard.inject.tasks",
    )
    if "uvloop" in sys.modules or _importable("uvloop"):
        report.skipped(
            "uvloop", "uvloop loops are not hooked at creation: TaskTracker.install(loop)"
        )
    return tracker


def uninstall_task_tracking() -> None:
    """Undo :func:`install_task_tracking` (loops already hooked keep counting)."""
    global _installed
    if _installed is None:
        return
    tracker, original_init, registry, collector = _installed
    asyncio.BaseEventLoop.__init__ = original_init  # type: ignore[method-assign]
    registry.unregister(collector)
    tracker.close()
    _installed = None


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None
