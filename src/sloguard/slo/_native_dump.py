"""sloguard's native SLO format, written: a definition back to its YAML document.

The inverse of :func:`sloguard.slo._native.parse_native`; loading what this
writes gives an equal definition (a round-trip test keeps it so).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import yaml

from sloguard.slo._model import (
    DEFAULT_TIERS,
    SLI,
    Alerting,
    AlertTier,
    Budgeting,
    BudgetingMethod,
    FileSource,
    PluginSLI,
    PrometheusSource,
    RatioSLI,
    RequestSLI,
    RollingWindow,
    SLODefinition,
    Source,
    StoreSource,
    ThresholdSLI,
    Window,
    format_duration,
)
from sloguard.slo._native import AVAILABILITY_RULE
from sloguard.slo._specload import (
    NATIVE_API,
)

__all__ = ["dump_native", "dumps_native"]


def dump_native(definition: SLODefinition) -> dict[str, Any]:
    """The native document for a definition (plain data, ready for YAML)."""
    metadata: dict[str, Any] = {"name": definition.name, "service": definition.service}
    if definition.display_name:
        metadata["displayName"] = definition.display_name
    if definition.labels:
        metadata["labels"] = dict(definition.labels)
    spec: dict[str, Any] = {"objective": definition.objective}
    if definition.description:
        spec["description"] = definition.description
    spec["window"] = _dump_window(definition.window)
    spec["sli"] = _dump_sli(definition.sli)
    spec["budgeting"] = _dump_budgeting(definition.budgeting)
    spec["alerting"] = _dump_alerting(definition.alerting)
    if definition.exclusions:
        spec["exclusions"] = [
            {"start": e.start.isoformat(), "end": e.end.isoformat()}
            | ({"reason": e.reason} if e.reason else {})
            for e in definition.exclusions
        ]
    spec["source"] = _dump_source(definition.source)
    return {"apiVersion": NATIVE_API, "kind": "SLO", "metadata": metadata, "spec": spec}


def dumps_native(definitions: list[SLODefinition]) -> str:
    """Definitions as one multi-document native YAML text."""
    return yaml.dump_all(
        [dump_native(d) for d in definitions], Dumper=_Dumper, sort_keys=False, allow_unicode=True
    )


def _dump_window(window: Window) -> Any:
    if isinstance(window, RollingWindow):
        return format_duration(window.length)
    out: dict[str, Any] = {"calendar": str(window.unit), "timeZone": window.time_zone}
    if window.start is not None:
        out["start"] = window.start.isoformat()
    return out


def _dump_sli(sli: SLI) -> dict[str, Any]:
    if isinstance(sli, RequestSLI):
        requests: dict[str, Any] = {"routes": list(sli.routes)}
        if sli.methods:
            requests["methods"] = list(sli.methods)
        if sli.threshold_ms is None:
            requests["good"] = AVAILABILITY_RULE
        else:
            requests["latency"] = {"threshold_ms": sli.threshold_ms}
        return {"requests": requests}
    if isinstance(sli, RatioSLI):
        names = {"good": sli.good, "bad": sli.bad, "total": sli.total, "raw": sli.raw}
        ratio: dict[str, Any] = {k: v for k, v in names.items() if v is not None}
        if sli.raw_type is not None:
            ratio["rawType"] = str(sli.raw_type)
        if not sli.counter:
            ratio["counter"] = False
        return {"ratio": ratio}
    if isinstance(sli, ThresholdSLI):
        return {"threshold": {"metric": sli.metric, "op": str(sli.op), "value": sli.value}}
    assert isinstance(sli, PluginSLI)
    raise ValueError(f"a Sloth plugin SLI ({sli.plugin_id}) has no native form")


def _dump_budgeting(budgeting: Budgeting) -> Any:
    if budgeting.method is BudgetingMethod.OCCURRENCES:
        return "occurrences"
    assert budgeting.slice is not None
    if budgeting.method is BudgetingMethod.TIMESLICES:
        return {
            "timeslices": {
                "slice": format_duration(budgeting.slice),
                "target": budgeting.slice_target,
            }
        }
    return {"ratioTimeslices": {"slice": format_duration(budgeting.slice)}}


def _dump_alerting(alerting: Alerting) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if alerting.tiers == DEFAULT_TIERS:
        out["tiers"] = "default"
    else:
        out["tiers"] = [_dump_tier(t) for t in alerting.tiers]
    if alerting.name is not None:
        out["name"] = alerting.name
    if alerting.labels:
        out["labels"] = dict(alerting.labels)
    if alerting.annotations:
        out["annotations"] = dict(alerting.annotations)
    return out


def _dump_tier(tier: AlertTier) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tier.name, "severity": str(tier.severity)}
    if tier.budget_percent is not None:
        out["budgetPercent"] = tier.budget_percent
    if tier.burn_rate is not None:
        out["burnRate"] = tier.burn_rate
    out["longWindow"] = format_duration(tier.long_window)
    if tier.short_window is not None:
        out["shortWindow"] = format_duration(tier.short_window)
    if not tier.enabled:
        out["enabled"] = False
    if tier.for_:
        out["for"] = format_duration(tier.for_)
    if tier.labels:
        out["labels"] = dict(tier.labels)
    if tier.annotations:
        out["annotations"] = dict(tier.annotations)
    return out


def _dump_source(source: Source) -> Any:
    if source == StoreSource():
        return "store"
    if source == PrometheusSource():
        return "prometheus"
    if isinstance(source, StoreSource):
        return {"store": {"path": source.path}}
    if isinstance(source, FileSource):
        return {"file": {"path": source.path, "format": source.format}}
    fields = {"url": source.url, "good": source.good, "bad": source.bad, "total": source.total}
    return {"prometheus": {k: v for k, v in fields.items() if v is not None}}


class _Dumper(yaml.SafeDumper):
    """Writes Decimals as YAML numbers with their exact digits."""


def _represent_decimal(dumper: yaml.SafeDumper, value: Decimal) -> yaml.Node:
    text = format(value, "f")
    tag = "tag:yaml.org,2002:float" if "." in text else "tag:yaml.org,2002:int"
    return dumper.represent_scalar(tag, text)


_Dumper.add_representer(Decimal, _represent_decimal)
