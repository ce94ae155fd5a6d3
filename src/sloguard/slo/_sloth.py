"""Import Sloth ``prometheus/v1`` specs (github.com/slok/sloth,
``pkg/prometheus/api/v1``) into :class:`SLODefinition`.

A Sloth spec names a ``service`` and lists ``slos``; each becomes a
definition named ``<service>-<name>`` (Sloth's ``sloth_id``), read from
Prometheus, over a rolling window of 30 days (Sloth's default period; Sloth
specs do not state one) with Occurrences budgeting. Note the difference in
arithmetic: Sloth averages 5-minute error ratios over the period, sloguard
counts events exactly.

- ``sli.events`` (``error_query``/``total_query``) → a bad/total ratio;
  ``sli.raw`` (``error_ratio_query``) → a raw failure ratio; ``sli.plugin``
  is kept as a :class:`PluginSLI` (sloguard cannot run Sloth's Go plugins).
  Queries must use ``{{.window}}``. Both Sloth's snake_case keys and the
  camelCase spelling its own examples use (``errorRatioQuery``) are read.
- ``alerting.page_alert`` / ``ticket_alert`` map onto sloguard's default
  tiers of that severity (the same four windows Sloth uses for 30 days):
  ``disable`` turns them off, ``for``, ``labels`` and ``annotations`` carry over.
- ``labels`` (service and SLO level) become the definition's labels;
  ``infoLabels``, ``interval``, ``slo_plugins`` and ``plugins`` are Sloth
  rule-generation settings and are accepted but not used.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from pydantic import AliasChoices, Field, field_validator

from sloguard.slo._model import (
    DEFAULT_TIERS,
    SLI,
    Alerting,
    AlertTier,
    PluginSLI,
    PrometheusSource,
    RatioSLI,
    RawType,
    RollingWindow,
    Severity,
    SLODefinition,
)
from sloguard.slo._specload import (
    SLOTH_VERSION,
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

__all__ = ["parse_sloth"]

_WINDOW_VAR = re.compile(r"\{\{\s*\.window\s*\}\}")


def _choices(*names: str) -> Any:
    return Field(validation_alias=AliasChoices(*names))


class _Events(SpecModel):
    error_query: str = _choices("error_query", "errorQuery")
    total_query: str = _choices("total_query", "totalQuery")


class _Raw(SpecModel):
    error_ratio_query: str = _choices("error_ratio_query", "errorRatioQuery")


class _Plugin(SpecModel):
    id: str
    options: dict[str, LabelText] = Field(default_factory=dict)


class _SLI(OneOf):
    events: _Events | None = None
    raw: _Raw | None = None
    plugin: _Plugin | None = None


class _Alert(SpecModel):
    disable: bool = False
    for_: DurationText = Field(default=timedelta(0), alias="for")
    labels: dict[str, LabelText] = Field(default_factory=dict)
    annotations: dict[str, LabelText] = Field(default_factory=dict)


class _Alerting(SpecModel):
    name: str | None = None
    labels: dict[str, LabelText] = Field(default_factory=dict)
    annotations: dict[str, LabelText] = Field(default_factory=dict)
    page_alert: _Alert = _Alert()
    ticket_alert: _Alert = _Alert()


class _SLO(SpecModel):
    name: str
    objective: ExactNumber
    description: str = ""
    labels: dict[str, LabelText] = Field(default_factory=dict)
    info_labels: dict[str, str] = Field(default_factory=dict, alias="infoLabels")
    sli: _SLI
    alerting: _Alerting = _Alerting()
    interval: Any = None
    plugins: Any = None

    @field_validator("objective")
    @classmethod
    def _objective(cls, value: Decimal) -> Decimal:
        if not 0 < value < 100:
            raise ValueError("must be between 0 and 100 (exclusive)")
        return value


class _Spec(SpecModel):
    version: str
    service: str
    labels: dict[str, LabelText] = Field(default_factory=dict)
    slo_plugins: Any = None
    slos: list[Any] = Field(min_length=1)

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value != SLOTH_VERSION:
            raise ValueError(f"must be {SLOTH_VERSION}")
        return value


def parse_sloth(
    data: Any, *, window: timedelta = timedelta(days=30)
) -> list[tuple[SLODefinition, Loc]]:
    """Every SLO of one Sloth spec document, with the path of its name."""
    spec = checked(_Spec, data)
    issues = Issues()
    found = [
        issues.attempt(partial(_definition, spec, item, ("slos", i), window))
        for i, item in enumerate(spec.slos)
    ]
    issues.raise_any()
    return [(d, ("slos", i, "name")) for i, d in enumerate(found) if d is not None]


def _definition(spec: _Spec, data: Any, loc: Loc, window: timedelta) -> SLODefinition:
    slo = checked(_SLO, data, loc)
    return build(
        (*loc, "name"),
        SLODefinition,
        name=f"{spec.service}-{slo.name}",
        service=spec.service,
        objective=slo.objective,
        sli=_sli(slo.sli, (*loc, "sli")),
        window=RollingWindow(window),
        alerting=_alerting(slo.alerting),
        source=PrometheusSource(),
        description=slo.description,
        labels=tuple(sorted((spec.labels | slo.labels).items())),
    )


def _sli(sli: _SLI, loc: Loc) -> SLI:
    if sli.events is not None:
        _check_window(sli.events.error_query, (*loc, "events", "error_query"))
        _check_window(sli.events.total_query, (*loc, "events", "total_query"))
        return RatioSLI(bad=sli.events.error_query, total=sli.events.total_query)
    if sli.raw is not None:
        _check_window(sli.raw.error_ratio_query, (*loc, "raw", "error_ratio_query"))
        return RatioSLI(raw=sli.raw.error_ratio_query, raw_type=RawType.FAILURE)
    assert sli.plugin is not None
    return PluginSLI(sli.plugin.id, tuple(sorted(sli.plugin.options.items())))


def _check_window(query: str, loc: Loc) -> None:
    if _WINDOW_VAR.search(query) is None:
        raise fail(loc, "must use the {{.window}} template variable")


def _alerting(alerting: _Alerting) -> Alerting:
    tiers = tuple(_tier(t, alerting) for t in DEFAULT_TIERS)
    return Alerting(
        tiers=tiers,
        name=alerting.name,
        labels=tuple(sorted(alerting.labels.items())),
        annotations=tuple(sorted(alerting.annotations.items())),
    )


def _tier(tier: AlertTier, alerting: _Alerting) -> AlertTier:
    alert = alerting.page_alert if tier.severity is Severity.PAGE else alerting.ticket_alert
    return AlertTier(
        name=tier.name,
        severity=tier.severity,
        long_window=tier.long_window,
        short_window=tier.short_window,
        budget_percent=tier.budget_percent,
        enabled=not alert.disable,
        for_=alert.for_,
        labels=tuple(sorted(alert.labels.items())),
        annotations=tuple(sorted(alert.annotations.items())),
    )
