"""Multi-window, multi-burn-rate alerts (SRE Workbook, ch. 5 "Alerting on SLOs").

A tier spends a share of the period's budget within its long window: its
burn-rate threshold is ``budget_share x period / long_window`` (2% of a 30-day
budget in 1 hour is 14.4; the same tier on a 28-day SLO is 13.44). It fires
when the burn rate over the long window and over the short window are both at
least the threshold: the long window proves the burn is significant, the short
one that it is still going on, so the alert resets minutes after the errors
stop. A window needs ``Evidence`` before its burn rate counts: a minimum number
of events and, optionally, a Wilson lower bound at or above the threshold.

Evaluation is sans-I/O: :func:`evaluate_tiers` takes buckets and an instant;
:func:`scan_history` replays a whole history from prefix sums in a few C-level
passes per tier (compares are integer-exact: ``q x bad >= p x total`` for a
threshold ratio ``p/q``); :func:`iter_history` yields every step, O(1) per tier.
:func:`step` is the alert state machine (inactive -> pending -> firing ->
resolved) whose states serialise to dicts; :func:`lint_tiers` reports tiers
that can never fire, dominated tiers, windows finer than the data, and how
fast a total outage spends the budget.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Final

from sloguard.slo._budget import (
    as_decimal,
    burn_rate,
    burn_rate_bounds,
    max_burn_rate,
    objective_from_ratio,
    total_outage_exhaustion,
    wilson_lower_at_least,
)
from sloguard.slo._windows import (
    MINUTE,
    Bucket,
    Exclusions,
    MinuteRange,
    SeriesIndex,
    as_index,
    minutes_in,
    to_minute,
)

__all__ = [
    "DEFAULT_TIERS",
    "AlertPhase",
    "AlertState",
    "BurnRateTier",
    "Evidence",
    "LintFinding",
    "LintLevel",
    "Severity",
    "TierReason",
    "TierResult",
    "Transition",
    "WindowBurn",
    "evaluate_tiers",
    "lint_tiers",
    "step",
]

_MICROSECOND: Final = timedelta(microseconds=1)
_RUN: Final = re.compile(b"\x01+")


class Severity(enum.StrEnum):
    PAGE = "page"
    TICKET = "ticket"


_RANK: Final = {Severity.TICKET: 0, Severity.PAGE: 1}


@dataclass(frozen=True, slots=True)
class BurnRateTier:
    """Alert when ``budget_share`` of the period's budget is spent within ``long_window``."""

    name: str
    budget_share: Fraction
    long_window: timedelta
    short_window: timedelta
    severity: Severity
    enabled: bool = True
    for_: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "severity", Severity(self.severity))
        object.__setattr__(self, "budget_share", Fraction(self.budget_share))
        if not 0 < self.budget_share <= 1:
            raise ValueError(f"tier {self.name!r}: budget_share must lie in (0, 1]")
        if self.long_window <= timedelta(0) or self.short_window <= timedelta(0):
            raise ValueError(f"tier {self.name!r}: windows must be positive")
        if self.for_ < timedelta(0):
            raise ValueError(f"tier {self.name!r}: for_ must not be negative")

    def threshold(self, period: timedelta) -> Fraction:
        """The burn rate that spends ``budget_share`` of ``period``'s budget in the long window."""
        return self.budget_share * Fraction(
            period // _MICROSECOND, self.long_window // _MICROSECOND
        )


DEFAULT_TIERS: Final = (
    BurnRateTier(
        "page-1h", Fraction(2, 100), timedelta(hours=1), timedelta(minutes=5), Severity.PAGE
    ),
    BurnRateTier(
        "page-6h", Fraction(5, 100), timedelta(hours=6), timedelta(minutes=30), Severity.PAGE
    ),
    BurnRateTier(
        "ticket-1d", Fraction(10, 100), timedelta(days=1), timedelta(hours=2), Severity.TICKET
    ),
    BurnRateTier(
        "ticket-3d", Fraction(10, 100), timedelta(days=3), timedelta(hours=6), Severity.TICKET
    ),
)


@dataclass(frozen=True, slots=True)
class Evidence:
    """What a window needs before its burn rate counts.

    ``min_events``: fewer events is insufficient data, never a page. ``z``
    (from :func:`sloguard.slo.z_score`): the Wilson lower bound of the burn rate
    must reach the threshold too, so a handful of errors cannot page.
    """

    min_events: int = 1
    z: Fraction | None = None

    def __post_init__(self) -> None:
        if self.min_events < 0:
            raise ValueError("min_events must not be negative")


class TierReason(enum.StrEnum):
    MET = "met"
    DISABLED = "disabled"
    NO_DATA = "no_data"
    INSUFFICIENT_DATA = "insufficient_data"
    BELOW_THRESHOLD = "below_threshold"
    NOT_CONFIDENT = "not_confident"


@dataclass(frozen=True, slots=True)
class WindowBurn:
    """One window of one tier at one instant."""

    span: MinuteRange
    good: int
    total: int
    burn_rate: Fraction | None
    burn_rate_lower: Fraction | None
    reason: TierReason


@dataclass(frozen=True, slots=True)
class TierResult:
    """A tier at one instant: ``condition`` is true when both windows meet the threshold."""

    tier: BurnRateTier
    threshold: Fraction
    long: WindowBurn | None
    short: WindowBurn | None
    condition: bool
    reason: TierReason


def _window(
    index: SeriesIndex, span: MinuteRange, objective: Fraction, threshold: Fraction, ev: Evidence
) -> WindowBurn:
    good, total = index.counts(span)
    burn = burn_rate(good, total, objective)
    lower = None
    if ev.z is not None and total:
        bounds = burn_rate_bounds(good, total, objective, ev.z)
        lower = bounds[0] if bounds else None
    if burn is None:
        reason = TierReason.NO_DATA
    elif total < ev.min_events:
        reason = TierReason.INSUFFICIENT_DATA
    elif burn < threshold:
        reason = TierReason.BELOW_THRESHOLD
    elif ev.z is not None and not wilson_lower_at_least(
        total - good, total, ev.z, threshold * (1 - objective)
    ):
        reason = TierReason.NOT_CONFIDENT
    else:
        reason = TierReason.MET
    return WindowBurn(span, good, total, burn, lower, reason)


def evaluate_tiers(
    series: Iterable[Bucket] | SeriesIndex,
    tiers: Sequence[BurnRateTier],
    objective: Fraction,
    period: timedelta,
    at: datetime | int,
    *,
    exclusions: Exclusions | None = None,
    evidence: Evidence = Evidence(),
) -> list[TierResult]:
    """Every tier's condition at ``at`` (windows end at ``at``, excluded buckets dropped)."""
    objective = objective_from_ratio(objective)
    index = as_index(series, exclusions)
    end = to_minute(at)
    results = []
    for tier in tiers:
        threshold = tier.threshold(period)
        if not tier.enabled:
            results.append(TierResult(tier, threshold, None, None, False, TierReason.DISABLED))
            continue
        spans = (
            MinuteRange(end - minutes_in(tier.long_window), end),
            MinuteRange(end - minutes_in(tier.short_window), end),
        )
        long, short = (_window(index, s, objective, threshold, evidence) for s in spans)
        reason = long.reason if long.reason is not TierReason.MET else short.reason
        results.append(TierResult(tier, threshold, long, short, reason is TierReason.MET, reason))
    return results


class AlertPhase(enum.StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class AlertState:
    """One tier's alert: its phase and when it entered it (persisted as :meth:`to_dict`)."""

    phase: AlertPhase = AlertPhase.INACTIVE
    pending_since: datetime | None = None
    fired_at: datetime | None = None
    resolved_at: datetime | None = None

    def to_dict(self) -> dict[str, str | None]:
        def iso(value: datetime | None) -> str | None:
            return None if value is None else value.isoformat()

        return {
            "phase": str(self.phase),
            "pending_since": iso(self.pending_since),
            "fired_at": iso(self.fired_at),
            "resolved_at": iso(self.resolved_at),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> AlertState:
        def instant(key: str) -> datetime | None:
            value = data.get(key)
            if value is None:
                return None
            if not isinstance(value, str):
                raise ValueError(f"alert state {key!r} must be an ISO timestamp, got {value!r}")
            parsed = datetime.fromisoformat(value)
            to_minute(parsed)  # rejects naive timestamps
            return parsed

        return cls(
            AlertPhase(str(data.get("phase", "inactive"))),
            instant("pending_since"),
            instant("fired_at"),
            instant("resolved_at"),
        )


@dataclass(frozen=True, slots=True)
class Transition:
    before: AlertPhase
    after: AlertPhase
    at: datetime


def step(
    state: AlertState, condition: bool, now: datetime, *, for_: timedelta = timedelta(0)
) -> tuple[AlertState, Transition | None]:
    """Advance one tier's alert by one evaluation.

    A true condition makes an inactive or resolved alert pending (firing at
    once when ``for_`` is zero); a pending alert fires once the condition has
    held for ``for_``; a false condition cancels a pending alert (back to
    inactive) and resolves a firing one.
    """
    phase = state.phase
    if condition:
        if phase is AlertPhase.FIRING:
            return state, None
        since = state.pending_since if phase is AlertPhase.PENDING else now
        assert since is not None  # a pending state always records when it started
        if now - since >= for_:
            new = AlertState(AlertPhase.FIRING, since, now, None)
        elif phase is AlertPhase.PENDING:
            return state, None
        else:
            new = AlertState(AlertPhase.PENDING, now, None, None)
    elif phase is AlertPhase.FIRING:
        new = replace(state, phase=AlertPhase.RESOLVED, resolved_at=now)
    elif phase is AlertPhase.PENDING:
        new = AlertState()
    else:
        return state, None
    return new, Transition(phase, new.phase, now)


class LintLevel(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class LintFinding:
    code: str
    level: LintLevel
    tier: str | None
    message: str


def _seconds(duration: timedelta) -> str:
    return f"{duration} ({duration.total_seconds():g} s)"


def _number(value: Fraction) -> str:
    return f"{as_decimal(value, 6):f}".rstrip("0").rstrip(".")


def _dominates(b: BurnRateTier, a: BurnRateTier, period: timedelta) -> bool:
    """Whether ``b`` fires whenever ``a`` does, at least as loudly and as soon."""
    return (
        b.long_window == a.long_window
        and b.short_window == a.short_window
        and b.threshold(period) <= a.threshold(period)
        and _RANK[b.severity] >= _RANK[a.severity]
        and b.for_ <= a.for_
    )


def _window_findings(tier: BurnRateTier, resolution: timedelta) -> Iterator[LintFinding]:
    for label, window in (("long", tier.long_window), ("short", tier.short_window)):
        if window < resolution:
            yield LintFinding(
                "below-resolution",
                LintLevel.ERROR,
                tier.name,
                f"the {label} window {window} is shorter than the data resolution {resolution}",
            )
        elif window % resolution:
            yield LintFinding(
                "off-resolution",
                LintLevel.WARNING,
                tier.name,
                f"the {label} window {window} is not a whole number of {resolution} buckets",
            )
    if tier.short_window >= tier.long_window:
        yield LintFinding(
            "short-not-shorter",
            LintLevel.WARNING,
            tier.name,
            "the short window is not shorter than the long one",
        )


def _reach_findings(
    tier: BurnRateTier, threshold: Fraction, ceiling: Fraction
) -> list[LintFinding]:
    if threshold > ceiling:
        return [
            LintFinding(
                "never-fires",
                LintLevel.ERROR,
                tier.name,
                f"burn-rate threshold {_number(threshold)} exceeds {_number(ceiling)}, the burn "
                f"rate of a total outage at this objective: it would need more than 100% errors",
            )
        ]
    found = []
    if threshold == ceiling:
        found.append(
            LintFinding("outage-only", LintLevel.WARNING, tier.name, "only a total outage fires it")
        )
    detection = _outage_detection(tier, threshold, ceiling)
    found.append(
        LintFinding(
            "outage-detection",
            LintLevel.INFO,
            tier.name,
            f"threshold {_number(threshold)}; a total outage fires it after {_seconds(detection)}",
        )
    )
    return found


def lint_tiers(
    tiers: Sequence[BurnRateTier],
    objective: Fraction,
    period: timedelta,
    *,
    resolution: timedelta = MINUTE,
) -> list[LintFinding]:
    """What is wrong with, or worth knowing about, ``tiers`` at this objective and period.

    Codes: ``never-fires`` (the threshold needs more than 100% errors),
    ``outage-only``, ``dominated`` (another tier on the same windows fires
    whenever this one does, at least as loudly and as soon), ``below-resolution``
    and ``off-resolution`` (windows against the 1-minute buckets),
    ``short-not-shorter``, ``duplicate-name``; and, for information,
    ``total-outage`` (how fast a total outage spends the whole budget) and
    ``outage-detection`` (how fast it fires each tier).
    """
    objective = objective_from_ratio(objective)
    ceiling = max_burn_rate(objective)
    outage = total_outage_exhaustion(objective, period)
    found = [
        LintFinding(
            "total-outage",
            LintLevel.INFO,
            None,
            f"a total outage spends the whole budget in {_seconds(outage)} "
            f"(the highest possible burn rate is {_number(ceiling)})",
        )
    ]
    seen: set[str] = set()
    for i, tier in enumerate(tiers):
        if tier.name in seen:
            found.append(
                LintFinding(
                    "duplicate-name", LintLevel.ERROR, tier.name, "another tier has this name"
                )
            )
        seen.add(tier.name)
        found.extend(_window_findings(tier, resolution))
        if not tier.enabled:
            continue
        found.extend(_reach_findings(tier, tier.threshold(period), ceiling))
        for j, other in enumerate(tiers):
            # Of two tiers that dominate each other (equal), only the later one is reported.
            if j != i and other.enabled and _dominates(other, tier, period):
                if j > i and _dominates(tier, other, period):
                    continue
                found.append(
                    LintFinding(
                        "dominated",
                        LintLevel.WARNING,
                        tier.name,
                        f"tier {other.name!r} fires whenever this one does, at least as loudly",
                    )
                )
                break
    return found


def _outage_detection(tier: BurnRateTier, threshold: Fraction, ceiling: Fraction) -> timedelta:
    """When a total outage (burn = ``ceiling``) first fires ``tier``, at minute resolution."""
    long = Fraction(tier.long_window // _MICROSECOND, MINUTE // _MICROSECOND)
    return max(math.ceil(threshold / ceiling * long), 1) * MINUTE + ceil_minutes(tier.for_) * MINUTE


def ceil_minutes(duration: timedelta) -> int:
    return -(-duration // MINUTE)
