"""OpenSLO v1: ``SLO``, ``SLI``, ``AlertPolicy``, ``AlertCondition``,
``AlertNotificationTarget``, ``DataSource`` and ``Service`` objects.

Objects may be inline or referenced by name (``indicatorRef``,
``alertPolicyRef``, ``conditionRef``, ``targetRef``, ``metricSourceRef``);
references resolve across every document loaded together. Field names follow
the v1 specification (github.com/OpenSLO/OpenSLO, ``README.md`` and
``pkg/openslo/v1``). An SLO with several objectives becomes one definition per
objective, named ``<name>-<objective displayName or number>``.

What sloguard reads, and its extensions (annotations under ``sloguard.dev/``,
which OpenSLO reserves for implementations):

- Metric sources of type ``Prometheus`` (``spec.query``), ``File``
  (``spec.path``/``column``, or the DataSource's ``connectionDetails.path``)
  and ``sloguard``: the embedded store, written as a ``ratioMetric.raw``
  (``rawType: success``) whose ``spec`` is a request selector ``{routes,
  methods, good: "status < 500" | latency: {threshold_ms}}``.
- An ``AlertPolicy`` with a ``burnrate`` condition is a tier: burn rate
  ``threshold`` over ``lookbackWindow``, ``alertAfter`` as ``for``, severity
  ``page`` or ``ticket``, enabled unless ``alertWhenBreaching: false``. OpenSLO
  has no multi-window alerts: the condition's annotation
  ``sloguard.dev/short-window: 5m`` adds the short window.
- SLO annotations: ``sloguard.dev/alerting: default`` (sloguard's four tiers,
  when there are no alertPolicies; ``none`` for none, the default) and
  ``sloguard.dev/exclusions``: a YAML list of ``{start, end, reason,
  timeZone}`` maintenance windows.
- Rolling windows need a fixed length (``30d``, not ``1M``); calendar windows
  are ``1w``, ``1M`` or ``1Q``. Without ``timeWindow`` the window is 30d rolling.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal
from functools import partial
from typing import Any

import yaml

from sloguard.slo._model import (
    DEFAULT_TIERS,
    DEFAULT_WINDOW,
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
    RollingWindow,
    Severity,
    SLODefinition,
    Source,
    StoreSource,
    ThresholdSLI,
    Window,
    parse_duration,
)
from sloguard.slo._native import parse_exclusions, parse_requests
from sloguard.slo._openslo_objects import (
    _SPECS,
    S,
    T,
    _ConditionSpec,
    _Found,
    _Inline,
    _InlineSLI,
    _Meta,
    _Metric,
    _Object,
    _Objective,
    _PolicySpec,
    _SLISpec,
    _SLOSpec,
    _TargetSpec,
    _TimeWindow,
)
from sloguard.slo._specload import (
    OPENSLO_API,
    DocumentInvalid,
    Issue,
    Issues,
    Loc,
    build,
    checked,
    fail,
    render_loc,
)

__all__ = ["EXTENSION_PREFIX", "OpenSLOObject", "resolve_openslo"]

EXTENSION_PREFIX = "sloguard.dev/"
SHORT_WINDOW = EXTENSION_PREFIX + "short-window"
ALERTING = EXTENSION_PREFIX + "alerting"
EXCLUSIONS = EXTENSION_PREFIX + "exclusions"
_SHORTHAND = re.compile(r"(\d+)([mhdwMQY])")
_FIXED = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
_CALENDAR = {"1w": CalendarUnit.WEEK, "1M": CalendarUnit.MONTH, "1Q": CalendarUnit.QUARTER}


@dataclass(frozen=True, slots=True)
class OpenSLOObject:
    """One object: its document (opaque), its place there, and its data."""

    doc: object
    base: Loc
    data: Any


# -- resolution -------------------------------------------------------------------------


def resolve_openslo(
    objects: Sequence[OpenSLOObject],
) -> tuple[list[tuple[SLODefinition, object, Loc]], list[Issue]]:
    """Validate every object, resolve references, and build the SLO definitions."""
    return _Resolver(objects).run()


class _Resolver:
    def __init__(self, objects: Sequence[OpenSLOObject]) -> None:
        self.objects = objects
        self.issues: list[Issue] = []
        self.named: dict[str, dict[str, _Found[Any]]] = {kind: {} for kind in _SPECS}

    def attempt(self, doc: object, check: Callable[[], T]) -> T | None:
        """``check()``, or None with its issues kept (placed in ``doc`` if unplaced)."""
        try:
            return _within(doc, check)
        except DocumentInvalid as exc:
            self.issues.extend(exc.issues)
            return None

    def run(self) -> tuple[list[tuple[SLODefinition, object, Loc]], list[Issue]]:
        for obj in self.objects:
            self.attempt(obj.doc, partial(self._register, obj))
        for policy in self.named["AlertPolicy"].values():  # unreferenced ones are checked too
            self.attempt(policy.doc, partial(self._tier, policy))
        found: list[tuple[SLODefinition, object, Loc]] = []
        for slo in self.named["SLO"].values():
            built = self.attempt(slo.doc, partial(self._definitions, slo))
            found.extend((d, slo.doc, (*slo.loc, "metadata", "name")) for d in built or ())
        return found, self.issues

    def _register(self, obj: OpenSLOObject) -> None:
        kind = obj.data.get("kind") if isinstance(obj.data, dict) else None
        if kind not in _SPECS:
            known = ", ".join(_SPECS)
            raise fail((*obj.base, "kind"), f"must be one of {known} (apiVersion {OPENSLO_API})")
        parsed = checked(_Object[_SPECS[kind]], obj.data, obj.base)  # type: ignore[valid-type]
        name = parsed.metadata.name
        if name in self.named[kind]:
            raise fail((*obj.base, "metadata", "name"), f"another {kind} is named {name!r}")
        self.named[kind][name] = _Found(name, parsed.metadata, parsed.spec, obj.doc, obj.base)

    def _get(self, kind: str, name: str, loc: Loc) -> _Found[Any]:
        found = self.named[kind].get(name)
        if found is None:
            raise fail(loc, f"no {kind} named {name!r}")
        return found

    def _ref_or_inline(
        self, item: Any, loc: Loc, doc: object, kind: str, ref: str, spec: type[S]
    ) -> _Found[S]:
        """``{<ref>: name}`` or an inline ``{kind, metadata, spec}`` object."""
        if isinstance(item, dict) and ref in item:
            if len(item) != 1 or not isinstance(item[ref], str):
                raise fail(loc, f"a reference is {{{ref}: NAME}} and nothing else")
            return self._get(kind, item[ref], (*loc, ref))
        if not isinstance(item, dict):
            raise fail(loc, f"must be {{{ref}: NAME}} or an inline {kind}")
        inline = checked(_Inline[spec], item, loc)  # type: ignore[valid-type]
        if inline.kind != kind:
            raise fail((*loc, "kind"), f"must be {kind}")
        return _Found(inline.metadata.name, inline.metadata, inline.spec, doc, loc)

    def _tier(self, policy: _Found[_PolicySpec]) -> AlertTier:
        return _within(policy.doc, partial(self._policy_tier, policy))

    def _policy_tier(self, policy: _Found[_PolicySpec]) -> AlertTier:
        loc = (*policy.loc, "spec")
        issues = Issues()
        condition = issues.attempt(
            partial(
                self._ref_or_inline,
                policy.spec.conditions[0],
                (*loc, "conditions", 0),
                policy.doc,
                "AlertCondition",
                "conditionRef",
                _ConditionSpec,
            )
        )
        targets = [
            issues.attempt(
                partial(
                    self._ref_or_inline,
                    target,
                    (*loc, "notificationTargets", i),
                    policy.doc,
                    "AlertNotificationTarget",
                    "targetRef",
                    _TargetSpec,
                )
            )
            for i, target in enumerate(policy.spec.notification_targets)
        ]
        tier = None
        if condition is not None:
            check = partial(_condition_tier, policy, condition)
            tier = issues.attempt(partial(_within, condition.doc, check))
        issues.raise_any()
        assert tier is not None
        return replace(tier, notify=tuple(t.name for t in targets if t is not None))

    def _definitions(self, slo: _Found[_SLOSpec]) -> list[SLODefinition]:
        spec, loc = slo.spec, (*slo.loc, "spec")
        before = len(self.issues)
        sli_source = self.attempt(slo.doc, partial(self._indicator, slo))
        window = self.attempt(slo.doc, partial(_window, spec.time_window, (*loc, "timeWindow")))
        alerting = self.attempt(slo.doc, partial(self._alerting, slo))
        exclusions = self.attempt(slo.doc, partial(_exclusions, slo))
        objectives = [
            self.attempt(
                slo.doc, partial(_objective, spec.budgeting_method, o, (*loc, "objectives", i))
            )
            for i, o in enumerate(spec.objectives)
        ]
        if len(self.issues) > before or sli_source is None:
            return []
        sli, source = sli_source
        if isinstance(sli, ThresholdSLI) and len(objectives) != 1:
            raise fail((*loc, "objectives"), "a thresholdMetric SLO has exactly one objective")
        definitions = []
        for index, objective in enumerate(objectives):
            assert objective is not None
            percent, budgeting, threshold = objective
            if isinstance(sli, ThresholdSLI):
                if threshold is None:
                    raise fail((*loc, "objectives", index), "a thresholdMetric needs op and value")
                sli = ThresholdSLI(sli.metric, *threshold)
            definitions.append(
                build(
                    (*slo.loc, "metadata", "name"),
                    SLODefinition,
                    name=_objective_name(slo.name, spec.objectives, index),
                    service=spec.service,
                    objective=percent,
                    sli=sli,
                    window=window,
                    budgeting=budgeting,
                    alerting=alerting,
                    exclusions=exclusions,
                    source=source,
                    description=spec.description,
                    display_name=spec.objectives[index].display_name or slo.meta.display_name,
                    labels=_labels(slo.meta),
                )
            )
        return definitions

    def _indicator(self, slo: _Found[_SLOSpec]) -> tuple[SLI, Source]:
        spec, loc = slo.spec, (*slo.loc, "spec")
        for i, objective in enumerate(spec.objectives):
            parts = (objective.indicator, objective.indicator_ref, objective.composite_weight)
            if any(part is not None for part in parts):
                raise fail(
                    (*loc, "objectives", i),
                    "composite SLOs (an indicator per objective) are not supported",
                )
        if (spec.indicator is None) == (spec.indicator_ref is None):
            raise fail(loc, "needs exactly one of indicator or indicatorRef")
        if spec.indicator_ref is not None:
            sli = self._get("SLI", spec.indicator_ref, (*loc, "indicatorRef"))
        else:
            inline = checked(_InlineSLI, spec.indicator, (*loc, "indicator"))
            sli = _Found(
                inline.metadata.name, inline.metadata, inline.spec, slo.doc, (*loc, "indicator")
            )
        return _within(sli.doc, partial(self._sli, sli.spec, (*sli.loc, "spec")))

    def _sli(self, spec: _SLISpec, loc: Loc) -> tuple[SLI, Source]:
        if spec.threshold_metric is not None:
            where = (*loc, "thresholdMetric")
            source, query = self._query(spec.threshold_metric, where, "value")
            if isinstance(source, StoreSource):
                raise fail(where, "the sloguard store serves request SLIs (ratioMetric.raw)")
            # The objective supplies op and value; _definitions puts them in.
            return ThresholdSLI(query, Operator.GTE, Decimal(0)), source
        ratio = spec.ratio_metric
        assert ratio is not None
        loc = (*loc, "ratioMetric")
        if ratio.raw is not None:
            where = (*loc, "raw")
            source, spec_data = self._metric(ratio.raw, where)
            if isinstance(source, StoreSource):
                if ratio.raw_type is not RawType.SUCCESS:
                    raise fail((*loc, "rawType"), "a sloguard request SLI is a success ratio")
                return parse_requests(spec_data, (*where, "metricSource", "spec")), source
            _, query = self._query(ratio.raw, where, "raw")
            sli = build(loc, RatioSLI, raw=query, raw_type=ratio.raw_type, counter=ratio.counter)
            return sli, source
        queries: dict[str, str] = {}
        sources: list[Source] = []
        for role in ("good", "bad", "total"):
            metric = getattr(ratio, role)
            if metric is not None:
                source, queries[role] = self._query(metric, (*loc, role), role)
                if sources and source != sources[0]:
                    raise fail((*loc, role), "every metric of an SLI must read the same source")
                sources.append(source)
        if not sources or isinstance(sources[0], StoreSource):
            raise fail(loc, "needs good or bad with total, or raw (rawType success for sloguard)")
        return build(loc, RatioSLI, counter=ratio.counter, **queries), sources[0]

    def _metric(self, metric: _Metric, loc: Loc) -> tuple[Source, dict[str, Any]]:
        ms, loc = metric.metric_source, (*loc, "metricSource")
        kind, details, name = ms.type, {}, None
        if ms.metric_source_ref is not None:
            data_source = self._get("DataSource", ms.metric_source_ref, (*loc, "metricSourceRef"))
            kind, name = kind or data_source.spec.type, data_source.name
            details = _flatten(data_source.spec.connection_details)
        if kind is None:
            raise fail(loc, "needs type or metricSourceRef")
        match kind.lower():
            case "prometheus":
                url = details.get("url")
                source: Source = PrometheusSource(name, url if isinstance(url, str) else None)
            case "sloguard":
                path = details.get("path")
                source = StoreSource(path if isinstance(path, str) else None)
            case "file":
                path = ms.spec.get("path", details.get("path"))
                if not isinstance(path, str):
                    raise fail((*loc, "spec", "path"), "a File source needs a path")
                fmt = ms.spec.get("format", details.get("format", path.rpartition(".")[2]))
                source = build((*loc, "spec", "format"), FileSource, path=path, format=fmt)
            case _:
                raise fail(
                    (*loc, "type"),
                    f"sloguard reads Prometheus, File or sloguard sources, not {kind!r}",
                )
        return source, ms.spec

    def _query(self, metric: _Metric, loc: Loc, role: str) -> tuple[Source, str]:
        source, spec = self._metric(metric, loc)
        key = "column" if isinstance(source, FileSource) else "query"
        query = spec.get(key, role if key == "column" else None)
        if not isinstance(query, str) or not query.strip():
            raise fail((*loc, "metricSource", "spec", key), "required")
        return source, query

    def _alerting(self, slo: _Found[_SLOSpec]) -> Alerting:
        loc = (*slo.loc, "spec", "alertPolicies")
        mode = slo.meta.annotations.get(ALERTING)
        where = (*slo.loc, "metadata", "annotations", ALERTING)
        if mode is not None and slo.spec.alert_policies:
            raise fail(where, "give alertPolicies or this annotation, not both")
        if mode not in (None, "default", "none"):
            raise fail(where, "must be default or none")
        if mode == "default":
            return Alerting(DEFAULT_TIERS)
        tiers = tuple(
            self._tier(
                self._ref_or_inline(
                    item, (*loc, i), slo.doc, "AlertPolicy", "alertPolicyRef", _PolicySpec
                )
            )
            for i, item in enumerate(slo.spec.alert_policies)
        )
        return build(loc, Alerting, tiers=tiers)


def _within(doc: object, check: Callable[[], T]) -> T:
    """``check()``; issues it raises without a document are placed in ``doc``."""
    try:
        return check()
    except DocumentInvalid as exc:
        raise DocumentInvalid(
            [i if i.doc is not None else Issue(i.loc, i.message, doc) for i in exc.issues]
        ) from None


def _condition_tier(policy: _Found[_PolicySpec], condition: _Found[_ConditionSpec]) -> AlertTier:
    spec, loc = condition.spec, (*condition.loc, "spec")
    issues = Issues()
    severity = spec.severity.lower()
    if severity not in ("page", "ticket"):
        issues.found.append(
            Issue((*loc, "severity"), f"sloguard routes page or ticket, not {spec.severity!r}")
        )
    if spec.condition.op in (Operator.LT, Operator.LTE):
        message = "a burn-rate alert fires above its threshold (gt, gte)"
        issues.found.append(Issue((*loc, "condition", "op"), message))
    short_text = condition.meta.annotations.get(SHORT_WINDOW)
    short_loc = (*condition.loc, "metadata", "annotations", SHORT_WINDOW)
    short = None
    if short_text is not None:
        short = issues.attempt(partial(_duration, short_text, short_loc))
    long = issues.attempt(
        partial(_shorthand, spec.condition.lookback_window, (*loc, "condition", "lookbackWindow"))
    )
    after = issues.attempt(
        partial(
            _shorthand, spec.condition.alert_after, (*loc, "condition", "alertAfter"), zero=True
        )
    )
    issues.raise_any()
    return build(
        (*loc, "condition"),
        AlertTier,
        name=policy.name,
        severity=Severity(severity),
        long_window=long,
        short_window=short,
        burn_rate=spec.condition.threshold,
        enabled=policy.spec.alert_when_breaching is not False,
        for_=after,
    )


def _duration(text: str, loc: Loc) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise fail(loc, str(exc)) from None


def _shorthand(
    text: str | int, loc: Loc, *, zero: bool = False, minutes: bool = False
) -> timedelta:
    """OpenSLO's duration-shorthand (``5m``, ``28d``); a fixed length, so no M, Q, Y."""
    if isinstance(text, int) and minutes:
        text = f"{text}m"  # timeSliceWindow: a bare number counts minutes
    match = _SHORTHAND.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise fail(loc, f"must be a duration-shorthand like 5m, 1h or 28d, not {text!r}")
    count, unit = int(match[1]), match[2]
    if unit not in _FIXED:
        raise fail(loc, f"needs a fixed length: write days (like 30d) instead of {text!r}")
    if count == 0 and not zero:
        raise fail(loc, "must be longer than zero")
    return timedelta(seconds=count * _FIXED[unit])


def _window(windows: list[_TimeWindow], loc: Loc) -> Window:
    if not windows:
        return DEFAULT_WINDOW
    if len(windows) > 1:
        raise fail(loc, "takes exactly one time window")
    window, loc = windows[0], (*loc, 0)
    if window.calendar is None:
        if window.is_rolling is False:
            raise fail((*loc, "calendar"), "required when isRolling is false")
        return RollingWindow(_shorthand(window.duration, (*loc, "duration")))
    if window.is_rolling:
        raise fail((*loc, "isRolling"), "a calendar-aligned window is not rolling")
    unit = _CALENDAR.get(window.duration)
    if unit is None:
        raise fail((*loc, "duration"), "sloguard's calendar windows are 1w, 1M or 1Q")
    start = window.calendar.start_time
    if start.tzinfo is not None:
        raise fail((*loc, "calendar", "startTime"), "is wall time in timeZone, without an offset")
    return CalendarWindow(unit, window.calendar.time_zone, start)


def _objective(
    method: BudgetingMethod, objective: _Objective, loc: Loc
) -> tuple[Decimal, Budgeting, tuple[Operator, Decimal] | None]:
    """The objective's percent, budgeting and (threshold metrics) op and value."""
    if (objective.target is None) == (objective.target_percent is None):
        raise fail(loc, "needs exactly one of target or targetPercent")
    if objective.target is not None:
        if not 0 < objective.target < 1:
            raise fail((*loc, "target"), "must be between 0 and 1 (exclusive)")
        percent = objective.target.scaleb(2)
    else:
        percent = objective.target_percent or Decimal(0)
        if not 0 < percent < 100:
            raise fail((*loc, "targetPercent"), "must be between 0 and 100 (exclusive)")
    sliced = method is not BudgetingMethod.OCCURRENCES
    if objective.time_slice_window is None and sliced:
        raise fail((*loc, "timeSliceWindow"), f"required with {method}")
    if objective.time_slice_window is not None and not sliced:
        raise fail((*loc, "timeSliceWindow"), "applies to Timeslices and RatioTimeslices only")
    if (objective.time_slice_target is None) == (method is BudgetingMethod.TIMESLICES):
        where = (*loc, "timeSliceTarget")
        if objective.time_slice_target is None:
            raise fail(where, "required with Timeslices")
        raise fail(where, "applies to Timeslices only")
    target = objective.time_slice_target
    if target is not None and not 0 < target <= 1:
        raise fail((*loc, "timeSliceTarget"), "must be in (0, 1]")
    slice_ = None
    if objective.time_slice_window is not None:
        slice_ = _shorthand(objective.time_slice_window, (*loc, "timeSliceWindow"), minutes=True)
    budgeting = build(
        (*loc, "timeSliceTarget"),
        Budgeting,
        method=method,
        slice=slice_,
        slice_target=objective.time_slice_target,
    )
    threshold = None
    if objective.op is not None and objective.value is not None:
        threshold = (objective.op, objective.value)
    return percent, budgeting, threshold


def _objective_name(name: str, objectives: list[_Objective], index: int) -> str:
    if len(objectives) == 1:
        return name
    slug = re.sub(r"[^a-z0-9]+", "-", objectives[index].display_name.lower()).strip("-")
    return f"{name}-{slug or index + 1}"


def _exclusions(slo: _Found[_SLOSpec]) -> tuple[Exclusion, ...]:
    text = slo.meta.annotations.get(EXCLUSIONS)
    loc = (*slo.loc, "metadata", "annotations", EXCLUSIONS)
    for key in slo.meta.annotations:
        if key.startswith(EXTENSION_PREFIX) and key not in (ALERTING, EXCLUSIONS):
            raise fail((*slo.loc, "metadata", "annotations", key), "unknown sloguard annotation")
    if text is None:
        return ()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise fail(loc, f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    try:
        return parse_exclusions(data, ())
    except DocumentInvalid as exc:  # no lines inside a string: name the part instead
        raise DocumentInvalid(
            [Issue(loc, f"{render_loc(i.loc)}: {i.message}") for i in exc.issues]
        ) from None


def _labels(meta: _Meta) -> tuple[tuple[str, str], ...]:
    return tuple(
        sorted((k, v if isinstance(v, str) else ",".join(v)) for k, v in meta.labels.items())
    )


def _flatten(details: Any) -> dict[str, Any]:
    """connectionDetails: a mapping, or (as in OpenSLO's examples) a list of them."""
    if isinstance(details, dict):
        return details
    merged: dict[str, Any] = {}
    if isinstance(details, list):
        for item in details:
            if isinstance(item, dict):
                merged.update(item)
    return merged
