"""The full SLO definition the engine works from, whatever format it was written in.

The native format, OpenSLO v1 and Sloth ``prometheus/v1`` all load into
:class:`SLODefinition`: frozen values with exact numbers (the objective is a
:class:`~decimal.Decimal` percent kept as written, never a float), durations as
whole-second :class:`~datetime.timedelta`, and one class per variant (SLI,
window, source), so the engine matches on types instead of checking flags.

Invariants are checked on construction (``ValueError``), so a definition
built in code is as sound as one loaded from a file.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sloguard.slo.spec import SLOKind, SLOSpec

__all__ = [
    "DEFAULT_TIERS",
    "DEFAULT_WINDOW",
    "AlertTier",
    "Alerting",
    "Budgeting",
    "BudgetingMethod",
    "CalendarUnit",
    "CalendarWindow",
    "Exclusion",
    "FileSource",
    "Operator",
    "PluginSLI",
    "PrometheusSource",
    "RatioSLI",
    "RawType",
    "RequestSLI",
    "RollingWindow",
    "SLI",
    "SLODefinition",
    "Severity",
    "Source",
    "StoreSource",
    "ThresholdSLI",
    "Window",
    "exact_decimal",
    "format_duration",
    "parse_duration",
    "to_selector",
    "valid_time_zone",
]

# Same rule as SLOSpec.name: the store and the SLI recorder key on it.
NAME_PATTERN = re.compile(r"[a-z0-9]([a-z0-9_.-]{0,62}[a-z0-9])?")
Pairs: TypeAlias = tuple[tuple[str, str], ...]

# -- durations -----------------------------------------------------------------

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(text: str) -> timedelta:
    """``30d``, ``1h30m``, ``5m``, ``0s`` → timedelta; units w d h m s, largest first."""
    if text == "0":
        return timedelta(0)
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groups()):
        raise ValueError(
            f"invalid duration {text!r}: expected numbers with units w, d, h, m, s, "
            "largest first, like 30d, 1h30m or 5m"
        )
    seconds = sum(int(n) * u for n, u in zip(match.groups(), _UNITS.values(), strict=True) if n)
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest ``parse_duration`` text for a whole-second, non-negative timedelta."""
    if value < timedelta(0) or value.microseconds:
        raise ValueError(f"{value} is not a whole, non-negative number of seconds")
    seconds = value // timedelta(seconds=1)
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in _UNITS.items():
        if unit == "w":  # 28d reads better than 4w
            continue
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def exact_decimal(value: object) -> Decimal:
    """A number as written: YAML floats arrive as Decimal, ints and strings convert exactly."""
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, float):
        value = repr(value)  # the shortest text that reads back as this float
    if not isinstance(value, (Decimal, int, str)):
        raise ValueError("must be a number")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError("must be a finite number")
    return number


def valid_time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r}") from None
    return name


# -- SLIs ----------------------------------------------------------------------


class RawType(enum.StrEnum):
    SUCCESS = "success"  # the raw ratio is good / total
    FAILURE = "failure"  # the raw ratio is bad / total


class Operator(enum.StrEnum):
    LT = "lt"
    LTE = "lte"
    GT = "gt"
    GTE = "gte"


@dataclass(frozen=True, slots=True)
class RequestSLI:
    """sloguard's request selector: the SLIs the embedded store records by SLO name.

    Availability counts a response as good unless its status is 5xx; latency
    counts it good when it took at most ``threshold_ms``.
    """

    routes: tuple[str, ...] = ("*",)
    methods: tuple[str, ...] = ()
    kind: SLOKind = SLOKind.AVAILABILITY
    threshold_ms: Decimal | None = None

    def __post_init__(self) -> None:
        if (self.kind is SLOKind.LATENCY) != (self.threshold_ms is not None):
            raise ValueError("a latency SLI needs threshold_ms; an availability SLI has none")


@dataclass(frozen=True, slots=True)
class RatioSLI:
    """Good/total, bad/total or a raw precomputed ratio, as queries for the source.

    For Prometheus the queries are PromQL templates (``{{.window}}`` allowed);
    for a file source they name the columns.
    """

    total: str | None = None
    good: str | None = None
    bad: str | None = None
    raw: str | None = None
    raw_type: RawType | None = None
    counter: bool = True

    def __post_init__(self) -> None:
        if self.raw is not None:
            if self.good or self.bad or self.total or self.raw_type is None:
                raise ValueError("a raw ratio needs raw_type and no good, bad or total")
        elif self.total is None or (self.good is None) == (self.bad is None):
            raise ValueError("a ratio needs total and exactly one of good or bad")


@dataclass(frozen=True, slots=True)
class ThresholdSLI:
    """A metric whose every sample is good when ``sample <op> value`` holds."""

    metric: str
    op: Operator
    value: Decimal


@dataclass(frozen=True, slots=True)
class PluginSLI:
    """A Sloth SLI plugin reference: kept so nothing is lost, not computable here."""

    plugin_id: str
    options: Pairs = ()


SLI: TypeAlias = RequestSLI | RatioSLI | ThresholdSLI | PluginSLI

# -- windows and budgeting -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class RollingWindow:
    length: timedelta

    def __post_init__(self) -> None:
        if self.length <= timedelta(0) or self.length.microseconds:
            raise ValueError("a rolling window is a positive whole number of seconds")


class CalendarUnit(enum.StrEnum):
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


@dataclass(frozen=True, slots=True)
class CalendarWindow:
    """Calendar periods of one ``unit`` in ``time_zone``.

    ``start`` (local wall time in the zone, no offset) anchors the periods; None
    means the unit's natural start: Monday 00:00, the 1st 00:00, or 1 January,
    April, July and October 00:00.
    """

    unit: CalendarUnit
    time_zone: str = "UTC"
    start: datetime | None = None

    def __post_init__(self) -> None:
        valid_time_zone(self.time_zone)
        if self.start is not None and self.start.tzinfo is not None:
            raise ValueError("start is wall time in time_zone, without a UTC offset")


Window: TypeAlias = RollingWindow | CalendarWindow
DEFAULT_WINDOW = RollingWindow(timedelta(days=30))


class BudgetingMethod(enum.StrEnum):
    OCCURRENCES = "Occurrences"
    TIMESLICES = "Timeslices"
    RATIO_TIMESLICES = "RatioTimeslices"


@dataclass(frozen=True, slots=True)
class Budgeting:
    """How the objective is judged, as OpenSLO defines the three methods.

    Timeslices: a slice is good when its good/total ratio is at least
    ``slice_target``; the objective applies to the share of good slices.
    RatioTimeslices: the objective applies to the mean of the slices' ratios.
    """

    method: BudgetingMethod = BudgetingMethod.OCCURRENCES
    slice: timedelta | None = None
    slice_target: Decimal | None = None

    def __post_init__(self) -> None:
        sliced = self.method is not BudgetingMethod.OCCURRENCES
        if sliced != (self.slice is not None):
            raise ValueError(f"{self.method} {'needs' if sliced else 'takes no'} slice window")
        if (self.method is BudgetingMethod.TIMESLICES) != (self.slice_target is not None):
            raise ValueError("slice_target belongs to Timeslices, and Timeslices needs it")
        if self.slice is not None and (self.slice <= timedelta(0) or self.slice.microseconds):
            raise ValueError("the slice window is a positive whole number of seconds")
        if self.slice_target is not None and not 0 < self.slice_target <= 1:
            raise ValueError("slice_target must be in (0, 1]")


# -- alerting ------------------------------------------------------------------


class Severity(enum.StrEnum):
    PAGE = "page"
    TICKET = "ticket"


@dataclass(frozen=True, slots=True)
class AlertTier:
    """One multi-window burn-rate tier (SRE Workbook ch. 5).

    The threshold is either ``budget_percent`` (the share of the period's
    budget spent within ``long_window``, scaled to any period) or an explicit
    ``burn_rate``. With a ``short_window`` both windows must burn that fast.
    """

    name: str
    severity: Severity
    long_window: timedelta
    short_window: timedelta | None = None
    budget_percent: Decimal | None = None
    burn_rate: Decimal | None = None
    enabled: bool = True
    for_: timedelta = timedelta(0)
    labels: Pairs = ()
    annotations: Pairs = ()
    notify: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.budget_percent is None) == (self.burn_rate is None):
            raise ValueError("a tier has exactly one of budget_percent or burn_rate")
        if self.budget_percent is not None and not 0 < self.budget_percent <= 100:
            raise ValueError("budget_percent must be in (0, 100]")
        if self.burn_rate is not None and self.burn_rate <= 0:
            raise ValueError("burn_rate must be positive")
        if self.long_window <= timedelta(0):
            raise ValueError("long_window must be positive")
        if self.short_window is not None and not timedelta(0) < self.short_window < (
            self.long_window
        ):
            raise ValueError("short_window must be positive and shorter than long_window")
        if self.for_ < timedelta(0):
            raise ValueError("for must not be negative")


def _tier(name: str, severity: Severity, percent: int, long: str, short: str) -> AlertTier:
    return AlertTier(
        name=name,
        severity=severity,
        budget_percent=Decimal(percent),
        long_window=parse_duration(long),
        short_window=parse_duration(short),
    )


# The SRE Workbook's tiers (and Sloth's for 30 days), as shares of the budget.
DEFAULT_TIERS: tuple[AlertTier, ...] = (
    _tier("page-1h", Severity.PAGE, 2, "1h", "5m"),
    _tier("page-6h", Severity.PAGE, 5, "6h", "30m"),
    _tier("ticket-1d", Severity.TICKET, 10, "1d", "2h"),
    _tier("ticket-3d", Severity.TICKET, 10, "3d", "6h"),
)


@dataclass(frozen=True, slots=True)
class Alerting:
    tiers: tuple[AlertTier, ...] = DEFAULT_TIERS
    name: str | None = None  # the alert name in generated rules
    labels: Pairs = ()
    annotations: Pairs = ()

    def __post_init__(self) -> None:
        names = [tier.name for tier in self.tiers]
        if len(set(names)) != len(names):
            raise ValueError("tier names must be unique")


# -- exclusions and sources ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Exclusion:
    """A maintenance window left out of the SLI, the budget and the alerts."""

    start: datetime
    end: datetime
    reason: str = ""

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a UTC offset or a time zone")
        if self.end <= self.start:
            raise ValueError("end must be after start")


@dataclass(frozen=True, slots=True)
class StoreSource:
    """The embedded store; ``path`` None means the one in the settings."""

    path: str | None = None


@dataclass(frozen=True, slots=True)
class PrometheusSource:
    """Prometheus over its HTTP API.

    ``good``/``bad``/``total`` are query templates for a request-selector SLI;
    a :class:`RatioSLI` carries its own queries.
    """

    name: str | None = None  # the DataSource it came from
    url: str | None = None
    good: str | None = None
    bad: str | None = None
    total: str | None = None


@dataclass(frozen=True, slots=True)
class FileSource:
    path: str
    format: str = "csv"  # csv | json

    def __post_init__(self) -> None:
        if self.format not in ("csv", "json"):
            raise ValueError("format must be csv or json")


Source: TypeAlias = StoreSource | PrometheusSource | FileSource

# -- the definition ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SLODefinition:
    """One SLO, complete: what to measure, against what, over which window."""

    name: str
    service: str
    objective: Decimal  # percent, as written: Decimal("99.9")
    sli: SLI
    window: Window = DEFAULT_WINDOW
    budgeting: Budgeting = Budgeting()
    alerting: Alerting = Alerting()
    exclusions: tuple[Exclusion, ...] = ()
    source: Source = StoreSource()
    description: str = ""
    display_name: str = ""
    labels: Pairs = ()
    origin: str = field(default="", compare=False)  # "file:line" it was loaded from

    def __post_init__(self) -> None:
        if NAME_PATTERN.fullmatch(self.name) is None:
            raise ValueError(
                "name must be 1-64 lowercase letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit"
            )
        if not 0 < self.objective < 100:
            raise ValueError("objective must be between 0 and 100 (exclusive)")

    @property
    def target(self) -> Fraction:
        """The objective as an exact fraction: 99.9 → 999/1000."""
        return Fraction(self.objective) / 100

    @property
    def error_budget(self) -> Fraction:
        """The allowed share of bad events (or slices): 1 - target."""
        return 1 - self.target


def to_selector(definition: SLODefinition) -> SLOSpec | None:
    """The SLI recorder's minimal spec for a request-selector SLO, else None."""
    sli = definition.sli
    if not isinstance(sli, RequestSLI):
        return None
    # SLOSpec holds a float; an objective like 99.99999999999999999 would round to
    # 100.0, which it rejects. The recorder counts events and never reads it.
    objective = min(float(definition.objective), math.nextafter(100.0, 0.0))
    return SLOSpec(
        name=definition.name,
        kind=sli.kind,
        objective=objective,
        routes=sli.routes,
        methods=sli.methods,
        threshold_ms=None if sli.threshold_ms is None else float(sli.threshold_ms),
        description=definition.description,
    )
