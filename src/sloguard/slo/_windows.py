"""Time windows over per-minute buckets: rolling, calendar-aligned, and excluded.

The store keeps one bucket per minute (``minute`` = unix seconds // 60), so
every window here resolves to a half-open range of minutes ``[start, end)``.
An evaluation "at" an instant covers the whole minutes before it: a 1-hour
rolling window at 12:00 holds the buckets 11:00 … 11:59.

Calendar windows (day, week, month, quarter, year) follow the wall clock of a
time zone (``zoneinfo``), so a month in ``Europe/Berlin`` starts at local
midnight on the 1st and the March period is one hour shorter than 31 days.

Exclusions (maintenance windows) drop every bucket whose minute overlaps the
window: a maintenance window from 10:00:30 to 10:05 drops minutes 10:00 to
10:04. The budget math and the alerts drop the same buckets, so an excluded
minute counts nowhere.
"""

from __future__ import annotations

import enum
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import accumulate, islice
from operator import gt, itemgetter, lt, sub
from typing import Final, TypeAlias
from zoneinfo import ZoneInfo

__all__ = [
    "MINUTE",
    "Bucket",
    "CalendarUnit",
    "CalendarWindow",
    "Exclusions",
    "MaintenanceWindow",
    "MinuteRange",
    "RollingWindow",
    "SeriesIndex",
    "Window",
    "as_index",
    "datetime_of",
    "minutes_in",
    "to_minute",
]

MINUTE: Final = timedelta(minutes=1)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def to_minute(at: datetime | int) -> int:
    """The unix minute holding ``at`` (an aware datetime, or already a unix minute)."""
    if isinstance(at, int):
        return at
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"need an aware datetime (with a time zone), got {at!r}")
    return (at - _EPOCH) // MINUTE


def datetime_of(minute: int) -> datetime:
    """The UTC instant at which unix minute ``minute`` starts."""
    return _EPOCH + minute * MINUTE


def minutes_in(duration: timedelta) -> int:
    """``duration`` as a whole, positive number of minutes (the data resolution)."""
    if duration <= timedelta(0) or duration % MINUTE:
        raise ValueError(f"a window must be a positive whole number of minutes, got {duration}")
    return duration // MINUTE


@dataclass(frozen=True, slots=True)
class MinuteRange:
    """Unix minutes ``[start, end)``."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"a minute range needs start <= end, got [{self.start}, {self.end})")

    @property
    def minutes(self) -> int:
        return self.end - self.start

    @property
    def duration(self) -> timedelta:
        return self.minutes * MINUTE

    def __contains__(self, minute: object) -> bool:
        return isinstance(minute, int) and self.start <= minute < self.end

    def intersect(self, other: MinuteRange) -> MinuteRange:
        start = max(self.start, other.start)
        return MinuteRange(start, max(start, min(self.end, other.end)))


@dataclass(frozen=True, slots=True)
class RollingWindow:
    """The last ``duration`` before the evaluation instant (OpenSLO ``isRolling: true``)."""

    duration: timedelta

    def __post_init__(self) -> None:
        minutes_in(self.duration)

    def span(self, at: datetime | int) -> MinuteRange:
        end = to_minute(at)
        return MinuteRange(end - minutes_in(self.duration), end)

    def period(self, at: datetime | int) -> MinuteRange:
        """The budgeting period at ``at``: for a rolling window, the window itself."""
        return self.span(at)


class CalendarUnit(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


@dataclass(frozen=True, slots=True)
class CalendarWindow:
    """Calendar periods in a time zone; weeks start on ``week_start`` (0 = Monday)."""

    unit: CalendarUnit
    tz: str = "UTC"
    week_start: int = 0
    _zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.week_start <= 6:
            raise ValueError(f"week_start must be 0 (Monday) to 6 (Sunday), got {self.week_start}")
        object.__setattr__(self, "unit", CalendarUnit(self.unit))
        object.__setattr__(self, "_zone", ZoneInfo(self.tz))

    def period(self, at: datetime | int) -> MinuteRange:
        """The whole calendar period holding ``at``."""
        local = datetime_of(to_minute(at)).astimezone(self._zone)
        start = self._local_start(local.year, local.month, local.day)
        return MinuteRange(to_minute(start), to_minute(self._next_start(start)))

    def span(self, at: datetime | int) -> MinuteRange:
        """The period to date: from the start of the period holding ``at`` up to ``at``."""
        end = to_minute(at)
        return MinuteRange(self.period(end).start, end)

    def periods(self, start: datetime | int, end: datetime | int) -> Iterator[MinuteRange]:
        """Every whole period overlapping ``[start, end)``, in order."""
        last = to_minute(end)
        current = self.period(to_minute(start))
        while current.start < last:
            yield current
            current = self.period(current.end)

    def _local_start(self, year: int, month: int, day: int) -> datetime:
        if self.unit is CalendarUnit.DAY:
            return datetime(year, month, day, tzinfo=self._zone)
        if self.unit is CalendarUnit.WEEK:
            date = datetime(year, month, day).date()
            date -= timedelta(days=(date.weekday() - self.week_start) % 7)
            return datetime(date.year, date.month, date.day, tzinfo=self._zone)
        if self.unit is CalendarUnit.MONTH:
            return datetime(year, month, 1, tzinfo=self._zone)
        if self.unit is CalendarUnit.QUARTER:
            return datetime(year, month - (month - 1) % 3, 1, tzinfo=self._zone)
        return datetime(year, 1, 1, tzinfo=self._zone)

    def _next_start(self, start: datetime) -> datetime:
        if self.unit in (CalendarUnit.DAY, CalendarUnit.WEEK):
            # Add calendar days on the wall clock, so a DST change shortens or lengthens the period.
            days = 1 if self.unit is CalendarUnit.DAY else 7
            date = start.date() + timedelta(days=days)
            return datetime(date.year, date.month, date.day, tzinfo=self._zone)
        months = {CalendarUnit.MONTH: 1, CalendarUnit.QUARTER: 3, CalendarUnit.YEAR: 12}[self.unit]
        index = start.year * 12 + start.month - 1 + months
        return datetime(index // 12, index % 12 + 1, 1, tzinfo=self._zone)


Window: TypeAlias = RollingWindow | CalendarWindow


def _range_key(span: MinuteRange) -> tuple[int, int]:
    return (span.start, span.end)


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    """A stretch of time whose buckets count nowhere (no SLI, no budget, no alert)."""

    start: datetime
    end: datetime
    reason: str = ""

    def __post_init__(self) -> None:
        to_minute(self.start)  # both ends must be aware datetimes
        to_minute(self.end)
        if self.end < self.start:
            raise ValueError(f"a maintenance window needs start <= end: {self.start} .. {self.end}")

    @property
    def minutes(self) -> MinuteRange:
        """Every minute the window touches (start rounded down, end rounded up)."""
        end = to_minute(self.end)
        if datetime_of(end) < self.end:
            end += 1
        return MinuteRange(to_minute(self.start), end)


@dataclass(frozen=True, slots=True)
class Exclusions:
    """Merged, sorted excluded minute ranges; build with :meth:`of`."""

    ranges: tuple[MinuteRange, ...] = ()
    _starts: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        merged: list[MinuteRange] = []
        for item in sorted((r for r in self.ranges if r.minutes), key=_range_key):
            if merged and item.start <= merged[-1].end:
                last = merged[-1]
                merged[-1] = MinuteRange(last.start, max(last.end, item.end))
            else:
                merged.append(item)
        object.__setattr__(self, "ranges", tuple(merged))
        object.__setattr__(self, "_starts", tuple(r.start for r in merged))

    @classmethod
    def of(cls, windows: Iterable[MaintenanceWindow | MinuteRange]) -> Exclusions:
        return cls(tuple(w.minutes if isinstance(w, MaintenanceWindow) else w for w in windows))

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def excludes(self, minute: int) -> bool:
        index = bisect_right(self._starts, minute) - 1
        return index >= 0 and minute < self.ranges[index].end

    def excluded_minutes(self, span: MinuteRange) -> int:
        """How many minutes of ``span`` are excluded."""
        first = max(0, bisect_right(self._starts, span.start) - 1)
        last = bisect_left(self._starts, span.end)
        return sum(r.intersect(span).minutes for r in self.ranges[first:last])

    def drop(self, minutes: list[int]) -> list[tuple[int, int]]:
        """The index ranges ``[i, j)`` of the sorted ``minutes`` to keep."""
        keep: list[tuple[int, int]] = []
        position = 0
        for excluded in self.ranges:
            i = bisect_left(minutes, excluded.start, position)
            j = bisect_left(minutes, excluded.end, i)
            if i > position:
                keep.append((position, i))
            position = j
        if position < len(minutes):
            keep.append((position, len(minutes)))
        return keep


Bucket: TypeAlias = tuple[int, int, int]
"""``(minute, good, total)``: one minute of one SLO, as ``SQLiteStore.series`` returns it."""


class SeriesIndex:
    """Buckets sorted by minute, exclusions dropped, with prefix sums.

    The counts of any window cost two binary searches, so one index serves
    every window, tier and report of an evaluation. Missing minutes have no
    data; buckets repeating a minute are added up.
    """

    __slots__ = ("_goods", "_minutes", "_prefix_good", "_prefix_total", "_totals", "exclusions")

    def __init__(self, series: Iterable[Bucket], exclusions: Exclusions | None = None) -> None:
        rows = series if isinstance(series, list) else list(series)
        minutes = list(map(itemgetter(0), rows))
        if not all(map(lt, minutes, islice(minutes, 1, None))):
            merged: dict[int, tuple[int, int]] = {}
            for minute, good, total in rows:
                g, t = merged.get(minute, (0, 0))
                merged[minute] = (g + good, t + total)
            rows = [(m, g, t) for m, (g, t) in sorted(merged.items())]
            minutes = list(map(itemgetter(0), rows))
        goods = list(map(itemgetter(1), rows))
        totals = list(map(itemgetter(2), rows))
        if goods and (min(goods) < 0 or any(map(gt, goods, totals))):
            raise ValueError("every bucket needs 0 <= good <= total")
        self.exclusions = exclusions or Exclusions()
        if self.exclusions:
            keep = self.exclusions.drop(minutes)
            minutes = [m for i, j in keep for m in minutes[i:j]]
            goods = [g for i, j in keep for g in goods[i:j]]
            totals = [t for i, j in keep for t in totals[i:j]]
        self._minutes = minutes
        self._goods = goods
        self._totals = totals
        self._prefix_good = list(accumulate(goods, initial=0))
        self._prefix_total = list(accumulate(totals, initial=0))

    def __len__(self) -> int:
        return len(self._minutes)

    @property
    def first_minute(self) -> int | None:
        return self._minutes[0] if self._minutes else None

    @property
    def last_minute(self) -> int | None:
        return self._minutes[-1] if self._minutes else None

    def _bounds(self, span: MinuteRange) -> tuple[int, int]:
        i = bisect_left(self._minutes, span.start)
        return i, bisect_left(self._minutes, span.end, i)

    def counts(self, span: MinuteRange) -> tuple[int, int]:
        """``(good, total)`` over ``span``."""
        i, j = self._bounds(span)
        return (
            self._prefix_good[j] - self._prefix_good[i],
            self._prefix_total[j] - self._prefix_total[i],
        )

    def columns(self, span: MinuteRange) -> tuple[list[int], list[int], list[int]]:
        """The minutes, good counts and totals of the buckets in ``span``."""
        i, j = self._bounds(span)
        return self._minutes[i:j], self._goods[i:j], self._totals[i:j]

    def dense_prefix(self, span: MinuteRange) -> tuple[list[int], list[int]]:
        """Prefix sums of bad and total events over every minute of ``span``.

        A window ``[a, b)`` inside ``span`` holds ``p[b - start] - p[a - start]``
        (the sums may all carry one constant offset: only differences mean anything).
        """
        i, j = self._bounds(span)
        if j - i == span.minutes:  # every minute present: reuse the index's own prefix sums
            totals = self._prefix_total[i : j + 1]
            return list(map(sub, totals, self._prefix_good[i : j + 1])), totals
        bads = [0] * span.minutes
        totals = [0] * span.minutes
        for k in range(i, j):
            offset = self._minutes[k] - span.start
            totals[offset] = self._totals[k]
            bads[offset] = self._totals[k] - self._goods[k]
        return list(accumulate(bads, initial=0)), list(accumulate(totals, initial=0))


def as_index(series: Iterable[Bucket] | SeriesIndex, exclusions: Exclusions | None) -> SeriesIndex:
    """``series`` as an index; an index already carries its exclusions."""
    if isinstance(series, SeriesIndex):
        if exclusions is not None and exclusions != series.exclusions:
            raise ValueError("pass exclusions when building the SeriesIndex, not alongside it")
        return series
    return SeriesIndex(series, exclusions)
