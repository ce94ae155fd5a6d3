"""Prometheus recording and alerting rules generated from the same SLO spec the engine reads.

One rule group per SLO. Recording rules hold the error ratio over every window
a tier needs (always ``5m``) under ``sloguard_slo:error_ratio:rate<window>``
with labels ``slo`` and ``service``; alerting rules fire a tier when the long
*and* the short window burn at least the tier's threshold. The comparison is
``>=``, exactly as the engine's (``q x bad >= p x total``), so a burn rate
sitting on the threshold fires in both.

Request-selector SLIs read the metrics sloguard exports:
``sloguard_http_requests_total{method,route,status_class}`` (good = not 5xx)
and ``sloguard_http_request_duration_seconds_bucket{le}`` for latency, whose
threshold must be one of the histogram's bucket boundaries (else
:class:`RuleGenerationError`). Ratio SLIs use their own PromQL templates
(``{{.window}}`` is replaced by each window). Plugin and threshold SLIs are
skipped with a reason. A calendar window is judged as the rolling window of
its nominal length (week 7d, month 30d, quarter 90d).

Cost-aware period window: the SLO period's ratio is not a ``rate(...[30d])``
over raw samples but ``sum_over_time`` of the 5-minute bad and total rates
recorded here (``sloguard_slo:bad:rate5m`` / ``sloguard_slo:total:rate5m``),
a ratio of sums, so it stays event-weighted (Sloth averages 5-minute ratios
instead). Each event is counted once per evaluation whose 5-minute window
holds it, the same number of times for every event except those in the first
and last 5 minutes of the period, which get a linear ramp of weight; the
error is bounded by the share of the period's events in those 10 minutes
(0.023% of a 30-day period for steady traffic), plus any evaluations missed
while Prometheus was down, which drop good and bad events alike. A raw-ratio
SLI has no counts, so its period ratio is ``avg_over_time`` of the 5-minute
ratio: a time average, not event-weighted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import yaml

from sloguard.routing._glob import compile_glob
from sloguard.slo import _model as model
from sloguard.slo._engine import engine_tiers
from sloguard.slo.spec import SLOKind

__all__ = [
    "PROMETHEUS_RULE_API_VERSION",
    "RuleGenerationError",
    "RuleSet",
    "SkippedSLO",
    "UnsupportedSLI",
    "generate_rules",
    "inline_recordings",
    "nominal_period",
    "prometheus_rule",
    "rule_file",
    "slo_rule_group",
    "to_yaml",
]

PROMETHEUS_RULE_API_VERSION = "monitoring.coreos.com/v1"
REQUESTS = "sloguard_http_requests_total"
DURATION = "sloguard_http_request_duration_seconds"
ERROR_RATIO = "sloguard_slo:error_ratio:rate"
BASE = timedelta(minutes=5)
DEFAULT_ALERT = "SLOErrorBudgetBurn"
_WINDOW_TEMPLATE = re.compile(r"\{\{\s*\.window\s*\}\}")
_NOMINAL = {
    model.CalendarUnit.WEEK: timedelta(days=7),
    model.CalendarUnit.MONTH: timedelta(days=30),
    model.CalendarUnit.QUARTER: timedelta(days=90),
}


class RuleGenerationError(ValueError):
    """The spec cannot become Prometheus rules as written (a latency threshold off the buckets)."""


class UnsupportedSLI(RuleGenerationError):
    """This kind of SLI has no PromQL translation: the SLO is skipped, with this reason."""


@dataclass(frozen=True, slots=True)
class SkippedSLO:
    name: str
    reason: str


@dataclass(frozen=True, slots=True)
class RuleSet:
    """One rule group per generated SLO, and the SLOs left out with why."""

    groups: tuple[dict[str, Any], ...]
    skipped: tuple[SkippedSLO, ...] = ()


def nominal_period(window: model.Window) -> timedelta:
    """The period tier thresholds scale to: a rolling window's length, a calendar unit's nominal."""
    if isinstance(window, model.RollingWindow):
        return window.length
    return _NOMINAL[window.unit]


def _number(value: Fraction) -> str:
    """Exact decimal text when the fraction terminates, else a float's shortest repr."""
    decimal = Decimal(value.numerator) / Decimal(value.denominator)
    if Fraction(decimal) == value:
        return format(decimal.normalize(), "f")
    return repr(float(value))


def _string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _route_regex(routes: Sequence[str]) -> str:
    return "|".join(compile_glob(r).pattern for r in routes)


def _request_selector(sli: model.RequestSLI) -> list[str]:
    matchers = []
    if tuple(sli.routes) not in {("*",), ("**",), ("/**",)}:
        matchers.append(f"route=~{_string(_route_regex(sli.routes))}")
    if sli.methods:
        matchers.append(f"method=~{_string('|'.join(re.escape(m) for m in sli.methods))}")
    return matchers


def _le(threshold_ms: Decimal, buckets: Sequence[float]) -> str:
    seconds = float(threshold_ms / 1000)
    if seconds not in buckets:
        bounds = ", ".join(f"{b * 1000:g}" for b in buckets)
        raise RuleGenerationError(
            f"latency threshold {threshold_ms} ms is not a bucket boundary of "
            f"{DURATION} (ms: {bounds}); the rules can only count requests per bucket"
        )
    return repr(seconds)  # as prometheus_client writes the le label (0.3, 1.0, 10.0)


def _rate(metric: str, matchers: Iterable[str], window: str) -> str:
    return f"sum(rate({metric}{{{','.join(matchers)}}}[{window}]))"


def _bad_and_total(
    sli: model.RequestSLI | model.RatioSLI, window: str, buckets: Sequence[float]
) -> tuple[str, str]:
    """PromQL for the bad and total event rates over ``window``."""
    if isinstance(sli, model.RatioSLI):
        assert sli.total is not None
        total = _template(sli.total, window)
        if sli.bad is not None:
            return f"({_template(sli.bad, window)})", f"({total})"
        assert sli.good is not None
        return f"(({total}) - ({_template(sli.good, window)}))", f"({total})"
    selector = _request_selector(sli)
    if sli.kind is SLOKind.LATENCY:
        assert sli.threshold_ms is not None
        le = f"le={_string(_le(sli.threshold_ms, buckets))}"
        total = _rate(f"{DURATION}_count", selector, window)
        good = _rate(f"{DURATION}_bucket", [*selector, le], window)
        return f"({total} - ({good} or vector(0)))", total
    bad = _rate(REQUESTS, [*selector, 'status_class="5xx"'], window)
    return f"({bad} or vector(0))", _rate(REQUESTS, selector, window)


def _template(query: str, window: str) -> str:
    if not _WINDOW_TEMPLATE.search(query):
        raise RuleGenerationError(f"the query {query.strip()!r} has no {{{{.window}}}} to fill")
    return _WINDOW_TEMPLATE.sub(window, query.strip())


def _windows(definition: model.SLODefinition) -> list[timedelta]:
    needed = {BASE}
    for tier in definition.alerting.tiers:
        if tier.enabled:
            needed.add(tier.long_window)
            needed.add(tier.short_window or tier.long_window / 12)
    return sorted(needed)


def _check(definition: model.SLODefinition) -> model.RequestSLI | model.RatioSLI:
    sli = definition.sli
    if isinstance(sli, model.PluginSLI):
        raise UnsupportedSLI(
            f"SLI plugin {sli.plugin_id!r} is Sloth's; sloguard cannot expand plugins into PromQL"
        )
    if isinstance(sli, model.ThresholdSLI):
        raise UnsupportedSLI("threshold SLIs have no PromQL translation yet")
    return sli


def slo_rule_group(
    definition: model.SLODefinition, *, duration_buckets: Sequence[float]
) -> dict[str, Any]:
    """The recording and alerting rules of one SLO (RuleGenerationError when it has none)."""
    sli = _check(definition)
    labels = {"slo": definition.name, "service": definition.service}
    select = f"{{slo={_string(definition.name)}}}"
    rules: list[dict[str, Any]] = []
    period = nominal_period(definition.window)
    for window in _windows(definition):
        text = model.format_duration(window)
        if isinstance(sli, model.RatioSLI) and sli.raw is not None:
            raw = _template(sli.raw, text)
            ratio = f"({raw})" if sli.raw_type is model.RawType.FAILURE else f"(1 - ({raw}))"
        else:
            bad, total = _bad_and_total(sli, text, duration_buckets)
            if window == BASE:
                rules.append(
                    {"record": "sloguard_slo:bad:rate5m", "expr": bad, "labels": dict(labels)}
                )
                rules.append(
                    {"record": "sloguard_slo:total:rate5m", "expr": total, "labels": dict(labels)}
                )
            ratio = f"{bad}\n/\n{total}"
        rules.append({"record": f"{ERROR_RATIO}{text}", "expr": ratio, "labels": dict(labels)})
    rules.append(_period_rule(definition, sli, select, labels, period))
    rules.extend(_alerts(definition, select, period))
    return {"name": f"sloguard-slo-{definition.name}", "rules": rules}


def _period_rule(
    definition: model.SLODefinition,
    sli: model.RequestSLI | model.RatioSLI,
    select: str,
    labels: Mapping[str, str],
    period: timedelta,
) -> dict[str, Any]:
    text = model.format_duration(period)
    if isinstance(sli, model.RatioSLI) and sli.raw is not None:
        expr = f"avg_over_time({ERROR_RATIO}5m{select}[{text}])"
    else:
        expr = (
            f"sum_over_time(sloguard_slo:bad:rate5m{select}[{text}])\n/\n"
            f"sum_over_time(sloguard_slo:total:rate5m{select}[{text}])"
        )
    return {"record": "sloguard_slo:error_ratio:period", "expr": expr, "labels": dict(labels)}


def _alerts(
    definition: model.SLODefinition, select: str, period: timedelta
) -> list[dict[str, Any]]:
    alerting = definition.alerting
    spec_tiers = {t.name: t for t in alerting.tiers}
    alerts = []
    for tier in engine_tiers(alerting, period):
        if not tier.enabled:
            continue
        spec = spec_tiers[tier.name]
        burn = tier.threshold(period)
        if spec.burn_rate is not None and tier.budget_share < 1:
            # engine_tiers converts through a float window ratio; the spec's rate is exact
            burn = Fraction(spec.burn_rate)
        ratio = _number(burn * definition.error_budget)
        long, short = (model.format_duration(w) for w in (tier.long_window, tier.short_window))
        expr = (
            f"{ERROR_RATIO}{long}{select} >= {ratio}\nand\n{ERROR_RATIO}{short}{select} >= {ratio}"
        )
        rule: dict[str, Any] = {"alert": alerting.name or DEFAULT_ALERT, "expr": expr}
        if tier.for_:
            rule["for"] = model.format_duration(tier.for_)
        rule["labels"] = {
            **dict(alerting.labels),
            **dict(spec.labels),
            "slo": definition.name,
            "severity": str(tier.severity),
            "tier": tier.name,
        }
        rule["annotations"] = {
            "summary": f"{definition.name}: error budget burning {_number(burn)}x too fast",
            "description": (
                f"{definition.name} ({definition.service}, objective {definition.objective}%) "
                f"is spending {_number(tier.budget_share * 100)}% of its "
                f"{model.format_duration(period)} error budget within {long} "
                f"(burn rate >= {_number(burn)} over {long} and {short})."
            ),
            **dict(alerting.annotations),
            **dict(spec.annotations),
        }
        alerts.append(rule)
    return alerts


def generate_rules(
    definitions: Iterable[model.SLODefinition], *, duration_buckets: Sequence[float]
) -> RuleSet:
    """Rule groups for every SLO that has a PromQL translation; the others in ``skipped``.

    A definition that is wrong rather than unsupported raises RuleGenerationError.
    """
    groups, skipped = [], []
    for definition in definitions:
        try:
            groups.append(slo_rule_group(definition, duration_buckets=duration_buckets))
        except UnsupportedSLI as exc:
            skipped.append(SkippedSLO(definition.name, str(exc)))
    return RuleSet(tuple(groups), tuple(skipped))


def rule_file(rules: RuleSet) -> dict[str, Any]:
    """A Prometheus rule file (``rule_files:``), as a document to dump as YAML."""
    return {"groups": list(rules.groups)}


def prometheus_rule(
    rules: RuleSet,
    *,
    name: str = "sloguard-slos",
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The same groups as a prometheus-operator ``PrometheusRule`` resource."""
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = dict(labels)
    return {
        "apiVersion": PROMETHEUS_RULE_API_VERSION,
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": {"groups": list(rules.groups)},
    }


def inline_recordings(expr: str, group: Mapping[str, Any]) -> str:
    """``expr`` with each ``record{slo="…"}`` reference replaced by the recorded expression.

    Recording rules do not evaluate over backfilled history; the inlined
    expression answers the same question at any past instant (a range query).
    """
    for rule in reversed(group["rules"]):
        if "record" not in rule:
            continue
        reference = f"{rule['record']}{{slo={_string(rule['labels']['slo'])}}}"
        expr = expr.replace(reference, f"({rule['expr']})")
    return expr


class _Dumper(yaml.SafeDumper):
    """No anchors (each rule reads on its own), multi-line PromQL as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(document: Mapping[str, Any]) -> str:
    """A rule file or PrometheusRule as YAML, keys in the order built."""
    return yaml.dump(dict(document), Dumper=_Dumper, sort_keys=False, width=120)
