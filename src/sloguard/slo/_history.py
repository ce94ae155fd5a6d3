"""Alert tiers over a whole history, fast: what backtests and simulations run on.

:func:`iter_history` yields every instant's tier conditions with O(1) work per
tier per step (prefix sums over a dense minute index); :func:`scan_history`
returns each tier's firing intervals, first discarding whole blocks of
instants that provably cannot meet the threshold, then deciding the rest with
exact integer comparisons. Both agree with :func:`~sloguard.slo._alerting.evaluate_tiers`
plus :func:`~sloguard.slo._alerting.step` at every instant (a property test).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from itertools import repeat
from operator import add, and_, ge, gt, mul, sub
from typing import Final

from sloguard.slo._alerting import (
    BurnRateTier,
    Evidence,
    ceil_minutes,
)
from sloguard.slo._budget import (
    objective_from_ratio,
    wilson_lower_at_least,
)
from sloguard.slo._windows import (
    Bucket,
    Exclusions,
    MinuteRange,
    SeriesIndex,
    as_index,
    minutes_in,
    to_minute,
)

__all__ = ["FiringInterval", "HistoryStep", "TierHistory", "iter_history", "scan_history"]

_MICROSECOND: Final = timedelta(microseconds=1)
_RUN: Final = re.compile(b"\x01+")

_ANY_EVIDENCE: Final = Evidence()


@dataclass(frozen=True, slots=True)
class FiringInterval:
    """Unix minutes: the condition held from ``pending_since``; the alert fired at ``start``
    and resolved at ``end`` (or was still firing at the end of the scan: ``ongoing``)."""

    pending_since: int
    start: int
    end: int
    ongoing: bool


@dataclass(frozen=True, slots=True)
class TierHistory:
    tier: BurnRateTier
    threshold: Fraction
    intervals: tuple[FiringInterval, ...]


@dataclass(frozen=True, slots=True)
class HistoryStep:
    """The condition of every tier (in order) at evaluation instant ``at`` (a unix minute)."""

    at: int
    conditions: tuple[bool, ...]


@dataclass(frozen=True, slots=True)
class _Plan:
    """One tier's threshold as integers: a window meets it when ``q x bad >= p x total``."""

    index: int
    tier: BurnRateTier
    threshold: Fraction
    p: int
    q: int
    long: int
    short: int


def _plans(tiers: Sequence[BurnRateTier], objective: Fraction, period: timedelta) -> list[_Plan]:
    plans = []
    for i, tier in enumerate(tiers):
        threshold = tier.threshold(period)
        ratio = threshold * (1 - objective)
        long, short = minutes_in(tier.long_window), minutes_in(tier.short_window)
        plans.append(_Plan(i, tier, threshold, ratio.numerator, ratio.denominator, long, short))
    return plans


def _meets(bad: int, total: int, plan: _Plan, evidence: Evidence, min_total: int) -> bool:
    if total < min_total or plan.q * bad < plan.p * total:
        return False
    z = evidence.z
    return z is None or wilson_lower_at_least(bad, total, z, Fraction(plan.p, plan.q))


class _Prefix:
    """Dense prefix sums of bad and total events from minute ``lo``; instant ``at`` is at - lo."""

    __slots__ = ("bad", "lo", "total")

    def __init__(self, index: SeriesIndex, lo: int, end: int) -> None:
        self.lo = lo
        self.bad, self.total = index.dense_prefix(MinuteRange(lo, end))

    def window(self, at: int, minutes: int) -> tuple[int, int]:
        i, j = at - minutes - self.lo, at - self.lo
        return self.bad[j] - self.bad[i], self.total[j] - self.total[i]


def _setup(
    series: Iterable[Bucket] | SeriesIndex,
    tiers: Sequence[BurnRateTier],
    objective: Fraction,
    period: timedelta,
    start: int,
    end: int,
    exclusions: Exclusions | None,
) -> tuple[list[_Plan], _Prefix]:
    if end < start:
        raise ValueError(f"a scan needs start <= end, got {start} .. {end}")
    plans = [p for p in _plans(tiers, objective_from_ratio(objective), period) if p.tier.enabled]
    lookback = max((max(p.long, p.short) for p in plans), default=0)
    # Instant ``at`` reads minutes before it, so the last instant (end - 1) needs data to end - 1.
    return plans, _Prefix(as_index(series, exclusions), start - lookback, max(start, end - 1))


def iter_history(
    series: Iterable[Bucket] | SeriesIndex,
    tiers: Sequence[BurnRateTier],
    objective: Fraction,
    period: timedelta,
    start: datetime | int,
    end: datetime | int,
    *,
    exclusions: Exclusions | None = None,
    evidence: Evidence = _ANY_EVIDENCE,
) -> Iterator[HistoryStep]:
    """Every tier's condition at each instant of ``[start, end)``, O(1) per tier and step.

    Disabled tiers are always false. Same answers as :func:`evaluate_tiers` at each instant.
    """
    first, last = to_minute(start), to_minute(end)
    plans, prefix = _setup(series, tiers, objective, period, first, last, exclusions)
    min_total = max(evidence.min_events, 1)
    conditions = [False] * len(tiers)
    for at in range(first, last):
        for plan in plans:
            conditions[plan.index] = _meets(
                *prefix.window(at, plan.long), plan, evidence, min_total
            ) and _meets(*prefix.window(at, plan.short), plan, evidence, min_total)
        yield HistoryStep(at, tuple(conditions))


def _both_windows(prefix: _Prefix, lo: int, hi: int, plan: _Plan) -> bytes:
    """For prefix indices ``lo .. hi-1``: do both windows meet ``plan`` (with an event)?

    With ``M`` above any window's total, the line ``L = q*M*bad + (1 - p*M)*total``
    over the prefix sums gives ``L[j] - L[i] = M*(q*bad - p*total) + total`` for
    the window ``[i, j)``: positive exactly when the window meets the threshold
    and holds an event. So each window is one C-level compare per instant.
    """
    reach = max(plan.long, plan.short)
    base = lo - reach
    bad, total = prefix.bad[base:hi], prefix.total[base:hi]
    scale = total[-1] - total[0] + 1
    line = list(
        map(add, map(mul, bad, repeat(plan.q * scale)), map(mul, total, repeat(1 - plan.p * scale)))
    )
    ends, count = line[reach:], hi - lo
    long, short = reach - plan.long, reach - plan.short
    return bytes(
        map(
            and_,
            map(gt, ends, line[long : long + count]),
            map(gt, ends, line[short : short + count]),
        )
    )


def _enough_events(prefix: _Prefix, a: int, b: int, plan: _Plan, floor: int) -> bytes:
    """For prefix indices ``a .. b-1``: do both windows hold at least ``floor`` events?"""
    total = prefix.total
    long = map(sub, total[a:b], total[a - plan.long : b - plan.long])
    short = map(sub, total[a:b], total[a - plan.short : b - plan.short])
    return bytes(map(and_, map(ge, long, repeat(floor)), map(ge, short, repeat(floor))))


def _candidates(prefix: _Prefix, lo: int, hi: int, plan: _Plan) -> Iterator[tuple[int, int]]:
    """Runs of prefix indices in ``[lo, hi)`` whose long window may meet ``plan``.

    Instants are taken in blocks of ``k`` (an eighth of the long window). Every
    window of a block lies within the union of the block's windows and covers
    their intersection, so "union bad x q >= intersection total x p, with a bad
    event" is an upper bound for the whole block, checked with strided slices.
    A block failing it cannot fire; on healthy data nearly every block fails,
    and the exact check only runs on the rest.
    """
    n = plan.long
    k = n // 8
    if k < 2 or hi - lo < 2 * k:
        yield lo, hi
        return
    bad, total = prefix.bad, prefix.total
    upper = bad[lo + k - 1 : hi : k]  # the last instant of each whole block
    lower_total = total[lo + k - 1 - n : hi - n : k]
    blocks = len(range(lo, hi, k))
    if len(upper) < blocks:  # a shorter last block ends at hi - 1
        upper.append(bad[hi - 1])
        lower_total.append(total[hi - 1 - n])
    union_bad = list(map(sub, upper, bad[lo - n : hi - n : k]))
    common_total = map(sub, total[lo:hi:k], lower_total)
    # With M above any bad count, M*(q*bad - p*total) + bad > 0 <=> the ratio holds and bad >= 1.
    scale = bad[-1] - bad[0] + 1
    mask = bytes(
        map(
            gt,
            map(mul, union_bad, repeat(plan.q * scale + 1)),
            map(mul, common_total, repeat(plan.p * scale)),
        )
    )
    # The exact check of a stretch also reads the window before it, so stretches
    # closer than a window apart are checked as one: the gap costs less than the lookback.
    reach = max(n, plan.short)
    pending: tuple[int, int] | None = None
    for run in _RUN.finditer(mask):
        a, b = lo + run.start() * k, min(hi, lo + run.end() * k)
        if pending is not None and a - pending[1] <= reach:
            pending = (pending[0], b)
            continue
        if pending is not None:
            yield pending
        pending = (a, b)
    if pending is not None:
        yield pending


def _condition_runs(
    prefix: _Prefix, plan: _Plan, first: int, last: int, evidence: Evidence
) -> Iterator[tuple[int, int]]:
    """Runs ``[a, b)`` of instants (unix minutes) where ``plan``'s condition holds.

    Cheap block bounds pick candidate stretches, the exact check of both
    windows runs on those, and the event floor and the Wilson evidence (if
    asked) only where the thresholds hold: each step narrows the next.
    """
    for lo, hi in _candidates(prefix, first - prefix.lo, last - prefix.lo, plan):
        for run in _RUN.finditer(_both_windows(prefix, lo, hi, plan)):
            a, b = lo + run.start(), lo + run.end()
            ok = b"\x01" * (b - a)
            if evidence.min_events > 1:
                ok = _enough_events(prefix, a, b, plan, evidence.min_events)
            z = evidence.z
            if z is not None:
                ok = bytes(
                    flag and _confident(prefix, prefix.lo + a + i, plan, z)
                    for i, flag in enumerate(ok)
                )
            for inner in _RUN.finditer(ok):
                yield prefix.lo + a + inner.start(), prefix.lo + a + inner.end()


def _confident(prefix: _Prefix, at: int, plan: _Plan, z: Fraction) -> bool:
    ratio = Fraction(plan.p, plan.q)
    return all(
        wilson_lower_at_least(bad, total, z, ratio)
        for bad, total in (prefix.window(at, plan.long), prefix.window(at, plan.short))
    )


def scan_history(
    series: Iterable[Bucket] | SeriesIndex,
    tiers: Sequence[BurnRateTier],
    objective: Fraction,
    period: timedelta,
    start: datetime | int,
    end: datetime | int,
    *,
    exclusions: Exclusions | None = None,
    evidence: Evidence = _ANY_EVIDENCE,
) -> list[TierHistory]:
    """When each tier fired over the instants ``[start, end)``: the backtest fast path.

    Needs buckets from ``start - longest window``; the answers match feeding
    :func:`iter_history` through :func:`step` minute by minute (``for_`` rounds
    up to whole minutes, since evaluations are a minute apart).
    """
    first, last = to_minute(start), to_minute(end)
    plans, prefix = _setup(series, tiers, objective, period, first, last, exclusions)
    found = {plan.index: TierHistory(plan.tier, plan.threshold, ()) for plan in plans}
    for plan in plans:
        if plan.p > plan.q:
            continue  # needs more than 100% errors: lint_tiers says so
        wait = ceil_minutes(plan.tier.for_)
        intervals = tuple(
            FiringInterval(a, a + wait, b, b == last)
            for a, b in _condition_runs(prefix, plan, first, last, evidence)
            if b - a > wait
        )
        found[plan.index] = TierHistory(plan.tier, plan.threshold, intervals)
    return [
        found.get(i, TierHistory(tier, tier.threshold(period), ())) for i, tier in enumerate(tiers)
    ]
