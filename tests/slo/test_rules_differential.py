"""The generated rules and the engine, fed the same synthetic history, must agree.

A per-minute history (0.05% errors, then 15% errors for 10 minutes, plus
another route's noise the selector must leave out) becomes OpenMetrics
counters sampled every 60 s, backfilled into a real Prometheus with
``promtool tsdb create-blocks-from openmetrics``. Recording rules do not
evaluate over backfilled history, so the generated expressions are range-queried
with the recording rules inlined. With counter samples exactly on the minute,
``rate(x[1h])`` at a minute spans exactly the engine's window (Prometheus 2.x
ranges include both ends, and no extrapolation happens when the samples cover
the range), so the burn rates agree to float rounding: the tolerance is 1e-9
relative. Firing intervals of the page tier must agree within 2 minutes.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from sloguard.slo._alerting import evaluate_tiers
from sloguard.slo._engine import engine_tiers
from sloguard.slo._history import scan_history
from sloguard.slo._model import (
    DEFAULT_TIERS,
    Alerting,
    RequestSLI,
    SLODefinition,
)
from sloguard.slo._rules import RuleSet, inline_recordings, rule_file, slo_rule_group, to_yaml
from sloguard.slo._windows import SeriesIndex
from tests.harness.servers import PrometheusFactory, PrometheusServer

pytestmark = [
    pytest.mark.servers,
    pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed"),
]

PER_MINUTE = 2000
MINUTES = 240
INCIDENT = range(150, 160)  # 15% errors for 10 minutes
FIRST = 60  # the first instant with a full hour of history
RELATIVE_TOLERANCE = 1e-9
FIRING_TOLERANCE_MINUTES = 2
DEFINITION = SLODefinition(
    name="checkout-availability",
    service="shop",
    objective=Decimal("99.9"),
    sli=RequestSLI(routes=("/checkout",), methods=("POST",)),
    alerting=Alerting(tiers=(DEFAULT_TIERS[0],)),
)
PERIOD = timedelta(days=30)
GROUP = slo_rule_group(DEFINITION, duration_buckets=())
TIERS = engine_tiers(DEFINITION.alerting, PERIOD)


def bad_in_minute(k: int) -> int:
    return PER_MINUTE * 15 // 100 if k in INCIDENT else 1


def counter_lines(labels: str, per_minute: list[int], start: int) -> Iterator[str]:
    total = 0
    for k in range(MINUTES + 1):
        yield f"sloguard_http_requests_total{{{labels}}} {total} {start + 60 * k}"
        total += per_minute[k] if k < MINUTES else 0


def openmetrics(start: int) -> str:
    bad = [bad_in_minute(k) for k in range(MINUTES)]
    series = {
        'method="POST",route="/checkout",status_class="2xx"': [PER_MINUTE - b for b in bad],
        'method="POST",route="/checkout",status_class="5xx"': bad,
        'method="GET",route="/health",status_class="5xx"': [500] * MINUTES,  # not selected
    }
    lines = ["# TYPE sloguard_http_requests counter"]
    for labels, counts in series.items():
        lines.extend(counter_lines(labels, counts, start))
    return "\n".join([*lines, "# EOF", ""])


def runs(minutes: list[int]) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    for minute in minutes:
        if found and found[-1][1] == minute:
            found[-1] = (found[-1][0], minute + 1)
        else:
            found.append((minute, minute + 1))
    return found


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A TSDB directory backfilled with the history, and its first minute (unix minutes)."""
    start = (int(time.time()) // 3600 - 5) * 3600  # recent, so retention keeps it
    workdir = tmp_path_factory.mktemp("backfill")
    source = workdir / "history.om.txt"
    source.write_text(openmetrics(start))
    subprocess.run(
        [
            "promtool",
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            str(source),
            str(workdir / "data"),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return workdir / "data", start // 60


def engine_series(first_minute: int) -> list[tuple[int, int, int]]:
    return [(first_minute + k, PER_MINUTE - bad_in_minute(k), PER_MINUTE) for k in range(MINUTES)]


@pytest.fixture
def prometheus(
    prometheus_factory: PrometheusFactory, history: tuple[Path, int], tmp_path: Path
) -> tuple[PrometheusServer, int]:
    """Prometheus over the backfilled history, also loading the generated rules."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(to_yaml(rule_file(RuleSet((GROUP,)))))
    datadir, first_minute = history
    server = prometheus_factory(rule_files=[rules], extra_args=[f"--storage.tsdb.path={datadir}"])
    return server, first_minute


def query_minutes(server: PrometheusServer, promql: str, first_minute: int) -> dict[int, float]:
    """``promql`` at every minute instant from FIRST to the end, keyed by unix minute."""
    start, end = (first_minute + FIRST) * 60, (first_minute + MINUTES) * 60
    result = server.query_range(promql, start=start, end=end, step=60)
    assert len(result) <= 1, result
    return {int(t) // 60: value for t, value in (result[0].values if result else ())}


def recorded(window: str) -> str:
    return inline_recordings(
        f'sloguard_slo:error_ratio:rate{window}{{slo="{DEFINITION.name}"}}', GROUP
    )


@pytest.mark.parametrize("window", ["1h", "5m"])
def test_prometheus_burn_rates_match_the_engine_at_every_minute(
    prometheus: tuple[PrometheusServer, int], window: str
) -> None:
    server, first_minute = prometheus
    ratios = query_minutes(server, recorded(window), first_minute)
    index = SeriesIndex(engine_series(first_minute))
    instants = range(first_minute + FIRST, first_minute + MINUTES + 1)
    assert sorted(ratios) == list(instants)
    for at in instants:
        (result,) = evaluate_tiers(index, TIERS, DEFINITION.target, PERIOD, at)
        burn = result.long if window == "1h" else result.short
        assert burn is not None
        assert burn.burn_rate is not None
        expected = float(burn.burn_rate)
        actual = ratios[at] / float(DEFINITION.error_budget)
        assert math.isclose(actual, expected, rel_tol=RELATIVE_TOLERANCE), (at, actual, expected)


def test_page_tier_fires_over_the_same_minutes_in_prometheus_and_the_engine(
    prometheus: tuple[PrometheusServer, int],
) -> None:
    server, first_minute = prometheus
    alert = next(rule for rule in GROUP["rules"] if rule.get("alert"))
    firing = query_minutes(server, inline_recordings(alert["expr"], GROUP), first_minute)
    (engine,) = scan_history(
        engine_series(first_minute),
        TIERS,
        DEFINITION.target,
        PERIOD,
        first_minute + FIRST,
        first_minute + MINUTES + 1,
    )
    expected = [(i.start, i.end) for i in engine.intervals]
    assert len(expected) == 1
    actual = runs(sorted(firing))
    assert len(actual) == len(expected)
    for (a_start, a_end), (e_start, e_end) in zip(actual, expected, strict=True):
        assert abs(a_start - e_start) <= FIRING_TOLERANCE_MINUTES
        assert abs(a_end - e_end) <= FIRING_TOLERANCE_MINUTES
