"""Importing Sloth prometheus/v1 specs: its own examples, and what it rejects."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from sloguard.slo._model import (
    DEFAULT_TIERS,
    Budgeting,
    PluginSLI,
    PrometheusSource,
    RatioSLI,
    RawType,
    RollingWindow,
    Severity,
)
from sloguard.slo._specload import load_slo_files, validate_paths

EXAMPLES = Path(__file__).parents[2] / "examples" / "slo"
SPEC = """version: prometheus/v1
service: api
slos:
  - name: availability
    objective: 99.9
    sli:
      events:
        error_query: sum(rate(errors[{{.window}}]))
        total_query: sum(rate(requests[{{.window}}]))
"""


def problems(text: str) -> list[str]:
    Path("sloth.yaml").write_text(text)
    return [str(problem) for problem in validate_paths(["sloth.yaml"])]


def test_sloth_getting_started_imports_as_a_30_day_event_ratio() -> None:
    [slo] = load_slo_files([EXAMPLES / "sloth-getting-started.yaml"])
    assert slo.name == "myservice-requests-availability"
    assert (slo.service, slo.objective) == ("myservice", Decimal("99.9"))
    assert slo.sli == RatioSLI(
        bad='sum(rate(http_request_duration_seconds_count{job="myservice",code=~"(5..|429)"}'
        "[{{.window}}]))",
        total='sum(rate(http_request_duration_seconds_count{job="myservice"}[{{.window}}]))',
    )
    assert (slo.window, slo.budgeting) == (RollingWindow(timedelta(days=30)), Budgeting())
    assert slo.source == PrometheusSource()
    assert slo.labels == (("owner", "myteam"), ("repo", "myorg/myservice"), ("tier", "2"))


def test_sloth_page_and_ticket_alerts_become_sloguards_default_tiers() -> None:
    [slo] = load_slo_files([EXAMPLES / "sloth-getting-started.yaml"])
    alerting = slo.alerting
    assert alerting.name == "MyServiceHighErrorRate"
    assert alerting.labels == (("category", "availability"),)
    assert [t.name for t in alerting.tiers] == [t.name for t in DEFAULT_TIERS]
    page, ticket = alerting.tiers[0], alerting.tiers[3]
    assert (page.severity, page.for_) == (Severity.PAGE, timedelta(minutes=5))
    assert page.labels == (("routing_key", "myteam"), ("severity", "pageteam"))
    assert (ticket.severity, ticket.for_) == (Severity.TICKET, timedelta(minutes=10))
    assert ticket.budget_percent == Decimal(10)


def test_sloth_raw_and_plugin_slis_are_imported() -> None:
    raw, plugin = load_slo_files([EXAMPLES / "sloth-home-wifi.yaml"])
    assert isinstance(raw.sli, RatioSLI)
    assert raw.sli.raw_type is RawType.FAILURE
    assert "count_over_time" in (raw.sli.raw or "")
    assert raw.objective == Decimal(95)
    assert plugin.sli == PluginSLI("getting_started_availability", (("job", "myservice"),))
    assert not any(tier.enabled for tier in plugin.alerting.tiers)


def test_the_sloth_window_can_be_set_like_sloths_default_period_flag() -> None:
    Path("sloth.yaml").write_text(SPEC)
    [slo] = load_slo_files(["sloth.yaml"], sloth_window=timedelta(days=28))
    assert slo.window == RollingWindow(timedelta(days=28))


def test_camel_case_query_keys_from_sloths_examples_are_read() -> None:
    text = SPEC.replace("error_query", "errorQuery").replace("total_query", "totalQuery")
    Path("sloth.yaml").write_text(text)
    [slo] = load_slo_files(["sloth.yaml"])
    assert slo.sli == RatioSLI(
        bad="sum(rate(errors[{{.window}}]))", total="sum(rate(requests[{{.window}}]))"
    )


def test_unquoted_label_values_are_read_as_their_text() -> None:
    Path("sloth.yaml").write_text(SPEC.replace("slos:", "labels: {tier: 2, critical: true}\nslos:"))
    [slo] = load_slo_files(["sloth.yaml"])
    assert slo.labels == (("critical", "true"), ("tier", "2"))


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "objective: 99.9",
            "objective: 100",
            "sloth.yaml:5: slos[0].objective: must be between 0 and 100 (exclusive)",
            id="objective",
        ),
        pytest.param(
            "errors[{{.window}}]",
            "errors[5m]",
            "sloth.yaml:8: slos[0].sli.events.error_query: must use the {{.window}} template"
            " variable",
            id="window-variable",
        ),
        pytest.param(
            "    sli:\n",
            "    alerting: {page_alert: {for: 5 minutes}}\n    sli:\n",
            "sloth.yaml:6: slos[0].alerting.page_alert.for: invalid duration '5 minutes': expected"
            " numbers with units w, d, h, m, s, largest first, like 30d, 1h30m or 5m",
            id="for",
        ),
        pytest.param(
            "      events:",
            "      raw: {error_ratio_query: 'x[{{.window}}]'}\n      events:",
            "sloth.yaml:6: slos[0].sli: needs exactly one of events, raw or plugin",
            id="two-slis",
        ),
        pytest.param(
            "objective: 99.9",
            "objective: 99.9\n    objetive: 1",
            "sloth.yaml:6: slos[0].objetive: unknown field (did you mean 'objective'?)",
            id="unknown-field",
        ),
        pytest.param(
            "service: api\n",
            "",
            "sloth.yaml:1: service: required",
            id="service",
        ),
    ],
)
def test_invalid_sloth_specs_name_line_and_field(old: str, new: str, expected: str) -> None:
    assert problems(SPEC.replace(old, new)) == [expected]
