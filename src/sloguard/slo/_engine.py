"""Evaluate an :class:`SLODefinition` over a bucket series: budget and tiers.

The spec model (``_model``) says what an SLO is, as written in a file; the
math (``_budget``, ``_alerting``, ``_windows``) works on exact fractions and
minute ranges. This module translates one into the other and returns an
:class:`SLOStatus` — the answer ``sloguard slo status`` prints and
``sloguard gate`` judges. It is sans-I/O: the caller reads the series (from
the embedded store, Prometheus or a file) and passes it in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction

from sloguard.slo import _model as model
from sloguard.slo._alerting import BurnRateTier, Severity, TierResult, evaluate_tiers
from sloguard.slo._budget import Budgeting as EngineBudgeting
from sloguard.slo._budget import BudgetingMethod, BudgetReport, budget_report
from sloguard.slo._windows import (
    MINUTE,
    Bucket,
    CalendarUnit,
    CalendarWindow,
    Exclusions,
    MaintenanceWindow,
    RollingWindow,
    SeriesIndex,
    Window,
    to_minute,
)
from sloguard.slo.spec import SLOSpec

__all__ = [
    "SLOStatus",
    "definition_from_spec",
    "engine_budgeting",
    "engine_tiers",
    "engine_window",
    "evaluate",
    "lookback",
]


@dataclass(frozen=True, slots=True)
class SLOStatus:
    definition: model.SLODefinition
    at: datetime
    report: BudgetReport
    tiers: tuple[TierResult, ...]

    @property
    def firing(self) -> tuple[TierResult, ...]:
        return tuple(t for t in self.tiers if t.condition)

    @property
    def paging(self) -> bool:
        return any(t.tier.severity is Severity.PAGE for t in self.firing)


def engine_window(window: model.RollingWindow | model.CalendarWindow) -> Window:
    if isinstance(window, model.RollingWindow):
        return RollingWindow(window.length)
    return CalendarWindow(CalendarUnit(str(window.unit)), window.time_zone)


def _period(window: Window, at: datetime) -> timedelta:
    if isinstance(window, RollingWindow):
        return window.duration
    span = window.period(at)
    return (span.end - span.start) * MINUTE


def _ratio(part: timedelta, whole: timedelta) -> Fraction:
    """``part / whole`` exactly (timedelta division gives a float)."""
    unit = timedelta(microseconds=1)
    return Fraction(part // unit, whole // unit)


def engine_tiers(alerting: model.Alerting, period: timedelta) -> tuple[BurnRateTier, ...]:
    """The spec's tiers as burn-rate tiers for ``period`` (explicit burn rates converted)."""
    tiers = []
    for tier in alerting.tiers:
        if tier.budget_percent is not None:
            share = Fraction(tier.budget_percent) / 100
        else:
            assert tier.burn_rate is not None
            share = Fraction(tier.burn_rate) * _ratio(tier.long_window, period)
        tiers.append(
            BurnRateTier(
                name=tier.name,
                budget_share=min(share, Fraction(1)),
                long_window=tier.long_window,
                short_window=tier.short_window or tier.long_window / 12,
                severity=Severity(str(tier.severity)),
                enabled=tier.enabled,
                for_=tier.for_,
            )
        )
    return tuple(tiers)


def engine_budgeting(spec: model.Budgeting) -> EngineBudgeting:
    method = BudgetingMethod(str(spec.method))
    if method is BudgetingMethod.OCCURRENCES:
        return EngineBudgeting()
    target = Fraction(spec.slice_target) if spec.slice_target is not None else None
    return EngineBudgeting(method, spec.slice or MINUTE, target)


def lookback(definition: model.SLODefinition, at: datetime) -> timedelta:
    """How much history an evaluation at ``at`` reads: the window, or the longest tier."""
    window = engine_window(definition.window)
    longest = max((t.long_window for t in definition.alerting.tiers), default=timedelta(0))
    return max(_period(window, at), longest) + MINUTE


def evaluate(
    definition: model.SLODefinition, series: Iterable[Bucket], at: datetime, *, min_events: int = 1
) -> SLOStatus:
    window = engine_window(definition.window)
    period = _period(window, at)
    exclusions = Exclusions.of(
        MaintenanceWindow(e.start, e.end, e.reason) for e in definition.exclusions
    )
    index = SeriesIndex(series, exclusions)
    report = budget_report(
        index,
        objective=definition.target,
        window=window,
        at=at,
        budgeting=engine_budgeting(definition.budgeting),
        min_events=min_events,
    )
    tiers = [t for t in engine_tiers(definition.alerting, period) if t.enabled]
    results = (
        evaluate_tiers(index, tiers, definition.target, period, to_minute(at)) if tiers else []
    )
    return SLOStatus(definition, at, report, tuple(results))


def definition_from_spec(spec: SLOSpec, service: str) -> model.SLODefinition:
    """The full definition of a ``sloguard.yaml`` SLO: 30-day rolling, default tiers."""
    from decimal import Decimal

    sli = model.RequestSLI(
        routes=spec.routes,
        methods=spec.methods,
        kind=spec.kind,
        threshold_ms=Decimal(str(spec.threshold_ms)) if spec.threshold_ms is not None else None,
    )
    return model.SLODefinition(
        name=spec.name,
        service=service,
        objective=Decimal(str(spec.objective)),
        sli=sli,
        description=spec.description,
    )


def select(
    definitions: Sequence[model.SLODefinition], names: Sequence[str]
) -> list[model.SLODefinition]:
    """The definitions named (all when ``names`` is empty); KeyError names a missing one."""
    if not names:
        return list(definitions)
    by_name = {d.name: d for d in definitions}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise KeyError(", ".join(missing))
    return [by_name[n] for n in names]
