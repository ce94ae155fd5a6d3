"""``sloguard slo backtest|simulate|test|attribution``: try a spec before it pages anyone.

Command functions only; the root app registers them under ``sloguard slo``.
Exit codes: 0 fine, 1 a spec test failed, 2 bad input.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from sloguard.slo._backtest import (
    BacktestResult,
    HistoryFileError,
    backtest,
    compare,
    history_start,
    load_history,
)
from sloguard.slo._budget import as_decimal
from sloguard.slo._engine import select
from sloguard.slo._model import SLODefinition, parse_duration
from sloguard.slo._specload import SpecError, load_slo_files

__all__ = ["attribution", "backtest_command", "simulate_command", "spec_tests"]

JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
StoreOpt = Annotated[Path | None, typer.Option(help="SLI store (default sli.store_path).")]
ConfigOpt = Annotated[Path | None, typer.Option(help="Settings file.")]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _minute(text: str) -> int:
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        _fail(f"not an ISO 8601 time: {text!r}")
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return int(at.timestamp()) // 60


def _one(paths: list[Path], slo: str | None) -> SLODefinition:
    try:
        found = load_slo_files(paths)
        chosen = select(found, [slo] if slo else [])
    except SpecError as exc:
        _fail(str(exc))
    except KeyError as exc:
        _fail(f"unknown SLO: {exc.args[0]}")
    if len(chosen) != 1:
        _fail(f"{len(chosen)} SLOs in {', '.join(map(str, paths))}: pick one with --slo")
    return chosen[0]


def _store_path(store: Path | None, config: Path | None) -> Path:
    if store is not None:
        return store
    from sloguard.settings import ConfigError, load_settings

    try:
        return load_settings(config).sli.store_path
    except ConfigError as exc:
        _fail(str(exc))


def _history(
    definition: SLODefinition,
    file: Path | None,
    store: Path | None,
    config: Path | None,
    start: int,
    end: int,
) -> list[tuple[int, int, int]]:
    if file is not None:
        try:
            return load_history(file)
        except HistoryFileError as exc:
            _fail(str(exc))
    from sloguard.store import SQLiteStore, StoreError

    try:
        with SQLiteStore(_store_path(store, config)) as db:
            return db.series(definition.name, history_start(definition, start), end)
    except StoreError as exc:
        _fail(str(exc))


def _run(
    definition: SLODefinition, series: list[tuple[int, int, int]], start: int, end: int
) -> BacktestResult:
    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"backtest {definition.name}", total=4)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return backtest(definition, series, start, end, progress=advance)


def _minutes(value: int | None) -> str:
    return "-" if value is None else f"{value} min"


def _print_backtest(result: BacktestResult) -> None:
    console = Console()
    console.print(f"[bold]{result.slo}[/bold]: {result.pages} pages, {result.tickets} tickets")
    tiers = Table("tier", "severity", "firings", "minutes firing")
    for h in result.tiers:
        tiers.add_row(
            h.tier.name,
            str(h.tier.severity),
            str(len(h.intervals)),
            str(sum(i.end - i.start for i in h.intervals)),
        )
    console.print(tiers)
    incidents = Table("incident start (UTC)", "minutes", "bad/total", "detection / reset per tier")
    for inc, timings in result.incidents:
        began = datetime.fromtimestamp(inc.start * 60, UTC).isoformat(timespec="minutes")
        cells = ", ".join(f"{t.tier} {_minutes(t.detection)}/{_minutes(t.reset)}" for t in timings)
        incidents.add_row(began, str(inc.end - inc.start), f"{inc.bad}/{inc.total}", cells)
    console.print(incidents)
    periods = Table("period start (UTC)", "SLI %", "budget left %", "good/total")
    for p in result.periods:
        periods.add_row(
            datetime.fromtimestamp(p.span.start * 60, UTC).date().isoformat(),
            "no data" if p.sli is None else str(as_decimal(p.sli * 100, 4)),
            "-" if p.remaining is None else str(as_decimal(p.remaining * 100, 2)),
            f"{p.good}/{p.total}",
        )
    console.print(periods)


def backtest_command(
    spec: Annotated[list[Path], typer.Argument(help="Spec files or directories.")],
    slo: Annotated[str | None, typer.Option(help="SLO name (when the specs hold several).")] = None,
    against: Annotated[
        list[Path] | None, typer.Option("--compare", help="A second spec to compare with.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option(help="CSV/JSON history instead of the store.")
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    start: Annotated[str | None, typer.Option(help="ISO start (default: 30 days ago).")] = None,
    end: Annotated[str | None, typer.Option(help="ISO end (default: now).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Replay history through a spec: pages, tickets, detection/reset per incident, budgets."""
    definition = _one(spec, slo)
    other = _one(against, slo) if against else None
    last = _minute(end) if end else int(datetime.now(UTC).timestamp()) // 60
    first = _minute(start) if start else last - 30 * 24 * 60
    series = _history(definition, file, store, config, first, last)
    if file is not None and series and not start and not end:
        first, last = series[0][0], series[-1][0] + 1
    if last <= first:
        _fail("the backtest needs start < end")
    results = [_run(d, series, first, last) for d in (definition, other) if d is not None]
    if as_json:
        payload: dict[str, Any] = {"results": [r.as_dict() for r in results]}
        if len(results) == 2:
            payload["comparison"] = compare(*results)
        typer.echo(json.dumps(payload, indent=2))
        return
    for result in results:
        _print_backtest(result)
    if len(results) == 2:
        table = Table("", "A", "B")
        diff = compare(*results)
        for key in ("pages", "tickets"):
            table.add_row(key, str(diff["a"][key]), str(diff["b"][key]))
        table.add_row("missed incidents", str(diff["missed"]["a"]), str(diff["missed"]["b"]))
        Console().print(table)


def simulate_command(
    shape: Annotated[str, typer.Argument(help="step, spikes or drift.")] = "step",
    error_ratio: Annotated[str, typer.Option(help="Error ratio of the incident (0..1).")] = "0.15",
    duration: Annotated[str, typer.Option(help="Outage, spike or drift length.")] = "10m",
    every: Annotated[str, typer.Option(help="Spike period.")] = "30m",
    count: Annotated[int, typer.Option(help="Number of spikes.")] = 5,
    rate: Annotated[int, typer.Option(help="Events per minute.")] = 1000,
    objective: Annotated[str, typer.Option(help="Objective percent.")] = "99.9",
    period: Annotated[str, typer.Option(help="SLO period.")] = "30d",
    spec: Annotated[list[Path] | None, typer.Option(help="Take the tiers from a spec.")] = None,
    slo: Annotated[str | None, typer.Option(help="SLO name in --spec.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Detection and reset time per tier for a step outage, periodic spikes or a slow drift."""
    from sloguard.slo._alerting import DEFAULT_TIERS, BurnRateTier
    from sloguard.slo._engine import engine_tiers
    from sloguard.slo._simulate import periodic_spikes, simulate, slow_drift, step_outage

    try:
        ratio = Fraction(Decimal(error_ratio))
        length, spacing = parse_duration(duration), parse_duration(every)
        target, span = Fraction(Decimal(objective)) / 100, parse_duration(period)
        if shape == "step":
            scenario = step_outage(ratio, length)
        elif shape == "spikes":
            scenario = periodic_spikes(ratio, length, spacing, count)
        elif shape == "drift":
            scenario = slow_drift(Fraction(0), ratio, length)
        else:
            _fail(f"unknown shape {shape!r}: step, spikes or drift")
        tiers: tuple[BurnRateTier, ...] = DEFAULT_TIERS
        if spec:
            definition = _one(spec, slo)
            target = definition.target
            tiers = engine_tiers(definition.alerting, span)
        result = simulate(scenario, tiers, target, span, rate=rate)
    except (ValueError, ArithmeticError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2))
        return
    table = Table("tier", "severity", "detection", "reset", title=scenario.name)
    for t in result.timings:
        table.add_row(t.tier, str(t.severity), _minutes(t.detection), _minutes(t.reset))
    Console().print(table)


def spec_tests(
    file: Annotated[Path, typer.Argument(help="A spec test file (YAML).")],
    as_json: JsonOpt = False,
) -> None:
    """Run declarative spec tests; exit 1 when a case fails, 2 on bad input."""
    from sloguard.slo._spectest import SpecTestError, run_test_file

    try:
        results = run_test_file(file)
    except SpecTestError as exc:
        _fail(str(exc))
    if as_json:
        rows = [{"name": r.name, "passed": r.passed, "failures": list(r.failures)} for r in results]
        typer.echo(json.dumps({"cases": rows}, indent=2))
    else:
        console = Console(soft_wrap=True)
        for r in results:
            mark = "[green]PASS[/green]" if r.passed else "[red]FAIL[/red]"
            console.print(f"{mark} {r.name}", highlight=False)
            for failure in r.failures:
                console.print(f"     {failure}", highlight=False)
        failed = sum(1 for r in results if not r.passed)
        console.print(f"{len(results) - failed} passed, {failed} failed")
    if any(not r.passed for r in results):
        raise typer.Exit(1)


def attribution(
    slo: Annotated[str, typer.Argument(help="SLO name.")],
    window: Annotated[str, typer.Option(help="How far back from --end.")] = "1d",
    end: Annotated[str | None, typer.Option(help="ISO end (default: now).")] = None,
    top: Annotated[int, typer.Option(min=1, help="Values per dimension.")] = 5,
    by: Annotated[
        list[str] | None, typer.Option(help="route, status_class, error_code (repeat).")
    ] = None,
    objective: Annotated[
        str | None, typer.Option(help="Objective percent (budget shares).")
    ] = None,
    store: StoreOpt = None,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Which routes, status classes and error codes spent the budget in a window."""
    from sloguard.slo._attribution import attribute
    from sloguard.store import DIMENSIONS, SQLiteStore, StoreError

    dims = by or list(DIMENSIONS)
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        _fail(f"unknown dimension {unknown[0]!r}: one of {', '.join(DIMENSIONS)}")
    try:
        last = _minute(end) if end else int(datetime.now(UTC).timestamp()) // 60
        first = last - parse_duration(window) // timedelta(minutes=1)
        target = None if objective is None else Fraction(Decimal(objective)) / 100
        with SQLiteStore(_store_path(store, config)) as db:
            found = attribute(
                db,
                slo,
                first,
                last,
                dimensions=[d for d in DIMENSIONS if d in dims],
                top=top,
                objective=target,
            )
    except (StoreError, ValueError, ArithmeticError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps([a.as_dict() for a in found], indent=2))
        return
    console = Console()
    for a in found:
        table = Table(
            a.dimension,
            "bad",
            "total",
            "share of bad %",
            "budget %",
            title=f"{slo}: {a.bad} bad of {a.total}",
        )
        for c in a.contributors:
            table.add_row(
                c.value or "(none)",
                str(c.bad),
                str(c.total),
                str(as_decimal(c.share * 100, 2)),
                "-" if c.budget_share is None else str(as_decimal(c.budget_share * 100, 2)),
            )
        console.print(table)
