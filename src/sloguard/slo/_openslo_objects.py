"""The OpenSLO v1 objects, as validated at the spec boundary (pydantic).

Field names follow the OpenSLO v1 specification; :mod:`sloguard.slo._openslo`
resolves references between them and builds the SLO definitions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field, field_validator, model_validator

from sloguard.slo._model import (
    BudgetingMethod,
    Operator,
    RawType,
    valid_time_zone,
)
from sloguard.slo._specload import (
    ExactNumber,
    LabelText,
    Loc,
    SpecModel,
)

__all__ = [
    "S",
    "T",
    "_SPECS",
    "_Meta",
    "_ServiceSpec",
    "_DataSourceSpec",
    "_TargetSpec",
    "_Condition",
    "_ConditionSpec",
    "_PolicySpec",
    "_MetricSource",
    "_Metric",
    "_RatioMetric",
    "_SLISpec",
    "_Calendar",
    "_TimeWindow",
    "_Objective",
    "_SLOSpec",
    "_Object",
    "_Inline",
    "_InlineSLI",
    "_Found",
]

_RFC1123 = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
_Description = Annotated[str, Field(max_length=1050)]


class _Meta(SpecModel):
    name: str
    display_name: str = Field("", alias="displayName")
    labels: dict[str, LabelText | list[LabelText]] = Field(default_factory=dict)
    annotations: dict[str, LabelText] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _rfc1123(cls, value: str) -> str:
        if _RFC1123.fullmatch(value) is None:
            raise ValueError("must be up to 63 lowercase letters, digits or '-' (RFC 1123)")
        return value


class _ServiceSpec(SpecModel):
    description: _Description = ""


class _DataSourceSpec(SpecModel):
    description: _Description = ""
    type: str
    connection_details: Any = Field(None, alias="connectionDetails")


class _TargetSpec(SpecModel):
    description: _Description = ""
    target: str


class _Condition(SpecModel):
    kind: Literal["burnrate"] = "burnrate"
    op: Operator | None = None
    threshold: ExactNumber
    lookback_window: str = Field(alias="lookbackWindow")
    alert_after: str = Field("0m", alias="alertAfter")


class _ConditionSpec(SpecModel):
    description: _Description = ""
    severity: str
    condition: _Condition


class _PolicySpec(SpecModel):
    description: _Description = ""
    alert_when_no_data: bool = Field(False, alias="alertWhenNoData")
    alert_when_resolved: bool = Field(False, alias="alertWhenResolved")
    alert_when_breaching: bool | None = Field(None, alias="alertWhenBreaching")
    conditions: list[Any] = Field(min_length=1, max_length=1)
    notification_targets: list[Any] = Field(alias="notificationTargets", min_length=1)


class _MetricSource(SpecModel):
    metric_source_ref: str | None = Field(None, alias="metricSourceRef")
    type: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)


class _Metric(SpecModel):
    metric_source: _MetricSource = Field(alias="metricSource")


class _RatioMetric(SpecModel):
    counter: bool = True
    good: _Metric | None = None
    bad: _Metric | None = None
    total: _Metric | None = None
    raw_type: RawType | None = Field(None, alias="rawType")
    raw: _Metric | None = None


class _SLISpec(SpecModel):
    description: _Description = ""
    threshold_metric: _Metric | None = Field(None, alias="thresholdMetric")
    ratio_metric: _RatioMetric | None = Field(None, alias="ratioMetric")

    @model_validator(mode="after")
    def _exactly_one(self) -> _SLISpec:
        if (self.threshold_metric is None) == (self.ratio_metric is None):
            raise ValueError("needs exactly one of thresholdMetric or ratioMetric")
        return self


class _Calendar(SpecModel):
    start_time: datetime = Field(alias="startTime")
    time_zone: str = Field(alias="timeZone")

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return valid_time_zone(value)


class _TimeWindow(SpecModel):
    duration: str
    is_rolling: bool | None = Field(None, alias="isRolling")
    calendar: _Calendar | None = None


class _Objective(SpecModel):
    display_name: str = Field("", alias="displayName")
    op: Operator | None = None
    value: ExactNumber | None = None
    target: ExactNumber | None = None
    target_percent: ExactNumber | None = Field(None, alias="targetPercent")
    time_slice_target: ExactNumber | None = Field(None, alias="timeSliceTarget")
    time_slice_window: int | str | None = Field(None, alias="timeSliceWindow")
    indicator: Any = None
    indicator_ref: str | None = Field(None, alias="indicatorRef")
    composite_weight: ExactNumber | None = Field(None, alias="compositeWeight")


class _SLOSpec(SpecModel):
    description: _Description = ""
    service: str
    indicator: Any = None
    indicator_ref: str | None = Field(None, alias="indicatorRef")
    budgeting_method: BudgetingMethod = Field(alias="budgetingMethod")
    time_window: list[_TimeWindow] = Field(default_factory=list, alias="timeWindow")
    objectives: list[_Objective] = Field(min_length=1)
    alert_policies: list[Any] = Field(default_factory=list, alias="alertPolicies")


S = TypeVar("S", bound=BaseModel)
T = TypeVar("T")


class _Object(SpecModel, Generic[S]):
    api_version: Literal["openslo/v1"] = Field(alias="apiVersion")
    kind: str
    metadata: _Meta
    spec: S


class _Inline(SpecModel, Generic[S]):
    api_version: Literal["openslo/v1"] | None = Field(None, alias="apiVersion")
    kind: str
    metadata: _Meta
    spec: S


class _InlineSLI(SpecModel):
    metadata: _Meta
    spec: _SLISpec


_SPECS: dict[str, type[BaseModel]] = {
    "SLO": _SLOSpec,
    "SLI": _SLISpec,
    "AlertPolicy": _PolicySpec,
    "AlertCondition": _ConditionSpec,
    "AlertNotificationTarget": _TargetSpec,
    "DataSource": _DataSourceSpec,
    "Service": _ServiceSpec,
}


@dataclass(frozen=True, slots=True)
class _Found(Generic[S]):
    """A validated object (or inline part) and where it is written."""

    name: str
    meta: _Meta
    spec: S
    doc: object
    loc: Loc  # of the object itself
