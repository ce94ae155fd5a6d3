"""Counting finished requests against SLOs, in memory, on the request path.

:meth:`SLIRecorder.record` runs once per request in every worker thread, so it
does no I/O and keeps its work to a few C-level operations: one cached
classification, one tuple key and one dict increment under an uncontended lock
(a lock, not a lock-free trick, because the count must stay exact while the
flusher drains from another thread).

The key is not per SLO. It is ``(minute, route, method, status_class,
error_code, band)``, where ``band`` says how many of the configured latency
thresholds the request exceeded. That single key carries everything every SLO
needs: availability is good unless the status class is ``5xx``, and a latency
SLO whose threshold has rank ``r`` among the sorted thresholds is good when
``band <= r``. :meth:`SLIRecorder.drain` expands the keys into per-SLO
:class:`~sloguard.store.BucketRow` values, off the request path.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from bisect import bisect_right
from collections.abc import Sequence
from typing import Final

from sloguard.sli._classifier import SLIClassifier
from sloguard.slo.spec import SLOKind, SLOSpec
from sloguard.store import BucketRow

__all__ = ["STATUS_CLASSES", "SLIRecorder", "status_class"]

# Index by status code. Anything outside 100-599 is not a valid HTTP status:
# the server failed to produce a response, so it counts as a server error.
STATUS_CLASSES: Final[tuple[str, ...]] = tuple(
    f"{code // 100}xx" if code >= 100 else "5xx" for code in range(600)
)

_Key = tuple[int, str, str, str, str | None, int]


def status_class(status: int) -> str:
    """``"1xx"`` .. ``"5xx"``; invalid codes count as ``"5xx"``."""
    return STATUS_CLASSES[status] if 0 <= status < 600 else "5xx"


class SLIRecorder:
    """Aggregates request outcomes per SLO and minute until drained."""

    __slots__ = ("__weakref__", "_classifier", "_counts", "_lock", "_ranks", "_thresholds")

    def __init__(self, slos: Sequence[SLOSpec], *, classifier: SLIClassifier | None = None) -> None:
        self._classifier = classifier if classifier is not None else SLIClassifier(slos)
        if classifier is not None and tuple(slos) != classifier.slos:
            raise ValueError("the classifier was built for other SLOs")
        # A request with duration d (ms) is good for threshold t when d <= t,
        # i.e. when d < nextafter(t, inf); bisect_right over the bumped
        # thresholds counts the thresholds exceeded, and a NaN duration
        # exceeds all of them, as `nan <= t` is false.
        bumped = sorted(
            {
                math.nextafter(slo.threshold_ms, math.inf)
                for slo in self._classifier.slos
                if slo.kind is SLOKind.LATENCY and slo.threshold_ms is not None
            }
        )
        self._thresholds: tuple[float, ...] = tuple(bumped)
        self._ranks: tuple[int | None, ...] = tuple(
            bumped.index(math.nextafter(slo.threshold_ms, math.inf))
            if slo.kind is SLOKind.LATENCY and slo.threshold_ms is not None
            else None
            for slo in self._classifier.slos
        )
        self._lock = threading.Lock()
        self._counts: dict[_Key, int] = {}
        _RECORDERS.add(self)

    @property
    def slos(self) -> tuple[SLOSpec, ...]:
        return self._classifier.slos

    @property
    def classifier(self) -> SLIClassifier:
        return self._classifier

    def record(
        self,
        route: str,
        method: str,
        status: int,
        duration_s: float,
        error_code: str | None,
        now: float,
    ) -> None:
        """Count one finished request. No I/O; safe from any thread.

        ``route`` is the route template (bounded cardinality, never the raw
        path), ``now`` the wall-clock time in unix seconds, passed in so that
        callers and tests own the clock.
        """
        if not self._classifier.match(route, method):
            return
        klass = STATUS_CLASSES[status] if 0 <= status < 600 else "5xx"
        key = (
            int(now // 60),
            route,
            method,
            klass,
            error_code,
            bisect_right(self._thresholds, duration_s * 1000.0),
        )
        with self._lock:
            counts = self._counts
            counts[key] = counts.get(key, 0) + 1

    def drain(self) -> list[BucketRow]:
        """Everything counted since the last drain, as bucket rows; the counts restart at zero."""
        with self._lock:
            counts, self._counts = self._counts, {}
        match = self._classifier.match
        ranks = self._ranks
        cells: dict[tuple[int, int, str, str, str], list[int]] = {}
        for (minute, route, method, klass, error_code, band), n in counts.items():
            available = klass != "5xx"
            for index in match(route, method):
                rank = ranks[index]
                cell_key = (index, minute, route, klass, error_code or "")
                cell = cells.get(cell_key)
                if cell is None:
                    cells[cell_key] = cell = [0, 0]
                good = available if rank is None else band <= rank
                if good:
                    cell[0] += n
                cell[1] += n
        names = [slo.name for slo in self._classifier.slos]
        return [
            BucketRow(names[index], minute, route, klass, error_code, good, total)
            for (index, minute, route, klass, error_code), (good, total) in sorted(cells.items())
        ]

    def pending(self) -> int:
        """Requests counted and not yet drained."""
        with self._lock:
            return sum(self._counts.values())

    def reset_after_fork(self) -> None:
        """Forget counts inherited from the parent process and renew the lock.

        Runs in a forked child by itself (an at-fork hook): the parent still
        holds those counts and flushes them, so keeping them would count twice.
        The lock is replaced because the parent may have held it at fork time.
        """
        self._lock = threading.Lock()
        self._counts = {}


_RECORDERS: weakref.WeakSet[SLIRecorder] = weakref.WeakSet()


def _reset_recorders_in_child() -> None:
    for recorder in list(_RECORDERS):
        recorder.reset_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_recorders_in_child)
