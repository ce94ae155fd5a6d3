"""OpenSLO v1: every kind, references across documents and files, and sloguard's annotations."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from sloguard.slo._model import (
    DEFAULT_TIERS,
    AlertTier,
    Budgeting,
    BudgetingMethod,
    CalendarUnit,
    CalendarWindow,
    FileSource,
    Operator,
    PrometheusSource,
    RatioSLI,
    RawType,
    RequestSLI,
    RollingWindow,
    Severity,
    SLODefinition,
    StoreSource,
    ThresholdSLI,
)
from sloguard.slo._specload import load_slo_files, validate_paths
from sloguard.slo.spec import SLOKind

EXAMPLE = Path(__file__).parents[2] / "examples" / "slo" / "openslo-shop.yaml"

SLI = """apiVersion: openslo/v1
kind: SLI
metadata: {name: errors}
spec:
  ratioMetric:
    bad: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(e[{{.window}}]))'}}}
    total: {metricSource: {type: Prometheus, spec: {query: 'sum(rate(t[{{.window}}]))'}}}
"""


def slo(*spec_lines: str, name: str = "api") -> str:
    """An SLO document; spec lines start at line 5."""
    head = f"apiVersion: openslo/v1\nkind: SLO\nmetadata: {{name: {name}}}\nspec:\n"
    return head + "".join(f"  {line}\n" for line in spec_lines)


BASE = ("service: api", "indicatorRef: errors", "budgetingMethod: Occurrences")


def load_text(text: str) -> list[SLODefinition]:
    Path("slo.yaml").write_text(text)
    return load_slo_files(["slo.yaml"])


def problems(text: str) -> list[str]:
    Path("slo.yaml").write_text(text)
    return [str(problem) for problem in validate_paths(["slo.yaml"])]


def test_the_example_resolves_every_reference() -> None:
    cart, checkout = load_slo_files([EXAMPLE])
    assert cart.sli == RatioSLI(
        good='sum(rate(http_requests_total{job="cart",code!~"5.."}[{{.window}}]))',
        total='sum(rate(http_requests_total{job="cart"}[{{.window}}]))',
    )
    assert cart.source == PrometheusSource(name="prometheus", url="http://127.0.0.1:9090")
    assert (cart.objective, cart.window) == (Decimal("99.9"), RollingWindow(timedelta(days=28)))
    assert cart.labels == (("team", "shop,payments"),)
    assert checkout.sli == RequestSLI(("/checkout",), ("GET",), SLOKind.LATENCY, Decimal(250))
    assert checkout.source == StoreSource()


def test_alert_policies_become_tiers_with_the_short_window_annotation() -> None:
    fast, slow = load_slo_files([EXAMPLE])[0].alerting.tiers
    assert fast == AlertTier(
        name="cart-fast-burn",
        severity=Severity.PAGE,
        long_window=timedelta(hours=1),
        short_window=timedelta(minutes=5),
        burn_rate=Decimal("14.4"),
        notify=("on-call-pager",),
    )
    assert (slow.severity, slow.long_window, slow.short_window) == (
        Severity.TICKET,
        timedelta(days=3),
        timedelta(hours=6),
    )
    assert slow.for_ == timedelta(hours=1)


def test_calendar_timeslices_and_sloguard_annotations_are_read() -> None:
    checkout = load_slo_files([EXAMPLE])[1]
    assert checkout.window == CalendarWindow(
        CalendarUnit.MONTH, "America/New_York", datetime(2026, 1, 1)
    )
    assert checkout.budgeting == Budgeting(
        BudgetingMethod.TIMESLICES, timedelta(minutes=5), Decimal("0.9")
    )
    assert checkout.objective == Decimal("99.5")
    assert checkout.alerting.tiers == DEFAULT_TIERS
    assert [e.reason for e in checkout.exclusions] == ["database upgrade"]


def test_references_resolve_across_files() -> None:
    Path("sli.yaml").write_text(SLI)
    Path("slo.yaml").write_text(slo(*BASE, "objectives: [{target: 0.995}]"))
    [definition] = load_slo_files(["slo.yaml", "sli.yaml"])
    assert definition.sli == RatioSLI(
        bad="sum(rate(e[{{.window}}]))", total="sum(rate(t[{{.window}}]))"
    )
    assert definition.objective == Decimal("99.5")
    assert definition.window == RollingWindow(timedelta(days=30))


def test_a_list_of_objects_in_one_document_is_read_like_upstream_examples() -> None:
    items = [SLI, slo(*BASE, "objectives: [{targetPercent: 99}]")]
    listed = "".join("- " + text.replace("\n", "\n  ").rstrip() + "\n" for text in items)
    [definition] = load_text(listed)
    assert definition.name == "api"
    assert definition.objective == Decimal(99)


def test_several_objectives_become_one_definition_each() -> None:
    objectives = "objectives: [{displayName: Most, target: 0.99}, {target: 0.999}]"
    definitions = load_text(SLI + "---\n" + slo(*BASE, objectives))
    assert [(d.name, d.objective) for d in definitions] == [
        ("api-most", Decimal("99")),
        ("api-2", Decimal("99.9")),
    ]


def test_a_threshold_metric_takes_op_and_value_from_its_objective() -> None:
    indicator = (
        "indicator: {metadata: {name: lag}, spec: {thresholdMetric: "
        "{metricSource: {type: prometheus, spec: {query: max(lag)}}}}}"
    )
    lines = ("service: kafka", indicator, "budgetingMethod: Timeslices")
    objective = (
        "objectives: [{op: lte, value: 2.5, target: 0.99, timeSliceTarget: 1, timeSliceWindow: 1}]"
    )
    [definition] = load_text(slo(*lines, objective))
    assert definition.sli == ThresholdSLI("max(lag)", Operator.LTE, Decimal("2.5"))
    assert definition.budgeting.slice == timedelta(minutes=1)


@pytest.mark.parametrize(
    ("source_lines", "expected"),
    [
        pytest.param(
            "metricSource: {type: File, spec: {path: hist.csv}}",
            (FileSource("hist.csv", "csv"), RatioSLI(raw="raw", raw_type=RawType.FAILURE)),
            id="file",
        ),
        pytest.param(
            "metricSource: {type: Prometheus, spec: {query: q}}",
            (PrometheusSource(), RatioSLI(raw="q", raw_type=RawType.FAILURE)),
            id="prometheus",
        ),
    ],
)
def test_raw_ratios_read_from_files_or_prometheus(source_lines: str, expected: object) -> None:
    ratio = f"{{rawType: failure, raw: {{{source_lines}}}}}"
    indicator = f"indicator: {{metadata: {{name: r}}, spec: {{ratioMetric: {ratio}}}}}"
    [definition] = load_text(
        slo("service: s", indicator, "budgetingMethod: Occurrences", "objectives: [{target: 0.9}]")
    )
    assert (definition.source, definition.sli) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            slo(*BASE, "objectives: [{target: 99.9}]"),
            ["slo.yaml:8: spec.objectives[0].target: must be between 0 and 1 (exclusive)"],
            id="target-range",
        ),
        pytest.param(
            slo(*BASE, "objectives: [{target: 0.9, targetPercent: 90}]"),
            ["slo.yaml:8: spec.objectives[0]: needs exactly one of target or targetPercent"],
            id="two-targets",
        ),
        pytest.param(
            slo(
                "service: api",
                "indicatorRef: missing",
                "budgetingMethod: Occurrences",
                "objectives: [{target: 0.9}]",
            ),
            ["slo.yaml:6: spec.indicatorRef: no SLI named 'missing'"],
            id="missing-sli",
        ),
        pytest.param(
            slo(*BASE, "objectives: [{target: 0.9}]", "alertPolicies: [{alertPolicyRef: nope}]"),
            ["slo.yaml:9: spec.alertPolicies[0].alertPolicyRef: no AlertPolicy named 'nope'"],
            id="missing-policy",
        ),
        pytest.param(
            slo(
                "service: api",
                "indicatorRef: errors",
                "budgetingMethod: Timeslices",
                "objectives: [{target: 0.9, timeSliceWindow: 5m}]",
            ),
            ["slo.yaml:8: spec.objectives[0].timeSliceTarget: required with Timeslices"],
            id="timeslices-target",
        ),
        pytest.param(
            slo(
                "service: api",
                "indicatorRef: errors",
                "budgetingMethod: Monthly",
                "objectives: [{target: 0.9}]",
            ),
            [
                "slo.yaml:7: spec.budgetingMethod: must be 'Occurrences', 'Timeslices' or"
                " 'RatioTimeslices'"
            ],
            id="budgeting-method",
        ),
        pytest.param(
            slo(
                *BASE,
                "objectives: [{target: 0.9}]",
                "timeWindow: [{duration: 1M, isRolling: true}]",
            ),
            [
                "slo.yaml:9: spec.timeWindow[0].duration: needs a fixed length: write days"
                " (like 30d) instead of '1M'"
            ],
            id="rolling-months",
        ),
        pytest.param(
            slo(
                *BASE,
                "objectives: [{target: 0.9}]",
                "timeWindow: [{duration: 2w,"
                " calendar: {startTime: 2026-01-01 00:00:00, timeZone: UTC}}]",
            ),
            [
                "slo.yaml:9: spec.timeWindow[0].duration: sloguard's calendar windows are"
                " 1w, 1M or 1Q"
            ],
            id="calendar-length",
        ),
        pytest.param(
            slo(*BASE, "objectives: [{target: 0.9}]", "objectivs: []"),
            ["slo.yaml:9: spec.objectivs: unknown field (did you mean 'objectives'?)"],
            id="unknown-field",
        ),
        pytest.param(
            slo(*BASE, "objectives: [{target: 0.9, indicatorRef: errors}]"),
            [
                "slo.yaml:8: spec.objectives[0]: composite SLOs (an indicator per objective)"
                " are not supported"
            ],
            id="composite",
        ),
        pytest.param(
            "apiVersion: openslo/v1\nkind: Dashboard\nmetadata: {name: x}\nspec: {}\n",
            [
                "slo.yaml:2: kind: must be one of SLO, SLI, AlertPolicy, AlertCondition,"
                " AlertNotificationTarget, DataSource, Service (apiVersion openslo/v1)"
            ],
            id="unknown-kind",
        ),
        pytest.param(
            "apiVersion: openslo/v1alpha\nkind: SLO\n",
            [
                "slo.yaml:1: -: apiVersion 'openslo/v1alpha' is not supported;"
                " sloguard reads openslo/v1"
            ],
            id="v1alpha",
        ),
    ],
)
def test_invalid_objects_name_line_and_field(text: str, expected: list[str]) -> None:
    assert problems(SLI + "---\n" + text) == below_the_sli(expected)


def below_the_sli(expected: list[str]) -> list[str]:
    """Lines counted in the SLO document, moved below the SLI (7 lines and '---')."""
    moved = []
    for text in expected:
        path, line, rest = text.split(":", 2)
        moved.append(f"{path}:{int(line) + 8}:{rest}")
    return moved


def test_problems_inside_a_referenced_object_point_at_that_object() -> None:
    Path("sli.yaml").write_text(SLI.replace("type: Prometheus", "type: Datadog", 1))
    Path("slo.yaml").write_text(slo(*BASE, "objectives: [{target: 0.9}]"))
    assert [str(p) for p in validate_paths(["slo.yaml", "sli.yaml"])] == [
        "sli.yaml:6: spec.ratioMetric.bad.metricSource.type: sloguard reads Prometheus, File or"
        " sloguard sources, not 'Datadog'"
    ]


def test_an_alert_policy_reports_every_problem_of_its_condition_and_targets() -> None:
    policy = """apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: p}
spec:
  conditions:
    - kind: AlertCondition
      metadata: {name: c, annotations: {sloguard.dev/short-window: 5x}}
      spec: {severity: sev1, condition: {kind: burnrate, threshold: 2, lookbackWindow: 1h}}
  notificationTargets: [{targetRef: nobody}]
"""
    assert problems(policy) == [
        "slo.yaml:7: spec.conditions[0].metadata.annotations.sloguard.dev/short-window: invalid"
        " duration '5x': expected numbers with units w, d, h, m, s, largest first, like 30d,"
        " 1h30m or 5m",
        "slo.yaml:8: spec.conditions[0].spec.severity: sloguard routes page or ticket, not 'sev1'",
        "slo.yaml:9: spec.notificationTargets[0].targetRef: no AlertNotificationTarget named"
        " 'nobody'",
    ]


def test_sloguard_annotations_are_checked() -> None:
    annotations = "{sloguard.dev/alerting: all, sloguard.dev/exclusions: '[{start: x}]'}"
    annotated = slo(*BASE, "objectives: [{target: 0.9}]").replace(
        "metadata: {name: api}", f"metadata: {{name: api, annotations: {annotations}}}"
    )
    assert problems(SLI + "---\n" + annotated) == [
        "slo.yaml:11: metadata.annotations.sloguard.dev/alerting: must be default or none",
        "slo.yaml:11: metadata.annotations.sloguard.dev/exclusions: [0].start: must be a valid"
        " datetime or date, input is too short",
        "slo.yaml:11: metadata.annotations.sloguard.dev/exclusions: [0].end: required",
    ]


def test_duplicate_object_names_are_rejected() -> None:
    assert problems(SLI + "---\n" + SLI) == [
        "slo.yaml:11: metadata.name: another SLI is named 'errors'"
    ]


# From OpenSLO's own v1 examples (github.com/OpenSLO/OpenSLO, pkg/openslo/v1/examples/slos.yaml,
# Apache License 2.0), verbatim.
UPSTREAM_SLOS = """\
- apiVersion: openslo/v1
  kind: SLO
  metadata:
    name: web-availability
    displayName: SLO for web availability
    labels:
      env:
        - prod
      team:
        - team-a
        - team-b
  spec:
    description: X% of search requests are successful
    service: web
    indicator:
      metadata:
        name: web-successful-requests-ratio
      spec:
        ratioMetric:
          counter: true
          good:
            metricSource:
              type: Prometheus
              spec:
                query: sum(http_requests{k8s_cluster="prod",component="web",code=~"2xx|4xx"})
          total:
            metricSource:
              type: Prometheus
              spec:
                query: sum(http_requests{k8s_cluster="prod",component="web"})
    timeWindow:
      - duration: 1w
        isRolling: false
        calendar:
          startTime: 2022-01-01 12:00:00
          timeZone: America/New_York
    budgetingMethod: Timeslices
    objectives:
      - displayName: Good
        op: gt
        target: 0.995
        timeSliceTarget: 0.95
        timeSliceWindow: 1m
"""


def test_openslos_own_example_loads() -> None:
    [definition] = load_text(UPSTREAM_SLOS)
    assert definition.name == "web-availability"
    assert definition.objective == Decimal("99.5")
    assert definition.window == CalendarWindow(
        CalendarUnit.WEEK, "America/New_York", datetime(2022, 1, 1, 12)
    )
    assert definition.budgeting == Budgeting(
        BudgetingMethod.TIMESLICES, timedelta(minutes=1), Decimal("0.95")
    )
    assert definition.labels == (("env", "prod"), ("team", "team-a,team-b"))


def test_a_source_sloguard_cannot_read_is_named_at_its_type() -> None:
    text = UPSTREAM_SLOS.replace("type: Prometheus", "type: Datadog")
    assert problems(text) == [
        "slo.yaml:23: [0].spec.indicator.spec.ratioMetric.good.metricSource.type: sloguard"
        " reads Prometheus, File or sloguard sources, not 'Datadog'"
    ]
