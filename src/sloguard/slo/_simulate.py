"""Canonical incident shapes, synthesized, and how fast each alert tier reacts.

Tiers are tuned against incidents nobody wants to wait for: a step outage
(x% errors for T), periodic spikes, a slow drift. :func:`simulate` builds the
shape as exact per-minute counts at a steady traffic rate (bad events are the
error ratio times the rate, rounded half up), replays it through
:func:`scan_history` and reports each tier's detection and reset time, as the
SRE Workbook does in ch. 5: 15% errors for 10 minutes at 99.9%/30d fire the
1h/5m tier after 6 minutes (the long window crosses 14.4x at 0.15 x t/60 /
0.001 >= 14.4, t = 5.76) and let go 5 minutes after the errors stop.

A scenario is a list of :class:`Segment` plus the stretch that counts as the
incident; :func:`segments_series` is shared with the spec unit tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from fractions import Fraction
from typing import Any, Final

from sloguard.slo._alerting import BurnRateTier
from sloguard.slo._backtest import TierTiming, tier_timings
from sloguard.slo._history import scan_history
from sloguard.slo._windows import Bucket, minutes_in

__all__ = [
    "LEAD",
    "Scenario",
    "Segment",
    "Simulation",
    "periodic_spikes",
    "segments_series",
    "simulate",
    "slow_drift",
    "step_outage",
]

LEAD: Final = timedelta(days=3)
"""Healthy history before every incident, so the longest default window is full."""


@dataclass(frozen=True, slots=True)
class Segment:
    """``minutes`` of traffic at ``error_ratio`` (an exact fraction of events that fail)."""

    minutes: int
    error_ratio: Fraction

    def __post_init__(self) -> None:
        object.__setattr__(self, "error_ratio", Fraction(self.error_ratio))
        if self.minutes < 0 or not 0 <= self.error_ratio <= 1:
            raise ValueError("a segment needs minutes >= 0 and 0 <= error_ratio <= 1")


def segments_series(segments: Sequence[Segment], rate: int, start: int = 0) -> list[Bucket]:
    """Per-minute ``(minute, good, total)`` buckets: ``rate`` events a minute."""
    if rate <= 0:
        raise ValueError("the traffic rate must be positive")
    out: list[Bucket] = []
    minute = start
    for segment in segments:
        bad = min(rate, math.floor(segment.error_ratio * rate + Fraction(1, 2)))
        out.extend((m, rate - bad, rate) for m in range(minute, minute + segment.minutes))
        minute += segment.minutes
    return out


@dataclass(frozen=True, slots=True)
class Scenario:
    """Segments; the incident is minutes ``[incident_start, incident_end)`` from their start."""

    name: str
    segments: tuple[Segment, ...]
    incident_start: int
    incident_end: int


def _lead(baseline: Fraction) -> Segment:
    return Segment(minutes_in(LEAD), baseline)


def step_outage(
    error_ratio: Fraction, duration: timedelta, *, baseline: Fraction = Fraction(0)
) -> Scenario:
    """``error_ratio`` errors for ``duration`` after a healthy lead, then healthy again."""
    lead, length = _lead(baseline), minutes_in(duration)
    tail = Segment(minutes_in(LEAD), baseline)
    return Scenario(
        f"step {float(error_ratio):.2%} for {duration}",
        (lead, Segment(length, error_ratio), tail),
        lead.minutes,
        lead.minutes + length,
    )


def periodic_spikes(
    error_ratio: Fraction,
    spike: timedelta,
    every: timedelta,
    count: int,
    *,
    baseline: Fraction = Fraction(0),
) -> Scenario:
    """``count`` spikes of ``error_ratio`` lasting ``spike``, one starting every ``every``."""
    if count < 1 or every <= spike:
        raise ValueError("spikes need count >= 1 and every > spike")
    lead = _lead(baseline)
    on, off = minutes_in(spike), minutes_in(every) - minutes_in(spike)
    body: list[Segment] = []
    for _ in range(count):
        body += [Segment(on, error_ratio), Segment(off, baseline)]
    end = lead.minutes + (count - 1) * (on + off) + on
    return Scenario(
        f"{count} spikes of {float(error_ratio):.2%} for {spike} every {every}",
        (lead, *body, Segment(minutes_in(LEAD), baseline)),
        lead.minutes,
        end,
    )


def slow_drift(
    start_ratio: Fraction, end_ratio: Fraction, duration: timedelta, *, steps: int = 0
) -> Scenario:
    """Errors rising linearly from ``start_ratio`` to ``end_ratio`` over ``duration``.

    ``steps`` (default: one per minute) sets how many plateaus approximate the ramp.
    """
    minutes = minutes_in(duration)
    steps = steps or minutes
    lead = _lead(start_ratio)
    ramp = []
    for k in range(steps):
        length = (k + 1) * minutes // steps - k * minutes // steps
        ratio = start_ratio + (end_ratio - start_ratio) * Fraction(k + 1, steps)
        ramp.append(Segment(length, ratio))
    return Scenario(
        f"drift {float(start_ratio):.2%} -> {float(end_ratio):.2%} over {duration}",
        (lead, *ramp, Segment(minutes_in(LEAD), start_ratio)),
        lead.minutes,
        lead.minutes + minutes,
    )


@dataclass(frozen=True, slots=True)
class Simulation:
    scenario: Scenario
    rate: int
    timings: tuple[TierTiming, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario.name,
            "rate_per_minute": self.rate,
            "incident_minutes": self.scenario.incident_end - self.scenario.incident_start,
            "tiers": [t.as_dict() for t in self.timings],
        }


def simulate(
    scenario: Scenario,
    tiers: Sequence[BurnRateTier],
    objective: Fraction,
    period: timedelta,
    *,
    rate: int = 1000,
) -> Simulation:
    """Detection and reset time of each tier for ``scenario`` at ``rate`` events a minute."""
    series = segments_series(scenario.segments, rate)
    end = series[-1][0] + 1 if series else 0
    histories = scan_history(series, tiers, objective, period, 0, end)
    timings = tier_timings(histories, scenario.incident_start, scenario.incident_end)
    return Simulation(scenario, rate, tuple(timings))
