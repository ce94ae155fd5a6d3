"""sloguard's own SLO format: one short YAML document per SLO.

```yaml
apiVersion: sloguard.dev/v1
kind: SLO
metadata: {name: checkout-availability, service: shop}
spec:
  objective: 99.9                 # percent, kept exact
  window: 30d                     # or {calendar: month, timeZone: Europe/Berlin}
  sli: {requests: {routes: ["/checkout"], methods: [POST], good: "status < 500"}}
  budgeting: occurrences          # or {timeslices: {slice: 5m, target: 0.95}}
  alerting: {tiers: default}      # or a list of tiers
  exclusions: [{start: "2026-11-01T02:00:00Z", end: "2026-11-01T04:00:00Z"}]
  source: store                   # or prometheus, {prometheus: {...}}, {file: {...}}
```

The SLI is one of ``requests`` (the embedded store's selector: ``good:
"status < 500"`` for availability, the default, or ``latency: {threshold_ms:
300}``), ``ratio`` (``good``/``bad`` + ``total``, or ``raw`` + ``rawType``)
or ``threshold`` (``metric``, ``op``, ``value``). Budgeting is
``occurrences``, ``{timeslices: {slice, target}}`` or ``{ratioTimeslices:
{slice}}``. A tier is ``{name, severity: page|ticket, budgetPercent | burnRate,
longWindow, shortWindow, enabled, for}``. Without ``alerting`` the default
tiers apply; ``tiers: []`` turns alerting off.

:func:`dump_native` writes a definition back (round trip: load → dump → load
gives an equal definition).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from sloguard.slo._model import (
    DEFAULT_TIERS,
    NAME_PATTERN,
    SLI,
    Alerting,
    AlertTier,
    Budgeting,
    BudgetingMethod,
    CalendarUnit,
    CalendarWindow,
    Exclusion,
    FileSource,
    Operator,
    PrometheusSource,
    RatioSLI,
    RawType,
    RequestSLI,
    RollingWindow,
    Severity,
    SLODefinition,
    Source,
    StoreSource,
    ThresholdSLI,
    Window,
    exact_decimal,
    parse_duration,
    valid_time_zone,
)
from sloguard.slo._specload import (
    NATIVE_API,
    DurationText,
    ExactNumber,
    Issues,
    LabelText,
    Loc,
    OneOf,
    SpecModel,
    build,
    checked,
    fail,
)
from sloguard.slo.spec import SLOKind, SLOSpec

__all__ = ["AVAILABILITY_RULE", "parse_exclusions", "parse_native", "parse_requests"]

AVAILABILITY_RULE = "status < 500"

# -- the document ---------------------------------------------------------------


class _Metadata(SpecModel):
    name: str
    service: str
    display_name: str = Field("", alias="displayName")
    labels: dict[str, LabelText] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if NAME_PATTERN.fullmatch(value) is None:
            raise ValueError(
                "must be 1-64 lowercase letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit"
            )
        return value

    @field_validator("service")
    @classmethod
    def _service(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class _Latency(SpecModel):
    threshold_ms: ExactNumber

    @field_validator("threshold_ms")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("must be greater than 0")
        return value


class _Requests(SpecModel):
    routes: tuple[str, ...] = ("*",)
    methods: tuple[str, ...] = ()
    good: str | None = None
    latency: _Latency | None = None

    @field_validator("good")
    @classmethod
    def _good(cls, value: str) -> str:
        if re.sub(r"\s+", "", value) != re.sub(r"\s+", "", AVAILABILITY_RULE):
            raise ValueError(
                f"the embedded store counts availability as {AVAILABILITY_RULE!r}; "
                "write that, or leave good out"
            )
        return value

    @model_validator(mode="after")
    def _one_rule(self) -> _Requests:
        if self.good is not None and self.latency is not None:
            raise ValueError("give good (availability) or latency, not both")
        return self


class _Ratio(SpecModel):
    good: str | None = None
    bad: str | None = None
    total: str | None = None
    raw: str | None = None
    raw_type: RawType | None = Field(None, alias="rawType")
    counter: bool = True


class _Threshold(SpecModel):
    metric: str
    op: Operator
    value: ExactNumber


class _Sli(OneOf):
    requests: _Requests | None = None
    ratio: _Ratio | None = None
    threshold: _Threshold | None = None


class _Calendar(SpecModel):
    calendar: CalendarUnit
    time_zone: str = Field("UTC", alias="timeZone")
    start: datetime | None = None

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return valid_time_zone(value)


class _Timeslices(SpecModel):
    slice: DurationText
    target: ExactNumber

    @field_validator("target")
    @classmethod
    def _target(cls, value: Decimal) -> Decimal:
        if not 0 < value <= 1:
            raise ValueError("must be in (0, 1]: the share of good events a good slice needs")
        return value


class _RatioTimeslices(SpecModel):
    slice: DurationText


class _Budgeting(OneOf):
    timeslices: _Timeslices | None = None
    ratio_timeslices: _RatioTimeslices | None = Field(None, alias="ratioTimeslices")


class _Tier(SpecModel):
    name: str
    severity: Severity
    long_window: DurationText = Field(alias="longWindow")
    short_window: DurationText | None = Field(None, alias="shortWindow")
    budget_percent: ExactNumber | None = Field(None, alias="budgetPercent")
    burn_rate: ExactNumber | None = Field(None, alias="burnRate")
    enabled: bool = True
    for_: DurationText = Field(default=timedelta(0), alias="for")
    labels: dict[str, LabelText] = Field(default_factory=dict)
    annotations: dict[str, LabelText] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _threshold(self) -> _Tier:
        if (self.budget_percent is None) == (self.burn_rate is None):
            raise ValueError("needs exactly one of budgetPercent or burnRate")
        if self.short_window is not None and self.short_window >= self.long_window:
            raise ValueError("shortWindow must be shorter than longWindow")
        return self


class _Alerting(SpecModel):
    tiers: Any = "default"
    name: str | None = None
    labels: dict[str, LabelText] = Field(default_factory=dict)
    annotations: dict[str, LabelText] = Field(default_factory=dict)


class _Exclusion(SpecModel):
    start: datetime
    end: datetime
    reason: str = ""
    time_zone: str | None = Field(None, alias="timeZone")

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else valid_time_zone(value)


class _Prometheus(SpecModel):
    url: str | None = None
    good: str | None = None
    bad: str | None = None
    total: str | None = None


class _Store(SpecModel):
    path: str | None = None


class _File(SpecModel):
    path: str
    format: str = "csv"


class _Source(OneOf):
    store: _Store | None = None
    prometheus: _Prometheus | None = None
    file: _File | None = None


class _Spec(SpecModel):
    # Parts are checked one by one (below), so one run reports all their problems.
    objective: Any
    sli: Any
    description: str = ""
    window: Any = "30d"
    budgeting: Any = "occurrences"
    alerting: Any = None
    exclusions: Any = ()
    source: Any = "store"


class _Document(SpecModel):
    api_version: str = Field(alias="apiVersion")
    kind: str
    metadata: Any
    spec: Any

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value != "SLO":
            raise ValueError(f"must be SLO (apiVersion {NATIVE_API} has no kind {value!r})")
        return value


# -- document → definition ----------------------------------------------------------


def parse_native(data: Any) -> list[tuple[SLODefinition, Loc]]:
    """The definition in one native document, with the path of its name."""
    doc = checked(_Document, data)
    issues = Issues()
    meta = issues.attempt(partial(checked, _Metadata, doc.metadata, ("metadata",)))
    spec = issues.attempt(partial(checked, _Spec, doc.spec, ("spec",)))
    given = set(doc.spec) if isinstance(doc.spec, dict) else set()
    if spec is None:  # an unknown or missing key: still check the parts that are there
        if not given:
            issues.raise_any()
        spec = _Spec.model_construct(**{k: doc.spec[k] for k in given & set(_Spec.model_fields)})
    objective = sli = None
    if "objective" in given:
        objective = issues.attempt(partial(_objective, spec.objective, ("spec", "objective")))
    if "sli" in given:
        sli = issues.attempt(partial(_sli, spec.sli, ("spec", "sli")))
    window = issues.attempt(partial(_window, spec.window, ("spec", "window")))
    budgeting = issues.attempt(partial(_budgeting, spec.budgeting, ("spec", "budgeting")))
    alerting = issues.attempt(partial(_alerting, spec.alerting, ("spec", "alerting")))
    exclusions = issues.attempt(partial(parse_exclusions, spec.exclusions, ("spec", "exclusions")))
    source = issues.attempt(partial(_source, spec.source, ("spec", "source")))
    if sli is not None and source is not None:
        where = ("spec", "source" if "source" in given else "sli")
        issues.attempt(partial(_check_pair, sli, source, where))
    issues.raise_any()
    assert meta and objective and sli and window and budgeting and alerting and source  # noqa: PT018
    definition = build(
        ("metadata", "name"),
        SLODefinition,
        name=meta.name,
        service=meta.service,
        objective=objective,
        sli=sli,
        window=window,
        budgeting=budgeting,
        alerting=alerting,
        exclusions=exclusions,
        source=source,
        description=spec.description,
        display_name=meta.display_name,
        labels=tuple(sorted(meta.labels.items())),
    )
    return [(definition, ("metadata", "name"))]


def _objective(value: Any, loc: Loc) -> Decimal:
    try:
        percent = exact_decimal(value)
    except ValueError as exc:
        raise fail(loc, str(exc)) from None
    if not 0 < percent < 100:
        raise fail(loc, "must be between 0 and 100 (exclusive)")
    return percent


def _sli(data: Any, loc: Loc) -> SLI:
    sli = checked(_Sli, data, loc)
    if sli.requests is not None:
        return _request_sli(sli.requests, (*loc, "requests"))
    if sli.ratio is not None:
        ratio = sli.ratio
        return build(
            (*loc, "ratio"),
            RatioSLI,
            good=ratio.good,
            bad=ratio.bad,
            total=ratio.total,
            raw=ratio.raw,
            raw_type=ratio.raw_type,
            counter=ratio.counter,
        )
    assert sli.threshold is not None
    return ThresholdSLI(sli.threshold.metric, sli.threshold.op, sli.threshold.value)


def parse_requests(data: Any, loc: Loc) -> RequestSLI:
    """A request selector ``{routes, methods, good | latency: {threshold_ms}}``."""
    return _request_sli(checked(_Requests, data, loc), loc)


def _request_sli(requests: _Requests, loc: Loc) -> RequestSLI:
    # SLOSpec's own rules check routes and methods, so files and sloguard.yaml agree.
    threshold = None if requests.latency is None else requests.latency.threshold_ms
    spec = checked(
        SLOSpec,
        {
            "name": "selector",
            "kind": SLOKind.AVAILABILITY if threshold is None else SLOKind.LATENCY,
            "routes": requests.routes,
            "methods": requests.methods,
            "threshold_ms": None if threshold is None else float(threshold),
        },
        loc,
    )
    return RequestSLI(spec.routes, spec.methods, spec.kind, threshold)


def _window(value: Any, loc: Loc) -> Window:
    if isinstance(value, str):
        try:
            length = parse_duration(value)
        except ValueError as exc:
            raise fail(loc, str(exc)) from None
        return build(loc, RollingWindow, length=length)
    if isinstance(value, dict):
        calendar = checked(_Calendar, value, loc)
        return build(
            (*loc, "start"),
            CalendarWindow,
            unit=calendar.calendar,
            time_zone=calendar.time_zone,
            start=calendar.start,
        )
    raise fail(loc, "must be a duration like 30d, or {calendar: month, timeZone: Europe/Berlin}")


def _budgeting(value: Any, loc: Loc) -> Budgeting:
    if value == "occurrences":
        return Budgeting()
    if not isinstance(value, dict):
        raise fail(loc, "must be occurrences, {timeslices: {...}} or {ratioTimeslices: {...}}")
    doc = checked(_Budgeting, value, loc)
    if doc.timeslices is not None:
        return build(
            (*loc, "timeslices"),
            Budgeting,
            method=BudgetingMethod.TIMESLICES,
            slice=doc.timeslices.slice,
            slice_target=doc.timeslices.target,
        )
    assert doc.ratio_timeslices is not None
    return build(
        (*loc, "ratioTimeslices"),
        Budgeting,
        method=BudgetingMethod.RATIO_TIMESLICES,
        slice=doc.ratio_timeslices.slice,
    )


def _alerting(data: Any, loc: Loc) -> Alerting:
    if data is None:
        return Alerting()
    doc = checked(_Alerting, data, loc)
    tiers: tuple[AlertTier, ...]
    if doc.tiers == "default":
        tiers = DEFAULT_TIERS
    elif isinstance(doc.tiers, list):
        issues = Issues()
        found = [
            issues.attempt(partial(_tier, tier, (*loc, "tiers", index)))
            for index, tier in enumerate(doc.tiers)
        ]
        issues.raise_any()
        tiers = tuple(tier for tier in found if tier is not None)
    else:
        raise fail((*loc, "tiers"), "must be default or a list of tiers")
    return build(
        (*loc, "tiers"),
        Alerting,
        tiers=tiers,
        name=doc.name,
        labels=tuple(sorted(doc.labels.items())),
        annotations=tuple(sorted(doc.annotations.items())),
    )


def _tier(data: Any, loc: Loc) -> AlertTier:
    tier = checked(_Tier, data, loc)
    return build(
        loc,
        AlertTier,
        name=tier.name,
        severity=tier.severity,
        long_window=tier.long_window,
        short_window=tier.short_window,
        budget_percent=tier.budget_percent,
        burn_rate=tier.burn_rate,
        enabled=tier.enabled,
        for_=tier.for_,
        labels=tuple(sorted(tier.labels.items())),
        annotations=tuple(sorted(tier.annotations.items())),
    )


def parse_exclusions(data: Any, loc: Loc) -> tuple[Exclusion, ...]:
    """Maintenance windows ``[{start, end, reason, timeZone}]``; a time without a
    UTC offset is wall time in ``timeZone``."""
    if not isinstance(data, (list, tuple)):
        raise fail(loc, "must be a list of {start, end, reason}")
    issues = Issues()
    found = [
        issues.attempt(partial(_exclusion, item, (*loc, index))) for index, item in enumerate(data)
    ]
    issues.raise_any()
    return tuple(exclusion for exclusion in found if exclusion is not None)


def _exclusion(data: Any, loc: Loc) -> Exclusion:
    doc = checked(_Exclusion, data, loc)
    start, end = doc.start, doc.end
    if doc.time_zone is not None:
        if start.tzinfo is not None or end.tzinfo is not None:
            raise fail((*loc, "timeZone"), "applies only to times without a UTC offset")
        zone = ZoneInfo(doc.time_zone)
        start, end = start.replace(tzinfo=zone), end.replace(tzinfo=zone)
    return build(loc, Exclusion, start=start, end=end, reason=doc.reason)


def _source(value: Any, loc: Loc) -> Source:
    if value == "store":
        return StoreSource()
    if value == "prometheus":
        return PrometheusSource()
    if not isinstance(value, dict):
        raise fail(
            loc, "must be store, prometheus, {prometheus: {...}}, {store: {...}} or {file: {...}}"
        )
    doc = checked(_Source, value, loc)
    if doc.store is not None:
        return StoreSource(doc.store.path)
    if doc.prometheus is not None:
        p = doc.prometheus
        return PrometheusSource(url=p.url, good=p.good, bad=p.bad, total=p.total)
    assert doc.file is not None
    return build((*loc, "file", "format"), FileSource, path=doc.file.path, format=doc.file.format)


def _check_pair(sli: SLI, source: Source, loc: Loc) -> None:
    """The SLI and its source must fit: only request SLIs live in the store."""
    if isinstance(source, StoreSource) and not isinstance(sli, RequestSLI):
        raise fail(loc, "the embedded store (the default source) records request SLIs only")
    if isinstance(source, PrometheusSource) and (source.good or source.bad or source.total):
        if not isinstance(sli, RequestSLI):
            raise fail(loc, "query templates here serve sli.requests; sli.ratio carries its own")
        if source.total is None or (source.good is None) == (source.bad is None):
            raise fail(loc, "query templates need total and exactly one of good or bad")
