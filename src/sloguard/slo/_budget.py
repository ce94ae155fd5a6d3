"""Exact error-budget math over per-minute buckets.

Every figure is computed from integer counts as a ``fractions.Fraction``, so
no float noise (``0.0009999999999999432``) reaches an output; reports render
fixed-precision ``Decimal`` strings on request (:func:`as_decimal`).

Definitions (``objective`` is a ratio in (0, 1), e.g. ``Fraction(999, 1000)``):

- SLI = good / total; error budget = 1 - objective.
- burn rate over a window = (1 - SLI) / (1 - objective): 1 spends the budget
  exactly over the period, 14.4 spends a 30-day budget in 50 hours.
- consumed share of a period's budget = the burn rate over the period (to
  date); for Occurrences that is bad / (budget x total). Remaining = 1 -
  consumed, and goes negative once the budget is overspent.
- time to exhaustion = remaining x period / current burn rate (assumes the
  traffic stays as it is).

Budgeting methods, as OpenSLO v1 defines ``budgetingMethod``:

- Occurrences: "uses a ratio of counts of good events to the total count of
  the events".
- Timeslices: "uses a ratio of good time slices to total time slices in a
  budgeting period"; a slice is good when its good/total ratio is at least
  ``timeSliceTarget``. Slices without events are left out of both counts
  (neither good nor bad: no data is not uptime).
- RatioTimeslices: "uses an average of all time slices' success ratios in a
  budgeting period"; again over the slices that have events.

Slices start at the beginning of the measured span (the period start for a
calendar window). Below ``min_events`` events a report says
``insufficient_data`` instead of a number; with no events, ``no_data``.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import groupby
from statistics import NormalDist
from typing import Final

from sloguard.slo._windows import (
    MINUTE,
    Bucket,
    CalendarWindow,
    Exclusions,
    MinuteRange,
    SeriesIndex,
    Window,
    as_index,
    to_minute,
)

__all__ = [
    "BudgetReport",
    "Budgeting",
    "BudgetingMethod",
    "DataStatus",
    "as_decimal",
    "budget_report",
    "budget_spent",
    "burn_rate",
    "burn_rate_bounds",
    "error_budget",
    "max_burn_rate",
    "objective_from_percent",
    "objective_from_ratio",
    "period_reports",
    "sli",
    "time_to_exhaustion",
    "total_outage_exhaustion",
    "wilson_interval",
    "wilson_lower_at_least",
    "z_score",
]

_MICROSECOND: Final = timedelta(microseconds=1)


def _exact(value: str | int | Decimal | Fraction | float) -> Fraction:
    if isinstance(value, bool):
        raise TypeError("an objective is a number, not a bool")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"an objective must be finite, got {value}")
        return Fraction(repr(value))  # the shortest repr: 99.9 -> "99.9", not the binary float
    return Fraction(value.strip() if isinstance(value, str) else value)


def objective_from_ratio(value: str | int | Decimal | Fraction | float) -> Fraction:
    """An objective given as a ratio (``"0.999"``), checked to lie in (0, 1)."""
    ratio = _exact(value)
    if not 0 < ratio < 1:
        raise ValueError(f"an objective must lie strictly between 0 and 1, got {ratio}")
    return ratio


def objective_from_percent(value: str | int | Decimal | Fraction | float) -> Fraction:
    """An objective given as a percentage (``"99.9"``); floats go through ``repr``."""
    return objective_from_ratio(_exact(value) / 100)


def sli(good: int, total: int) -> Fraction | None:
    """good / total, or None without events."""
    return Fraction(good, total) if total else None


def error_budget(objective: Fraction) -> Fraction:
    return 1 - objective


def max_burn_rate(objective: Fraction) -> Fraction:
    """The burn rate of a total outage (every event bad): 1 / (1 - objective)."""
    return 1 / (1 - objective)


def burn_rate(good: int, total: int, objective: Fraction) -> Fraction | None:
    """(bad / total) / (1 - objective), or None without events."""
    return Fraction(total - good, total) / (1 - objective) if total else None


def _ratio(part: timedelta, whole: timedelta) -> Fraction:
    return Fraction(part // _MICROSECOND, whole // _MICROSECOND)


def _duration(share: Fraction, whole: timedelta) -> timedelta:
    return round(share * (whole // _MICROSECOND)) * _MICROSECOND


def budget_spent(burn: Fraction, duration: timedelta, period: timedelta) -> Fraction:
    """The share of a period's budget that ``burn`` spends in ``duration``."""
    return burn * _ratio(duration, period)


def time_to_exhaustion(remaining: Fraction, burn: Fraction, period: timedelta) -> timedelta | None:
    """How long ``remaining`` (a share of the budget) lasts at ``burn``; None if never."""
    if remaining <= 0:
        return timedelta(0)
    if burn <= 0:
        return None
    return _duration(remaining / burn, period)


def total_outage_exhaustion(objective: Fraction, period: timedelta) -> timedelta:
    """How long a total outage takes to spend a whole period's budget: period x (1 - objective)."""
    return _duration(1 - objective, period)


def z_score(confidence: str | Decimal | Fraction) -> Fraction:
    """The one-sided standard normal quantile for ``confidence``, to 6 decimals (0.95 -> 1.644854).

    A page that requires "the lower bound of the burn rate is at least the
    threshold" at 95% confidence uses this z in :func:`wilson_lower_at_least`.
    """
    level = _exact(confidence)
    if not Fraction(1, 2) <= level < 1:
        raise ValueError(f"a confidence level must lie in [0.5, 1), got {level}")
    return Fraction(round(Fraction(NormalDist().inv_cdf(float(level))) * 10**6), 10**6)


def _sqrt_up(value: Fraction, digits: int = 30) -> Fraction:
    """sqrt(value) rounded up to ``digits`` decimals (integer arithmetic, no float)."""
    scaled = value.numerator * 10 ** (2 * digits)
    root = math.isqrt(scaled // value.denominator)
    if root * root * value.denominator < scaled:
        root += 1
    return Fraction(root, 10**digits)


def wilson_interval(bad: int, total: int, z: Fraction) -> tuple[Fraction, Fraction] | None:
    """The Wilson score interval of bad / total, widened outward by at most 1e-30; None if empty.

    (x + z^2/2 -/+ z * sqrt(x (n - x) / n + z^2/4)) / (n + z^2) for x bad of n events.
    """
    if not total:
        return None
    z2 = z * z
    center = bad + z2 / 2
    half = z * _sqrt_up(Fraction(bad * (total - bad), total) + z2 / 4)
    den = total + z2
    return max(Fraction(0), (center - half) / den), min(Fraction(1), (center + half) / den)


def wilson_lower_at_least(bad: int, total: int, z: Fraction, ratio: Fraction) -> bool:
    """Exactly whether the Wilson lower bound of bad / total is at least ``ratio``.

    lower >= r  <=>  m >= 0 and m^2 >= z^2 (x (n - x) / n + z^2/4), with
    m = x + z^2/2 - r (n + z^2): rational arithmetic, no square root.
    """
    if not total:
        return False
    z2 = z * z
    margin = bad + z2 / 2 - ratio * (total + z2)
    return margin >= 0 and margin * margin >= z2 * (Fraction(bad * (total - bad), total) + z2 / 4)


def burn_rate_bounds(
    good: int, total: int, objective: Fraction, z: Fraction
) -> tuple[Fraction, Fraction] | None:
    """The Wilson interval of the bad ratio, as burn rates."""
    interval = wilson_interval(total - good, total, z)
    if interval is None:
        return None
    budget = 1 - objective
    return interval[0] / budget, interval[1] / budget


def as_decimal(value: Fraction, places: int = 6) -> Decimal:
    """``value`` rounded half-even to ``places`` decimals, e.g. ``Decimal("14.400000")``."""
    return Decimal(round(value * 10**places)).scaleb(-places)


class BudgetingMethod(enum.StrEnum):
    OCCURRENCES = "Occurrences"
    TIMESLICES = "Timeslices"
    RATIO_TIMESLICES = "RatioTimeslices"


class DataStatus(enum.StrEnum):
    OK = "ok"
    NO_DATA = "no_data"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True, slots=True)
class Budgeting:
    """OpenSLO's ``budgetingMethod`` with its ``timeSliceWindow`` and ``timeSliceTarget``."""

    method: BudgetingMethod = BudgetingMethod.OCCURRENCES
    timeslice: timedelta = MINUTE
    timeslice_target: Fraction | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", BudgetingMethod(self.method))
        if self.timeslice <= timedelta(0) or self.timeslice % MINUTE:
            raise ValueError(f"a time slice must be whole minutes, got {self.timeslice}")
        target = self.timeslice_target
        if self.method is BudgetingMethod.TIMESLICES:
            if target is None or not 0 < target <= 1:
                raise ValueError("Timeslices needs a timeslice_target in (0, 1]")
        elif target is not None:
            raise ValueError(f"timeslice_target applies only to Timeslices, not {self.method}")


@dataclass(frozen=True, slots=True)
class _Measure:
    good: int
    total: int
    good_slices: int | None = None
    slices: int | None = None
    sli: Fraction | None = None


def _slice_counts(index: SeriesIndex, span: MinuteRange, size: int) -> list[tuple[int, int]]:
    """(good, total) per slice with events; slices start at ``span.start``."""
    minutes, goods, totals = index.columns(span)
    if size == 1:
        return [(g, t) for g, t in zip(goods, totals, strict=True) if t]
    rows = zip(minutes, goods, totals, strict=True)
    out = []
    for _, group in groupby(rows, key=lambda row: (row[0] - span.start) // size):
        good = total = 0
        for _, g, t in group:
            good += g
            total += t
        if total:
            out.append((good, total))
    return out


def _mean_of_ratios(slices: list[tuple[int, int]]) -> Fraction:
    """The exact mean of good/total over ``slices``, summed over one common denominator."""
    by_total: dict[int, int] = {}
    for good, total in slices:
        by_total[total] = by_total.get(total, 0) + good
    common = math.lcm(*by_total)
    numerator = sum(good * (common // total) for total, good in by_total.items())
    return Fraction(numerator, common * len(slices))


def _measure(index: SeriesIndex, span: MinuteRange, budgeting: Budgeting) -> _Measure:
    good, total = index.counts(span)
    if budgeting.method is BudgetingMethod.OCCURRENCES:
        return _Measure(good, total, sli=sli(good, total))
    slices = _slice_counts(index, span, budgeting.timeslice // MINUTE)
    if not slices:
        return _Measure(good, total, 0, 0)
    if budgeting.method is BudgetingMethod.TIMESLICES:
        target = budgeting.timeslice_target
        assert target is not None  # checked in Budgeting
        met = sum(1 for g, t in slices if g >= target * t)
        return _Measure(good, total, met, len(slices), Fraction(met, len(slices)))
    return _Measure(good, total, None, len(slices), _mean_of_ratios(slices))


@dataclass(frozen=True, slots=True)
class BudgetReport:
    """The budget of one SLO over one span; number fields are None unless status is ok."""

    span: MinuteRange
    period: timedelta
    objective: Fraction
    method: BudgetingMethod
    status: DataStatus
    good: int
    total: int
    excluded_minutes: int
    slices: int | None
    good_slices: int | None
    sli: Fraction | None
    burn_rate: Fraction | None
    burn_rate_bounds: tuple[Fraction, Fraction] | None
    consumed: Fraction | None
    remaining: Fraction | None
    current_burn_rate: Fraction | None
    time_to_exhaustion: timedelta | None
    error_budget: Fraction = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "error_budget", 1 - self.objective)

    @property
    def bad(self) -> int:
        return self.total - self.good

    def as_dict(self, places: int = 6) -> dict[str, str | int | None]:
        """A JSON-ready rendering: exact figures as fixed-precision decimal strings."""

        def show(value: Fraction | None) -> str | None:
            return None if value is None else str(as_decimal(value, places))

        tte = self.time_to_exhaustion
        return {
            "start_minute": self.span.start,
            "end_minute": self.span.end,
            "period_seconds": int(self.period.total_seconds()),
            "objective": show(self.objective),
            "method": str(self.method),
            "status": str(self.status),
            "good": self.good,
            "total": self.total,
            "bad": self.bad,
            "excluded_minutes": self.excluded_minutes,
            "slices": self.slices,
            "good_slices": self.good_slices,
            "sli": show(self.sli),
            "error_budget": show(self.error_budget),
            "burn_rate": show(self.burn_rate),
            "burn_rate_lower": show(self.burn_rate_bounds[0]) if self.burn_rate_bounds else None,
            "burn_rate_upper": show(self.burn_rate_bounds[1]) if self.burn_rate_bounds else None,
            "consumed": show(self.consumed),
            "remaining": show(self.remaining),
            "current_burn_rate": show(self.current_burn_rate),
            "time_to_exhaustion_seconds": None if tte is None else int(tte.total_seconds()),
        }


def _burn(measure: _Measure, objective: Fraction, min_events: int) -> Fraction | None:
    if measure.sli is None or measure.total < min_events:
        return None
    return (1 - measure.sli) / (1 - objective)


def _report(
    index: SeriesIndex,
    span: MinuteRange,
    period: timedelta,
    objective: Fraction,
    budgeting: Budgeting,
    min_events: int,
    current_window: timedelta,
    z: Fraction | None,
) -> BudgetReport:
    measure = _measure(index, span, budgeting)
    if measure.sli is None:
        status = DataStatus.NO_DATA
    elif measure.total < max(min_events, 1):
        status = DataStatus.INSUFFICIENT_DATA
    else:
        status = DataStatus.OK
    burn = _burn(measure, objective, min_events) if status is DataStatus.OK else None
    current = tte = None
    if burn is not None:
        recent = MinuteRange(span.end - current_window // MINUTE, span.end).intersect(span)
        current = _burn(_measure(index, recent, budgeting), objective, min_events)
        if current is not None:
            tte = time_to_exhaustion(1 - burn, current, period)
    bounds = None
    if burn is not None and z is not None and budgeting.method is BudgetingMethod.OCCURRENCES:
        bounds = burn_rate_bounds(measure.good, measure.total, objective, z)
    exclusions = index.exclusions
    return BudgetReport(
        span=span,
        period=period,
        objective=objective,
        method=budgeting.method,
        status=status,
        good=measure.good,
        total=measure.total,
        excluded_minutes=exclusions.excluded_minutes(span) if exclusions else 0,
        slices=measure.slices,
        good_slices=measure.good_slices,
        sli=measure.sli if status is DataStatus.OK else None,
        burn_rate=burn,
        burn_rate_bounds=bounds,
        consumed=burn,
        remaining=None if burn is None else 1 - burn,
        current_burn_rate=current,
        time_to_exhaustion=tte,
    )


def budget_report(
    series: Iterable[Bucket] | SeriesIndex,
    *,
    objective: Fraction,
    window: Window,
    at: datetime | int,
    budgeting: Budgeting = Budgeting(),
    exclusions: Exclusions | None = None,
    min_events: int = 1,
    current_window: timedelta = timedelta(hours=1),
    z: Fraction | None = None,
) -> BudgetReport:
    """The budget of ``window`` at ``at``: a rolling window, or a calendar period to date.

    ``current_window`` is the recent stretch whose burn rate predicts the time to
    exhaustion; with ``z`` (see :func:`z_score`) an Occurrences report carries the
    Wilson interval of its burn rate.
    """
    objective = objective_from_ratio(objective)
    index = as_index(series, exclusions)
    period = window.period(at).duration
    return _report(
        index, window.span(at), period, objective, budgeting, min_events, current_window, z
    )


def period_reports(
    series: Iterable[Bucket] | SeriesIndex,
    *,
    objective: Fraction,
    calendar: CalendarWindow,
    start: datetime | int,
    end: datetime | int,
    budgeting: Budgeting = Budgeting(),
    exclusions: Exclusions | None = None,
    min_events: int = 1,
    current_window: timedelta = timedelta(hours=1),
    z: Fraction | None = None,
) -> list[BudgetReport]:
    """One report per calendar period overlapping ``[start, end)``; the last is cut at ``end``."""
    objective = objective_from_ratio(objective)
    index = as_index(series, exclusions)
    last = MinuteRange(-(2**62), to_minute(end))
    return [
        _report(
            index,
            p.intersect(last),
            p.duration,
            objective,
            budgeting,
            min_events,
            current_window,
            z,
        )
        for p in calendar.periods(start, end)
    ]
