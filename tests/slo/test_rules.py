"""Prometheus rules generated from SLO specs: promtool accepts them, thresholds scale."""

from __future__ import annotations

import shutil
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer import Typer
from typer.testing import CliRunner

from sloguard.cli.slo_rules import rules
from sloguard.slo._model import (
    DEFAULT_TIERS,
    Alerting,
    AlertTier,
    CalendarUnit,
    CalendarWindow,
    PluginSLI,
    RatioSLI,
    RequestSLI,
    RollingWindow,
    Severity,
    SLODefinition,
)
from sloguard.slo._rules import (
    PROMETHEUS_RULE_API_VERSION,
    RuleGenerationError,
    generate_rules,
    inline_recordings,
    prometheus_rule,
    rule_file,
    slo_rule_group,
    to_yaml,
)
from sloguard.slo._specload import load_slo_files
from sloguard.slo.spec import SLOKind
from tests.harness.servers import promtool

EXAMPLES = Path(__file__).parents[2] / "examples" / "slo"
# The default buckets plus 0.3: examples/slo/checkout.yaml judges latency at 300 ms.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 1.0, 2.5, 5.0, 10.0)
needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool is not installed"
)


def slo(**changes: Any) -> SLODefinition:
    fields: dict[str, Any] = {
        "name": "checkout",
        "service": "shop",
        "objective": Decimal("99.9"),
        "sli": RequestSLI(routes=("/checkout",)),
        "alerting": Alerting(tiers=(DEFAULT_TIERS[0],)),
    }
    return SLODefinition(**(fields | changes))


def alerts(definition: SLODefinition) -> list[dict[str, Any]]:
    group = slo_rule_group(definition, duration_buckets=BUCKETS)
    return [rule for rule in group["rules"] if "alert" in rule]


def records(definition: SLODefinition) -> dict[str, str]:
    group = slo_rule_group(definition, duration_buckets=BUCKETS)
    return {rule["record"]: rule["expr"] for rule in group["rules"] if "record" in rule}


@pytest.mark.parametrize(
    ("window", "ratio"),
    [
        pytest.param(RollingWindow(timedelta(days=30)), "0.0144", id="30d-burn-14.4"),
        pytest.param(RollingWindow(timedelta(days=28)), "0.01344", id="28d-burn-13.44"),
        pytest.param(RollingWindow(timedelta(days=7)), "0.00336", id="7d-burn-3.36"),
        pytest.param(CalendarWindow(CalendarUnit.MONTH), "0.0144", id="month-as-30d"),
    ],
)
def test_page_tier_threshold_scales_two_percent_in_an_hour_to_the_period(
    window: RollingWindow | CalendarWindow, ratio: str
) -> None:
    (alert,) = alerts(slo(window=window))
    assert alert["expr"] == (
        f'sloguard_slo:error_ratio:rate1h{{slo="checkout"}} >= {ratio}\n'
        f'and\nsloguard_slo:error_ratio:rate5m{{slo="checkout"}} >= {ratio}'
    )


def test_alerts_compare_with_at_least_like_the_engine() -> None:
    (alert,) = alerts(slo())
    assert alert["expr"].count(" >= ") == 2
    assert " > " not in alert["expr"]


def test_alert_carries_slo_severity_tier_labels_for_and_annotations() -> None:
    tier = AlertTier(
        "slow",
        Severity.TICKET,
        timedelta(days=1),
        timedelta(hours=2),
        burn_rate=Decimal(3),
        for_=timedelta(minutes=10),
        labels=(("team", "pay"),),
    )
    (alert,) = alerts(slo(alerting=Alerting(tiers=(tier,), name="CheckoutBurn")))
    assert alert["alert"] == "CheckoutBurn"
    assert alert["for"] == "10m"
    assert alert["labels"] == {
        "team": "pay",
        "slo": "checkout",
        "severity": "ticket",
        "tier": "slow",
    }
    assert "burning 3x too fast" in alert["annotations"]["summary"]


def test_disabled_tiers_generate_no_alert_and_no_windows() -> None:
    off = AlertTier(
        "off",
        Severity.PAGE,
        timedelta(days=3),
        timedelta(hours=6),
        budget_percent=Decimal(10),
        enabled=False,
    )
    definition = slo(alerting=Alerting(tiers=(DEFAULT_TIERS[0], off)))
    assert [a["labels"]["tier"] for a in alerts(definition)] == ["page-1h"]
    assert "sloguard_slo:error_ratio:rate3d" not in records(definition)


def test_availability_counts_5xx_of_the_selected_routes_and_methods() -> None:
    sli = RequestSLI(routes=("/checkout", "/cart/*"), methods=("POST",))
    expr = records(slo(sli=sli))["sloguard_slo:bad:rate5m"]
    assert expr == (
        '(sum(rate(sloguard_http_requests_total{route=~"/checkout|/cart/[^/]*",'
        'method=~"POST",status_class="5xx"}[5m])) or vector(0))'
    )


def test_latency_reads_the_bucket_at_the_threshold() -> None:
    sli = RequestSLI(kind=SLOKind.LATENCY, threshold_ms=Decimal(250))
    expr = records(slo(sli=sli))["sloguard_slo:bad:rate5m"]
    assert 'sloguard_http_request_duration_seconds_bucket{le="0.25"}[5m]' in expr
    assert expr.startswith("(sum(rate(sloguard_http_request_duration_seconds_count{}[5m])) - ")


def test_latency_threshold_off_the_bucket_boundaries_is_an_error() -> None:
    sli = RequestSLI(kind=SLOKind.LATENCY, threshold_ms=Decimal(300))
    with pytest.raises(RuleGenerationError, match="300 ms is not a bucket boundary"):
        slo_rule_group(slo(sli=sli), duration_buckets=(0.25, 0.5))


def test_ratio_sli_fills_the_window_into_its_queries() -> None:
    sli = RatioSLI(good="sum(rate(ok[{{.window}}]))", total="sum(rate(all[{{ .window }}]))")
    expr = records(slo(sli=sli))["sloguard_slo:error_ratio:rate1h"]
    assert expr == ("((sum(rate(all[1h]))) - (sum(rate(ok[1h]))))\n/\n(sum(rate(all[1h])))")


def test_period_ratio_sums_the_five_minute_rates() -> None:
    expr = records(slo(window=RollingWindow(timedelta(days=28))))["sloguard_slo:error_ratio:period"]
    assert expr == (
        'sum_over_time(sloguard_slo:bad:rate5m{slo="checkout"}[28d])\n/\n'
        'sum_over_time(sloguard_slo:total:rate5m{slo="checkout"}[28d])'
    )


def test_plugin_slis_are_skipped_with_the_reason() -> None:
    plugin = slo(name="wifi", sli=PluginSLI("sloth-common/availability"))
    generated = generate_rules([slo(), plugin], duration_buckets=BUCKETS)
    assert [g["name"] for g in generated.groups] == ["sloguard-slo-checkout"]
    (skipped,) = generated.skipped
    assert skipped.name == "wifi"
    assert "cannot expand plugins" in skipped.reason


def test_inlining_leaves_no_recorded_series_in_an_alert() -> None:
    group = slo_rule_group(slo(), duration_buckets=BUCKETS)
    alert = next(rule for rule in group["rules"] if "alert" in rule)
    inlined = inline_recordings(alert["expr"], group)
    assert "sloguard_slo:" not in inlined
    assert inlined.count("sloguard_http_requests_total") == 4


@pytest.mark.parametrize("as_resource", [False, True], ids=["rule-file", "prometheusrule"])
@pytest.mark.servers
@needs_promtool
def test_promtool_accepts_the_rules_of_every_example(tmp_path: Path, as_resource: bool) -> None:
    generated = generate_rules(load_slo_files([EXAMPLES]), duration_buckets=BUCKETS)
    document = prometheus_rule(generated) if as_resource else rule_file(generated)
    groups = document["spec"] if as_resource else document
    path = tmp_path / "rules.yaml"
    path.write_text(to_yaml(groups))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert len(generated.groups) == 7
    assert [s.name for s in generated.skipped] == ["home-wifi-requests-availability"]


def test_prometheus_rule_is_an_operator_resource_holding_the_same_groups() -> None:
    generated = generate_rules([slo()], duration_buckets=BUCKETS)
    resource = prometheus_rule(generated, name="slos", namespace="shop", labels={"release": "kps"})
    assert resource["apiVersion"] == PROMETHEUS_RULE_API_VERSION == "monitoring.coreos.com/v1"
    assert resource["kind"] == "PrometheusRule"
    assert resource["metadata"] == {
        "name": "slos",
        "namespace": "shop",
        "labels": {"release": "kps"},
    }
    assert resource["spec"] == rule_file(generated)


def cli() -> Typer:
    app = Typer()
    app.command()(rules)
    return app


def test_command_writes_a_prometheusrule_and_reports_skips(tmp_path: Path) -> None:
    config = tmp_path / "sloguard.yaml"
    config.write_text(yaml.safe_dump({"metrics": {"duration_buckets": list(BUCKETS)}}))
    out = tmp_path / "rules.yaml"
    result = CliRunner().invoke(
        cli(),
        [str(EXAMPLES), "--format", "prometheusrule", "-o", str(out), "--config", str(config)],
    )
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(out.read_text())["kind"] == "PrometheusRule"
    assert "skipped home-wifi-requests-availability" in result.output


def test_command_exits_2_when_a_latency_threshold_is_not_a_bucket(tmp_path: Path) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text(
        (EXAMPLES / "checkout.yaml").read_text().replace("threshold_ms: 250", "threshold_ms: 300")
    )
    result = CliRunner().invoke(cli(), [str(spec)])
    assert result.exit_code == 2
    assert "300 ms is not a bucket boundary" in result.output
