"""Declarative unit tests for SLO specs, runnable in CI (``sloguard slo test FILE``).

A spec is code that pages people, so it gets tests: a test file names a spec
file and lists cases, each a synthetic series described as segments of
traffic (``{minutes: 60, error_ratio: 0.001}`` at ``rate`` events a minute)
and what the spec must make of it at the end of the series: the SLI, the
remaining budget (share of the budget, ``1`` = untouched), and exactly which
tiers fire and when (an offset from the series start, within a tolerance)::

    spec: ../checkout.yaml          # relative to the test file
    start: "2026-10-01T00:00:00Z"   # where series begin (default 2026-01-05 00:00 UTC)
    cases:
      - name: a 10-minute 15% outage pages within 6 minutes
        slo: checkout-availability
        rate: 1000
        series: [{minutes: 4320, error_ratio: 0}, {minutes: 10, error_ratio: 0.15}]
        expect:
          fires: [{tier: page-1h, at: 4326m, within: 1m}]

Tiers not listed under ``fires`` must stay silent; ``fires`` left out is not
checked. ``sli`` and ``remaining`` compare within ``tolerance`` (default 0).

Exceptions::

    SpecTestError   the test file (or the spec it names) is unreadable or invalid
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from sloguard.slo._backtest import _period
from sloguard.slo._engine import engine_tiers, engine_window, evaluate
from sloguard.slo._history import scan_history
from sloguard.slo._model import SLODefinition, parse_duration
from sloguard.slo._simulate import Segment, segments_series
from sloguard.slo._specload import SpecError, load_slo_files
from sloguard.slo._windows import Exclusions, MaintenanceWindow, SeriesIndex, to_minute

__all__ = ["CaseResult", "SpecTestError", "run_test_file"]

DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)


class SpecTestError(ValueError):
    """A test file that cannot be run: bad YAML, bad fields, a missing spec or SLO."""


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    return parse_duration(str(value))


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Segment(_Strict):
    minutes: int = Field(ge=0)
    error_ratio: Decimal = Field(ge=0, le=1)


class _Fire(_Strict):
    tier: str
    at: Duration | None = None
    within: Duration = timedelta(minutes=1)


class _Expect(_Strict):
    sli: Decimal | None = None
    remaining: Decimal | None = None
    tolerance: Decimal = Field(default=Decimal(0), ge=0)
    fires: list[_Fire] | None = None


class _Case(_Strict):
    name: str
    slo: str
    rate: int = Field(default=1000, gt=0)
    series: list[_Segment] = Field(min_length=1)
    expect: _Expect


class _TestFile(_Strict):
    spec: str
    start: datetime = DEFAULT_START
    cases: list[_Case] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One case: passed when ``failures`` is empty."""

    name: str
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def _close(label: str, got: Fraction | None, want: Decimal, tolerance: Decimal) -> list[str]:
    if got is None:
        return [f"{label}: expected {want}, got no data"]
    if abs(got - Fraction(want)) > Fraction(tolerance):
        return [f"{label}: expected {want} ± {tolerance}, got {float(got):.6f}"]
    return []


def _run_case(case: _Case, definitions: dict[str, SLODefinition], start: int) -> CaseResult:
    definition = definitions.get(case.slo)
    if definition is None:
        raise SpecTestError(f"case {case.name!r}: no SLO named {case.slo!r} in the spec")
    segments = [Segment(s.minutes, Fraction(s.error_ratio)) for s in case.series]
    series = segments_series(segments, case.rate, start)
    end = start + sum(s.minutes for s in segments)
    status = evaluate(definition, series, datetime.fromtimestamp(end * 60, UTC))
    want, failures = case.expect, []
    if want.sli is not None:
        failures += _close("sli", status.report.sli, want.sli, want.tolerance)
    if want.remaining is not None:
        failures += _close("remaining", status.report.remaining, want.remaining, want.tolerance)
    if want.fires is not None:
        failures += _check_fires(definition, series, start, end, want.fires)
    return CaseResult(case.name, tuple(failures))


def _check_fires(
    definition: SLODefinition,
    series: list[tuple[int, int, int]],
    start: int,
    end: int,
    fires: list[_Fire],
) -> list[str]:
    window = engine_window(definition.window)
    period = _period(window, start)
    exclusions = Exclusions.of(
        MaintenanceWindow(e.start, e.end, e.reason) for e in definition.exclusions
    )
    tiers = engine_tiers(definition.alerting, period)
    histories = scan_history(
        SeriesIndex(series, exclusions), tiers, definition.target, period, start, end
    )
    first = {h.tier.name: h.intervals[0].start - start for h in histories if h.intervals}
    known = {h.tier.name for h in histories}
    failures = []
    expected = {f.tier for f in fires}
    for fire in fires:
        if fire.tier not in known:
            raise SpecTestError(f"no tier named {fire.tier!r} in SLO {definition.name!r}")
        if fire.tier not in first:
            failures.append(f"tier {fire.tier} never fired")
            continue
        if fire.at is not None:
            got = timedelta(minutes=first[fire.tier])
            if abs(got - fire.at) > fire.within:
                failures.append(
                    f"tier {fire.tier} fired at +{got}, expected +{fire.at} ± {fire.within}"
                )
    failures.extend(
        f"tier {name} fired at +{timedelta(minutes=first[name])}, expected silence"
        for name in sorted(set(first) - expected)
    )
    return failures


def run_test_file(path: Path) -> list[CaseResult]:
    """Run every case of the test file at ``path``; SpecTestError for bad input."""
    try:
        raw = yaml.safe_load(path.read_text())
        parsed = _TestFile.model_validate(raw)
    except (OSError, yaml.YAMLError) as exc:
        raise SpecTestError(f"{path}: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise SpecTestError(f"{path}: {problems}") from None
    try:
        loaded = load_slo_files([path.parent / parsed.spec])
    except SpecError as exc:
        raise SpecTestError(f"{path}: spec {parsed.spec}: {exc}") from exc
    definitions = {d.name: d for d in loaded}
    start = to_minute(parsed.start)
    try:
        return [_run_case(case, definitions, start) for case in parsed.cases]
    except SpecTestError as exc:
        raise SpecTestError(f"{path}: {exc}") from None
