"""The native SLO format: what it reads, what it rejects (and where), and the round trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
    format_duration,
    parse_duration,
    to_selector,
)
from sloguard.slo._native_dump import dumps_native
from sloguard.slo._specload import load_slo_files, validate_paths
from sloguard.slo.spec import SLOKind, SLOSpec

EXAMPLE = Path(__file__).parents[2] / "examples" / "slo" / "checkout.yaml"
HEADER = "apiVersion: sloguard.dev/v1\nkind: SLO\nmetadata: {name: checkout, service: shop}\n"
SELECTOR = 'sli: {requests: {routes: ["/checkout"]}}'


def document(*spec_lines: str) -> str:
    """A native document; spec lines start at line 5."""
    return HEADER + "spec:\n" + "".join(f"  {line}\n" for line in spec_lines)


def load_one(text: str) -> SLODefinition:
    Path("slo.yaml").write_text(text)
    [definition] = load_slo_files(["slo.yaml"])
    return definition


def problems(text: str) -> list[str]:
    Path("slo.yaml").write_text(text)
    return [str(problem) for problem in validate_paths(["slo.yaml"])]


def test_the_example_file_loads_three_slos_with_their_parts() -> None:
    availability, latency, errors = load_slo_files([EXAMPLE])
    assert availability.sli == RequestSLI(("/checkout", "/checkout/*"), ("POST",))
    assert availability.alerting.tiers == DEFAULT_TIERS
    assert availability.exclusions[0].reason == "database upgrade"
    assert latency.window == CalendarWindow(CalendarUnit.MONTH, "Europe/Berlin")
    assert latency.budgeting == Budgeting(
        BudgetingMethod.TIMESLICES, timedelta(minutes=5), Decimal("0.95")
    )
    assert errors.source == PrometheusSource(url="http://127.0.0.1:9090")
    assert errors.alerting.tiers[0].burn_rate == Decimal("14.4")


def test_native_round_trips_through_the_model() -> None:
    definitions = load_slo_files([EXAMPLE])
    Path("again.yaml").write_text(dumps_native(definitions))
    assert load_slo_files(["again.yaml"]) == definitions


def test_objective_keeps_the_digits_as_written() -> None:
    definition = load_one(document("objective: 99.99999999999999999", SELECTOR))
    assert definition.objective == Decimal("99.99999999999999999")
    assert str(definition.objective) == "99.99999999999999999"
    assert definition.error_budget == Fraction(1, 10**19)


def test_a_minimal_document_gets_the_defaults() -> None:
    definition = load_one(document("objective: 99.9", SELECTOR))
    assert definition.window == RollingWindow(timedelta(days=30))
    assert definition.budgeting == Budgeting()
    assert definition.alerting.tiers == DEFAULT_TIERS
    assert definition.source == StoreSource()
    assert definition.sli == RequestSLI(("/checkout",), kind=SLOKind.AVAILABILITY)


@pytest.mark.parametrize(
    ("line", "attribute", "expected"),
    [
        pytest.param("window: 1h30m", "window", RollingWindow(timedelta(minutes=90)), id="rolling"),
        pytest.param(
            "window: {calendar: quarter, timeZone: Asia/Tokyo, start: 2026-01-01T00:00:00}",
            "window",
            CalendarWindow(CalendarUnit.QUARTER, "Asia/Tokyo", datetime(2026, 1, 1)),
            id="calendar",
        ),
        pytest.param(
            "budgeting: {ratioTimeslices: {slice: 1m}}",
            "budgeting",
            Budgeting(BudgetingMethod.RATIO_TIMESLICES, timedelta(minutes=1)),
            id="ratio-timeslices",
        ),
        pytest.param("alerting: {tiers: []}", "alerting.tiers", (), id="no-alerts"),
        pytest.param(
            "source: {file: {path: history.json, format: json}}",
            "source",
            FileSource("history.json", "json"),
            id="file-source",
        ),
        pytest.param(
            "source: {prometheus: {bad: 'b[{{.window}}]', total: 't[{{.window}}]'}}",
            "source",
            PrometheusSource(bad="b[{{.window}}]", total="t[{{.window}}]"),
            id="prometheus-templates",
        ),
    ],
)
def test_optional_parts_are_read(line: str, attribute: str, expected: object) -> None:
    value: object = load_one(document("objective: 99.9", SELECTOR, line))
    for name in attribute.split("."):
        value = getattr(value, name)
    assert value == expected


@pytest.mark.parametrize(
    ("sli", "source", "expected"),
    [
        pytest.param(
            "{requests: {routes: ['/a/*'], methods: [get], latency: {threshold_ms: 250}}}",
            "store",
            RequestSLI(("/a/*",), ("GET",), SLOKind.LATENCY, Decimal(250)),
            id="latency",
        ),
        pytest.param(
            "{ratio: {good: g, total: t}}",
            "prometheus",
            RatioSLI(total="t", good="g"),
            id="good-total",
        ),
        pytest.param(
            "{ratio: {raw: r, rawType: failure, counter: false}}",
            "prometheus",
            RatioSLI(raw="r", raw_type=RawType.FAILURE, counter=False),
            id="raw",
        ),
        pytest.param(
            "{threshold: {metric: lag, op: lte, value: 2.5}}",
            "prometheus",
            ThresholdSLI("lag", Operator.LTE, Decimal("2.5")),
            id="threshold",
        ),
    ],
)
def test_each_kind_of_sli_is_read(sli: str, source: str, expected: object) -> None:
    definition = load_one(document("objective: 99", f"sli: {sli}", f"source: {source}"))
    assert definition.sli == expected


def test_custom_tiers_keep_every_field() -> None:
    tier_line = (
        "alerting: {tiers: [{name: slow, severity: ticket, budgetPercent: 10, longWindow: 3d,"
        " shortWindow: 6h, enabled: false, for: 15m, labels: {team: a}}]}"
    )
    [tier] = load_one(document("objective: 99.9", SELECTOR, tier_line)).alerting.tiers
    assert tier == AlertTier(
        name="slow",
        severity=Severity.TICKET,
        long_window=timedelta(days=3),
        short_window=timedelta(hours=6),
        budget_percent=Decimal(10),
        enabled=False,
        for_=timedelta(minutes=15),
        labels=(("team", "a"),),
    )


def test_exclusion_wall_times_are_read_in_their_time_zone() -> None:
    line = (
        'exclusions: [{start: "2026-07-01T02:00:00", end: "2026-07-01T03:00:00",'
        " timeZone: Europe/Berlin}]"
    )
    [exclusion] = load_one(document("objective: 99.9", SELECTOR, line)).exclusions
    assert exclusion.start == datetime(2026, 7, 1, 2, tzinfo=ZoneInfo("Europe/Berlin"))
    assert exclusion.start == datetime(2026, 7, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("spec_lines", "expected"),
    [
        pytest.param(
            ("objective: 100", SELECTOR),
            ["slo.yaml:5: spec.objective: must be between 0 and 100 (exclusive)"],
            id="objective-range",
        ),
        pytest.param(
            ("objective: high", SELECTOR),
            ["slo.yaml:5: spec.objective: 'high' is not a number"],
            id="objective-text",
        ),
        pytest.param(
            ("objectiv: 99.9", SELECTOR),
            [
                "slo.yaml:4: spec.objective: required",
                "slo.yaml:5: spec.objectiv: unknown field (did you mean 'objective'?)",
            ],
            id="misspelt-field",
        ),
        pytest.param(
            ("objective: 99.9", SELECTOR, "window: 30x"),
            [
                "slo.yaml:7: spec.window: invalid duration '30x': expected numbers with units"
                " w, d, h, m, s, largest first, like 30d, 1h30m or 5m"
            ],
            id="window-duration",
        ),
        pytest.param(
            ("objective: 99.9", SELECTOR, "window: {calendar: month, timeZone: Mars/Olympus}"),
            ["slo.yaml:7: spec.window.timeZone: unknown IANA time zone 'Mars/Olympus'"],
            id="time-zone",
        ),
        pytest.param(
            ("objective: 99.9", SELECTOR, "window: {calendar: fortnight}"),
            ["slo.yaml:7: spec.window.calendar: must be 'week', 'month' or 'quarter'"],
            id="calendar-unit",
        ),
        pytest.param(
            ("objective: 99.9", "sli: {requests: {routes: [checkout], methods: [FETCH]}}"),
            [
                "slo.yaml:6: spec.sli.requests.routes: route glob 'checkout' must start with '/'"
                " (or be '*')",
                "slo.yaml:6: spec.sli.requests.methods: unknown HTTP method(s): FETCH",
            ],
            id="selector",
        ),
        pytest.param(
            ("objective: 99.9", "sli: {requests: {good: 'status < 400'}}"),
            [
                "slo.yaml:6: spec.sli.requests.good: the embedded store counts availability as"
                " 'status < 500'; write that, or leave good out"
            ],
            id="good-rule",
        ),
        pytest.param(
            ("objective: 99.9", "sli: {requests: {latency: {threshold_ms: 0}}}"),
            ["slo.yaml:6: spec.sli.requests.latency.threshold_ms: must be greater than 0"],
            id="latency-threshold",
        ),
        pytest.param(
            ("objective: 99.9", "sli: {requests: {}, ratio: {good: g, total: t}}"),
            ["slo.yaml:6: spec.sli: needs exactly one of requests, ratio or threshold"],
            id="two-slis",
        ),
        pytest.param(
            ("objective: 99.9", "sli: {ratio: {good: g, bad: b, total: t}}", "source: prometheus"),
            ["slo.yaml:6: spec.sli.ratio: a ratio needs total and exactly one of good or bad"],
            id="ratio-parts",
        ),
        pytest.param(
            ("objective: 99.9", SELECTOR, "budgeting: {timeslices: {slice: 5m, target: 1.5}}"),
            [
                "slo.yaml:7: spec.budgeting.timeslices.target: must be in (0, 1]: the share of"
                " good events a good slice needs"
            ],
            id="slice-target",
        ),
        pytest.param(
            ("objective: 99.9", SELECTOR, "budgeting: weekly"),
            [
                "slo.yaml:7: spec.budgeting: must be occurrences, {timeslices: {...}} or"
                " {ratioTimeslices: {...}}"
            ],
            id="budgeting-method",
        ),
        pytest.param(
            (
                "objective: 99.9",
                SELECTOR,
                "alerting:",
                "  tiers:",
                "    - {name: a, severity: pager, budgetPercent: 2, longWindow: 1h}",
                "    - {name: b, severity: page, burnRate: 2, budgetPercent: 2, longWindow: 1h}",
                "    - {name: c, severity: page, burnRate: 2, longWindow: 1h, shortWindow: 2h}",
            ),
            [
                "slo.yaml:9: spec.alerting.tiers[0].severity: must be 'page' or 'ticket'",
                "slo.yaml:10: spec.alerting.tiers[1]: needs exactly one of budgetPercent or"
                " burnRate",
                "slo.yaml:11: spec.alerting.tiers[2]: shortWindow must be shorter than longWindow",
            ],
            id="tiers",
        ),
        pytest.param(
            (
                "objective: 99.9",
                SELECTOR,
                "alerting: {tiers: [{name: a, severity: page, burnRate: 2, longWindow: 1h},"
                " {name: a, severity: page, burnRate: 3, longWindow: 1h}]}",
            ),
            ["slo.yaml:7: spec.alerting.tiers: tier names must be unique"],
            id="tier-names",
        ),
        pytest.param(
            (
                "objective: 99.9",
                SELECTOR,
                "exclusions:",
                "  - {start: 2026-11-01T04:00:00Z, end: 2026-11-01T02:00:00Z}",
                "  - {start: '2026-11-01T02:00:00', end: '2026-11-01T04:00:00'}",
            ),
            [
                "slo.yaml:8: spec.exclusions[0]: end must be after start",
                "slo.yaml:9: spec.exclusions[1]: start and end need a UTC offset or a time zone",
            ],
            id="exclusions",
        ),
        pytest.param(
            ("objective: 99.9", "sli: {ratio: {good: g, total: t}}"),
            [
                "slo.yaml:6: spec.sli: the embedded store (the default source) records request"
                " SLIs only"
            ],
            id="ratio-in-store",
        ),
    ],
)
def test_invalid_documents_name_line_and_field(
    spec_lines: tuple[str, ...], expected: list[str]
) -> None:
    assert problems(document(*spec_lines)) == expected


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            "name: checkout",
            "name: Checkout",
            "slo.yaml:3: metadata.name: must be 1-64 lowercase letters, digits, '-', '_' or '.',"
            " starting and ending with a letter or digit",
            id="name",
        ),
        pytest.param(
            "kind: SLO",
            "kind: Alert",
            "slo.yaml:2: kind: must be SLO (apiVersion sloguard.dev/v1 has no kind 'Alert')",
            id="kind",
        ),
        pytest.param(", service: shop", "", "slo.yaml:3: metadata.service: required", id="service"),
    ],
)
def test_invalid_headers_name_line_and_field(old: str, new: str, expected: str) -> None:
    text = document("objective: 99.9", SELECTOR).replace(old, new)
    assert problems(text) == [expected]


def test_to_selector_gives_the_recorder_request_slos_only() -> None:
    latency = load_one(
        document("objective: 99.5", "sli: {requests: {routes: [/a], latency: {threshold_ms: 300}}}")
    )
    assert to_selector(latency) == SLOSpec(
        name="checkout", kind=SLOKind.LATENCY, objective=99.5, routes=("/a",), threshold_ms=300.0
    )
    ratio = load_one(
        document("objective: 99", "sli: {ratio: {good: g, total: t}}", "source: prometheus")
    )
    assert to_selector(ratio) is None


def test_to_selector_keeps_an_objective_a_float_would_round_to_100_valid() -> None:
    definition = load_one(document("objective: 99.99999999999999999", SELECTOR))
    selector = to_selector(definition)
    assert selector is not None
    assert 99.99 < selector.objective < 100


whole_seconds = st.integers(min_value=0, max_value=10**9).map(lambda s: timedelta(seconds=s))


@given(whole_seconds)
def test_formatted_durations_parse_back_to_the_same_length(length: timedelta) -> None:
    assert parse_duration(format_duration(length)) == length


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=5, max_size=5))
def test_a_duration_is_the_sum_of_its_parts(counts: list[int]) -> None:
    w, d, h, m, s = counts
    text = f"{w}w{d}d{h}h{m}m{s}s"
    assert parse_duration(text) == timedelta(weeks=w, days=d, hours=h, minutes=m, seconds=s)


def parsed(text: str) -> timedelta | str:
    try:
        return parse_duration(text)
    except ValueError as exc:
        return str(exc)


@given(st.text(alphabet="0123456789wdhms xM.-", max_size=12))
def test_duration_parsing_gives_a_canonical_length_or_says_why(text: str) -> None:
    result = parsed(text)
    if isinstance(result, str):
        assert result.startswith(f"invalid duration {text!r}")
    else:
        assert parse_duration(format_duration(result)) == result


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("30d", 30 * 86400, id="days"),
        pytest.param("1h30m", 5400, id="compound"),
        pytest.param("5m", 300, id="minutes"),
        pytest.param("2w", 14 * 86400, id="weeks"),
        pytest.param("0", 0, id="zero"),
    ],
)
def test_durations_read_like_prometheus(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["30m1h", "1.5h", "1M", "", "5", "1h 30m", "-5m"])
def test_durations_out_of_order_or_unitless_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)
