"""Prometheus metrics and log lines for circuit breakers.

:class:`BreakerMetrics` watches breakers (one, a backend, or a whole
:class:`~sloguard.resilience._breaker.BreakerRegistry`, including breakers it
creates later) and exposes, in the given ``CollectorRegistry``:

``sloguard_breaker_state{breaker, state}``
    1 for the breaker's current state, 0 for the other two. One-hot with a
    ``state`` label, as resilience4j's ``resilience4j_circuitbreaker_state``
    and kube-state-metrics' phases do, because that is what Grafana users
    already query: ``sloguard_breaker_state{state="open"} == 1`` alerts
    without a magic number, ``sum by (state)`` counts breakers per state,
    and a state-timeline panel maps the label to colours directly.
``sloguard_breaker_transitions_total{breaker, from, to, reason}``
    counted by a listener (transitions are rare).
``sloguard_breaker_calls_total{breaker, outcome}`` and ``sloguard_breaker_rejected_total{breaker}``
    read at scrape time from the totals the backend's core already keeps
    (``snapshot()``), not incremented per call: a labelled
    ``prometheus_client`` counter takes its own lock on every ``inc()``, which
    costs about as much as the whole breaker (see ``benchmarks/breaker.py``).
    Backends without ``snapshot()`` export state and transitions only.

Every transition is also logged on the ``sloguard.resilience`` logger with
the fields ``breaker``, ``from``, ``to`` and ``reason`` (WARNING when a
breaker opens, INFO otherwise).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol, runtime_checkable

from prometheus_client import REGISTRY, CollectorRegistry, Counter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from sloguard.resilience._breaker import BreakerRegistry, CircuitBreaker
from sloguard.resilience._core import BreakerSnapshot
from sloguard.resilience._types import BreakerBackend, BreakerState, Outcome, Transition

__all__ = ["BreakerMetrics", "log_transition"]

logger = logging.getLogger("sloguard.resilience")

_STATES = tuple(BreakerState)
_OUTCOMES = tuple(Outcome)


@runtime_checkable
class _Snapshotting(Protocol):
    def snapshot(self) -> BreakerSnapshot: ...


def log_transition(transition: Transition) -> None:
    """One structured log line per transition (a listener)."""
    level = logging.WARNING if transition.new is BreakerState.OPEN else logging.INFO
    logger.log(
        level,
        "breaker %s: %s -> %s (%s)",
        transition.name,
        transition.old.value,
        transition.new.value,
        transition.reason,
        extra={
            "breaker": transition.name,
            "from": transition.old.value,
            "to": transition.new.value,
            "reason": transition.reason,
            "source": transition.source,
        },
    )


class BreakerMetrics:
    """Breaker metrics in a Prometheus registry; see the module docstring."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY, *, log: bool = True) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._backends: dict[str, BreakerBackend] = {}
        self._registries: list[BreakerRegistry] = []
        self._transitions = Counter(
            "sloguard_breaker_transitions",
            "Circuit breaker state changes.",
            ["breaker", "from", "to", "reason"],
            registry=registry,
        )
        self._collector = _BreakerCollector(self._watched)
        if registry is not None:
            registry.register(self._collector)

    @property
    def collector(self) -> Collector:
        return self._collector

    def watch(self, target: CircuitBreaker | BreakerBackend | BreakerRegistry) -> None:
        """Export ``target``'s breakers (a registry's future ones too)."""
        if isinstance(target, BreakerRegistry):
            with self._lock:
                self._registries.append(target)
            target.add_listener(self.on_transition)
            return
        backend = target.backend if isinstance(target, CircuitBreaker) else target
        with self._lock:
            self._backends[backend.name] = backend
        backend.add_listener(self.on_transition)

    def on_transition(self, transition: Transition) -> None:
        self._transitions.labels(
            transition.name, transition.old.value, transition.new.value, transition.reason
        ).inc()
        if self._log:
            log_transition(transition)

    def _watched(self) -> Iterator[BreakerBackend]:
        with self._lock:
            backends = dict(self._backends)
            registries = list(self._registries)
        for registry in registries:
            for breaker in registry.breakers():
                backends.setdefault(breaker.name, breaker.backend)
        return iter(backends.values())


class _BreakerCollector(Collector):
    def __init__(self, watched: Callable[[], Iterator[BreakerBackend]]) -> None:
        self._watched = watched

    def collect(self) -> Iterable[Metric]:
        state = GaugeMetricFamily(
            "sloguard_breaker_state",
            "Circuit breaker state, one-hot: 1 for the current state.",
            labels=["breaker", "state"],
        )
        calls = CounterMetricFamily(
            "sloguard_breaker_calls",
            "Calls through a circuit breaker by outcome.",
            labels=["breaker", "outcome"],
        )
        rejected = CounterMetricFamily(
            "sloguard_breaker_rejected",
            "Calls a circuit breaker refused (open, or half-open with no probe slot).",
            labels=["breaker"],
        )
        for backend in self._watched():
            if isinstance(backend, _Snapshotting):
                snapshot = backend.snapshot()
                current = snapshot.state
                totals = {
                    Outcome.SUCCESS: snapshot.successes_total,
                    Outcome.FAILURE: snapshot.failures_total,
                    Outcome.IGNORED: snapshot.ignored_total,
                }
                for outcome in _OUTCOMES:
                    calls.add_metric([backend.name, outcome.value], totals[outcome])
                rejected.add_metric([backend.name], snapshot.rejected_total)
            else:
                current = backend.state
            for each in _STATES:
                state.add_metric([backend.name, each.value], 1.0 if each is current else 0.0)
        return [state, calls, rejected]
