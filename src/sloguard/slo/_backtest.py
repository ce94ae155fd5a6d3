"""Replay a history through an SLO spec: what would have paged, and how fast.

A backtest answers "had this spec been live, what would it have done?": the
pages and tickets of each tier (from :func:`scan_history`'s firing intervals),
how fast each tier caught each incident and how fast it let go, and the budget
of every calendar period. Two specs over the same history give a side-by-side
comparison (:func:`compare`), which is how a tier change is judged before it ships.

An *incident* is a maximal run of minutes whose bad ratio exceeds the error
budget rate (``1 - objective``), with runs less than :data:`MERGE_GAP` minutes
apart merged into one (a flapping outage is one incident, not ten). For each
tier, *detection* is the first firing start at or after the incident start
minus that start (0 when the tier was already firing), and *reset* is the end
of the last firing interval that began before ``incident end + short window``
minus the incident end. Minutes are unix minutes and ``[start, end)`` ranges.

History files (:func:`load_history`) are CSV with a header, or JSON (a list of
objects or of ``[minute, good, total]`` triples), with columns ``minute`` (unix
minutes) or ``timestamp`` (ISO 8601 with a zone, or unix seconds), ``good``, ``total``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

from sloguard.slo import _model as model
from sloguard.slo._alerting import BurnRateTier, Severity
from sloguard.slo._budget import BudgetReport, period_reports
from sloguard.slo._engine import engine_budgeting, engine_tiers, engine_window
from sloguard.slo._history import TierHistory, scan_history
from sloguard.slo._windows import (
    Bucket,
    CalendarUnit,
    CalendarWindow,
    Exclusions,
    MaintenanceWindow,
    MinuteRange,
    RollingWindow,
    SeriesIndex,
    minutes_in,
    to_minute,
)

__all__ = [
    "MERGE_GAP",
    "BacktestResult",
    "HistoryFileError",
    "Incident",
    "TierTiming",
    "backtest",
    "compare",
    "find_incidents",
    "history_span",
    "history_start",
    "load_history",
    "tier_timings",
]

MERGE_GAP: Final = 5
"""Incidents closer than this many minutes are one incident."""

Progress = Callable[[int, int], None]


class HistoryFileError(ValueError):
    """A history file that cannot be read as ``minute|timestamp, good, total`` rows."""


def _minute_of(row: dict[str, Any]) -> int:
    if "minute" in row and row["minute"] not in (None, ""):
        return int(row["minute"])
    stamp = row.get("timestamp")
    if stamp is None or stamp == "":
        raise HistoryFileError("each row needs a 'minute' or a 'timestamp'")
    if isinstance(stamp, int | float) or str(stamp).replace(".", "", 1).isdigit():
        return int(float(stamp)) // 60
    return to_minute(datetime.fromisoformat(str(stamp)))


def load_history(path: Path) -> list[Bucket]:
    """``(minute, good, total)`` buckets from a CSV or JSON history file."""
    try:
        text = path.read_text()
        if path.suffix == ".json":
            data = json.loads(text)
            if not isinstance(data, list):
                raise HistoryFileError(f"{path}: a JSON history is a list of rows")
            rows = [
                r if isinstance(r, dict) else dict(zip(("minute", "good", "total"), r, strict=True))
                for r in data
            ]
        else:
            rows = list(csv.DictReader(io.StringIO(text)))
        buckets = [(_minute_of(r), int(r["good"]), int(r["total"])) for r in rows]
    except HistoryFileError as exc:
        raise HistoryFileError(f"{path}: {exc}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise HistoryFileError(f"{path}: {exc!r}") from exc
    if any(not 0 <= g <= t for _, g, t in buckets):
        raise HistoryFileError(f"{path}: every row needs 0 <= good <= total")
    return sorted(buckets)


@dataclass(frozen=True, slots=True)
class Incident:
    """Unix minutes ``[start, end)`` whose bad ratio exceeded the error budget rate."""

    start: int
    end: int
    bad: int
    total: int


def find_incidents(
    index: SeriesIndex, objective: Fraction, start: int, end: int, *, merge_gap: int = MERGE_GAP
) -> list[Incident]:
    """Maximal runs of over-budget minutes in ``[start, end)``, merged across short gaps."""
    budget = 1 - objective
    minutes, goods, totals = index.columns(MinuteRange(start, end))
    found: list[Incident] = []
    for minute, good, total in zip(minutes, goods, totals, strict=True):
        if total == 0 or (total - good) <= budget * total:
            continue
        if found and minute - found[-1].end < merge_gap:
            last = found[-1]
            found[-1] = Incident(
                last.start, minute + 1, last.bad + total - good, last.total + total
            )
        else:
            found.append(Incident(minute, minute + 1, total - good, total))
    return found


@dataclass(frozen=True, slots=True)
class TierTiming:
    """How one tier met one incident; minutes, None when it never fired for it."""

    tier: str
    severity: Severity
    detection: int | None
    reset: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "severity": str(self.severity),
            "detection_minutes": self.detection,
            "reset_minutes": self.reset,
        }


def tier_timings(histories: Sequence[TierHistory], start: int, end: int) -> list[TierTiming]:
    """Detection and reset of every tier for the incident ``[start, end)``."""
    out = []
    for history in histories:
        horizon = end + minutes_in(history.tier.short_window)
        related = [i for i in history.intervals if i.end > start and i.start < horizon]
        detection = reset = None
        if related:
            detection = max(related[0].start - start, 0)
            last = related[-1]
            reset = None if last.ongoing else last.end - end
        out.append(TierTiming(history.tier.name, history.tier.severity, detection, reset))
    return out


@dataclass(frozen=True, slots=True)
class BacktestResult:
    slo: str
    start: int
    end: int
    tiers: tuple[TierHistory, ...]
    incidents: tuple[tuple[Incident, tuple[TierTiming, ...]], ...]
    periods: tuple[BudgetReport, ...]

    def firings(self, severity: Severity) -> int:
        return sum(len(h.intervals) for h in self.tiers if h.tier.severity is severity)

    @property
    def pages(self) -> int:
        return self.firings(Severity.PAGE)

    @property
    def tickets(self) -> int:
        return self.firings(Severity.TICKET)

    def as_dict(self) -> dict[str, Any]:
        return {
            "slo": self.slo,
            "start_minute": self.start,
            "end_minute": self.end,
            "pages": self.pages,
            "tickets": self.tickets,
            "tiers": [
                {
                    "name": h.tier.name,
                    "severity": str(h.tier.severity),
                    "firings": [
                        {"start_minute": i.start, "end_minute": i.end, "ongoing": i.ongoing}
                        for i in h.intervals
                    ],
                }
                for h in self.tiers
            ],
            "incidents": [
                {
                    "start_minute": inc.start,
                    "end_minute": inc.end,
                    "bad": inc.bad,
                    "total": inc.total,
                    "tiers": [t.as_dict() for t in timings],
                }
                for inc, timings in self.incidents
            ],
            "periods": [p.as_dict() for p in self.periods],
        }


def _period(window: RollingWindow | CalendarWindow, at: int) -> timedelta:
    if isinstance(window, RollingWindow):
        return window.duration
    return window.period(at).duration


def _calendar(window: RollingWindow | CalendarWindow) -> CalendarWindow:
    return window if isinstance(window, CalendarWindow) else CalendarWindow(CalendarUnit.MONTH)


def history_start(definition: model.SLODefinition, start: int) -> int:
    """The first minute a backtest from ``start`` reads: the longest tier's lookback,
    or the start of the budget period holding ``start``, whichever is earlier."""
    longest = max((t.long_window for t in definition.alerting.tiers), default=timedelta(0))
    period = _calendar(engine_window(definition.window)).period(start)
    return min(start - minutes_in(max(longest, timedelta(minutes=1))), period.start)


def backtest(
    definition: model.SLODefinition,
    series: Sequence[Bucket],
    start: int,
    end: int,
    *,
    progress: Progress | None = None,
) -> BacktestResult:
    """Replay ``series`` over the instants ``[start, end)`` through ``definition``.

    ``series`` should start at :func:`history_start`. Budget periods are the spec's
    calendar periods, or calendar months (UTC) for a rolling window; the last is
    cut at ``end``. ``progress(done, total)`` is called once per phase.
    """
    report = progress or (lambda done, total: None)
    window = engine_window(definition.window)
    period = _period(window, start)
    exclusions = Exclusions.of(
        MaintenanceWindow(e.start, e.end, e.reason) for e in definition.exclusions
    )
    index = SeriesIndex(series, exclusions)
    report(1, 4)
    tiers: tuple[BurnRateTier, ...] = engine_tiers(definition.alerting, period)
    histories = scan_history(index, tiers, definition.target, period, start, end)
    report(2, 4)
    incidents = find_incidents(index, definition.target, start, end)
    timed = tuple((i, tuple(tier_timings(histories, i.start, i.end))) for i in incidents)
    report(3, 4)
    calendar = window if isinstance(window, CalendarWindow) else CalendarWindow(CalendarUnit.MONTH)
    periods = period_reports(
        index,
        objective=definition.target,
        calendar=calendar,
        start=start,
        end=end,
        budgeting=engine_budgeting(definition.budgeting),
    )
    report(4, 4)
    return BacktestResult(definition.name, start, end, tuple(histories), timed, tuple(periods))


def compare(a: BacktestResult, b: BacktestResult) -> dict[str, Any]:
    """Two backtests of one history side by side: totals and per-incident detection."""

    def best(timings: tuple[TierTiming, ...]) -> int | None:
        found = [t.detection for t in timings if t.detection is not None]
        return min(found) if found else None

    b_incidents = {inc.start: timings for inc, timings in b.incidents}
    return {
        "a": {"slo": a.slo, "pages": a.pages, "tickets": a.tickets},
        "b": {"slo": b.slo, "pages": b.pages, "tickets": b.tickets},
        "incidents": [
            {
                "start_minute": inc.start,
                "end_minute": inc.end,
                "a_detection_minutes": best(timings),
                "b_detection_minutes": best(b_incidents.get(inc.start, ())),
            }
            for inc, timings in a.incidents
        ],
        "missed": {
            "a": sum(1 for _, t in a.incidents if best(t) is None),
            "b": sum(1 for _, t in b.incidents if best(t) is None),
        },
    }


def history_span(series: Sequence[Bucket]) -> tuple[int, int]:
    """The minutes a history covers, ``[first, last + 1)``."""
    if not series:
        raise HistoryFileError("the history holds no buckets")
    return series[0][0], series[-1][0] + 1
