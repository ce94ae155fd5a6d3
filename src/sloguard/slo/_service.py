"""The evaluation loop behind ``sloguard serve``: evaluate, step alerts, persist, deliver.

Every interval, each SLO is evaluated from the embedded store with
:func:`evaluate`; each enabled tier's :class:`AlertState` is advanced with
:func:`step`; changes are written to the :class:`AlertStore` and handed to the
notifiers. The latest :class:`SLOView` of each SLO is kept in memory for the
JSON API and the ``/metrics`` collector, which read it without touching the
store. :meth:`SLOService.evaluate_once` takes the time as an argument, so
tests drive the loop with a fake clock; :meth:`SLOService.run` is the thin
async driver.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import anyio

from sloguard.slo._alerting import AlertPhase, AlertState, TierResult, step
from sloguard.slo._alertstore import AlertStore
from sloguard.slo._budget import as_decimal, budget_report
from sloguard.slo._delivery import AlertNotice, Notifier
from sloguard.slo._engine import SLOStatus, engine_budgeting, engine_window, evaluate, lookback
from sloguard.slo._model import SLODefinition, format_duration
from sloguard.slo._windows import Exclusions, MaintenanceWindow, SeriesIndex
from sloguard.store import SQLiteStore

__all__ = ["BudgetPoint", "SLOService", "SLOView", "TierView", "tier_burn_rates"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TierView:
    """One tier after an evaluation: its check and its (persisted) alert state."""

    result: TierResult
    state: AlertState

    @property
    def firing(self) -> bool:
        return self.state.phase is AlertPhase.FIRING


@dataclass(frozen=True, slots=True)
class SLOView:
    status: SLOStatus
    tiers: tuple[TierView, ...]

    @property
    def definition(self) -> SLODefinition:
        return self.status.definition


@dataclass(frozen=True, slots=True)
class BudgetPoint:
    at: datetime
    remaining: Fraction | None


def _rate(value: Fraction | None) -> str | None:
    return None if value is None else str(as_decimal(value, 4))


def tier_burn_rates(result: TierResult) -> dict[str, str]:
    """``{window: burn rate}`` of the tier's long and short windows (known ones only)."""
    out = {}
    for window, burn in (
        (result.tier.long_window, result.long),
        (result.tier.short_window, result.short),
    ):
        shown = _rate(None if burn is None else burn.burn_rate)
        if shown is not None:
            out[format_duration(window)] = shown
    return out


class SLOService:
    """Evaluates ``definitions`` from ``store``, keeps alert state in ``alerts``, notifies."""

    def __init__(
        self,
        definitions: Sequence[SLODefinition],
        store: SQLiteStore,
        alerts: AlertStore,
        notifiers: Sequence[Notifier] = (),
        *,
        min_events: int = 1,
        generator_url: str = "",
    ) -> None:
        self.definitions = {d.name: d for d in definitions}
        self.store = store
        self.alerts = alerts
        self.notifiers = tuple(notifiers)
        self.min_events = min_events
        self.generator_url = generator_url.rstrip("/")
        self.evaluations = 0
        self._views: dict[str, SLOView] = {}
        self._lock = threading.Lock()

    def views(self) -> list[SLOView]:
        with self._lock:
            return [self._views[n] for n in self.definitions if n in self._views]

    def view(self, name: str) -> SLOView | None:
        with self._lock:
            return self._views.get(name)

    def _series(
        self, definition: SLODefinition, at: datetime, extra: timedelta
    ) -> list[tuple[int, int, int]]:
        end = int(at.timestamp()) // 60 + 1
        start = end - int((lookback(definition, at) + extra).total_seconds()) // 60 - 1
        return self.store.series(definition.name, start, end)

    def _notice(self, definition: SLODefinition, view: TierView) -> AlertNotice:
        state, tier = view.state, view.result.tier
        starts = state.fired_at or state.pending_since
        assert starts is not None  # only firing or resolved states are delivered
        return AlertNotice(
            slo=definition.name,
            service=definition.service,
            tier=tier.name,
            severity=str(tier.severity),
            phase=state.phase,
            starts_at=starts,
            ends_at=state.resolved_at,
            summary=f"SLO {definition.name} ({definition.objective}%) burns its error budget:"
            f" tier {tier.name} ({tier.severity})",
            burn_rates=tier_burn_rates(view.result),
            threshold=_rate(view.result.threshold),
            generator_url=f"{self.generator_url}/api/slos/{definition.name}"
            if self.generator_url
            else "",
        )

    def evaluate_once(self, now: datetime) -> list[AlertNotice]:
        """One pass over every SLO at ``now``; returns the notices of this pass's changes."""
        changed: list[AlertNotice] = []
        firing: list[AlertNotice] = []
        for definition in self.definitions.values():
            status = evaluate(
                definition,
                self._series(definition, now, timedelta(0)),
                now,
                min_events=self.min_events,
            )
            tiers = []
            for result in status.tiers:
                before = self.alerts.load(definition.name, result.tier.name)
                state, transition = step(before, result.condition, now, for_=result.tier.for_)
                if transition is not None:
                    self.alerts.save(definition.name, result.tier.name, state, transition)
                view = TierView(result, state)
                tiers.append(view)
                delivered = (AlertPhase.FIRING, AlertPhase.RESOLVED)
                if transition is not None and transition.after in delivered:
                    changed.append(self._notice(definition, view))
                elif view.firing:
                    firing.append(self._notice(definition, view))
            with self._lock:
                self._views[definition.name] = SLOView(status, tuple(tiers))
        for notifier in self.notifiers:
            try:
                notifier.notify(changed, firing)
            except Exception:  # a notifier must never stop the loop
                log.exception("notifier %r failed", notifier)
        self.evaluations += 1
        return changed

    async def run(
        self,
        interval: timedelta,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        """Evaluate every ``interval`` until cancelled; a failed pass is logged, not fatal."""
        while True:
            try:
                await anyio.to_thread.run_sync(self.evaluate_once, clock())
            except Exception:
                log.exception("SLO evaluation failed")
            await sleep(interval.total_seconds())

    def history(
        self, name: str, at: datetime, step_: timedelta = timedelta(hours=1)
    ) -> list[BudgetPoint]:
        """Remaining budget every ``step_`` over the SLO's window ending at ``at``."""
        definition = self.definitions[name]
        window = engine_window(definition.window)
        span = window.period(at).duration
        exclusions = Exclusions.of(
            MaintenanceWindow(e.start, e.end, e.reason) for e in definition.exclusions
        )
        index = SeriesIndex(self._series(definition, at, span), exclusions)
        budgeting = engine_budgeting(definition.budgeting)
        last = at.replace(minute=0, second=0, microsecond=0)
        points = []
        for n in range(int(span / step_), -1, -1):
            moment = last - n * step_
            report = budget_report(
                index,
                objective=definition.target,
                window=window,
                at=moment,
                budgeting=budgeting,
                min_events=self.min_events,
            )
            points.append(BudgetPoint(moment, report.remaining))
        return points
