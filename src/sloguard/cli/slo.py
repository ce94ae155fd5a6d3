"""``sloguard slo …``: validate SLO specs, and show their budgets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sloguard.slo._model import CalendarWindow, RollingWindow, format_duration
from sloguard.slo._specload import SpecError, load_slo_files, validate_paths

__all__ = ["app"]

app = typer.Typer(help="Validate SLO specs (native, OpenSLO v1, Sloth).", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@app.command("validate")
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Spec files or directories.")],
    as_json: JsonOpt = False,
) -> None:
    """Check every spec; exit 2 naming file, line and field for each problem."""
    problems = validate_paths(paths)
    if problems:
        if as_json:
            rows = [
                {"path": p.path, "line": p.line, "field": p.field, "message": p.message}
                for p in problems
            ]
            typer.echo(json.dumps({"valid": False, "problems": rows}))
        else:
            err = Console(stderr=True, soft_wrap=True)
            for problem in problems:
                err.print(f"[red]error[/red] {problem}", highlight=False)
        raise typer.Exit(2)
    try:
        definitions = load_slo_files(paths)
    except SpecError as exc:  # pragma: no cover - validate_paths found nothing
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if as_json:
        names = [d.name for d in definitions]
        typer.echo(json.dumps({"valid": True, "slos": names}))
        return
    table = Table("SLO", "service", "objective", "window", "budgeting", "origin")
    for d in definitions:
        table.add_row(
            d.name,
            d.service or "-",
            f"{d.objective}%",
            describe_window(d.window),
            str(d.budgeting.method),
            d.origin or "-",
        )
    Console().print(table)


def describe_window(window: RollingWindow | CalendarWindow) -> str:
    if isinstance(window, RollingWindow):
        return f"rolling {format_duration(window.length)}"
    return f"calendar {window.unit} ({window.time_zone})"


@app.command("status")
def status(
    slo: Annotated[list[str] | None, typer.Option("--slo", help="SLO name (repeat).")] = None,
    spec: Annotated[
        list[Path] | None, typer.Option(help="SLO spec files/dirs (default: the settings' SLOs).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Settings file.")] = None,
    store: Annotated[Path | None, typer.Option(help="SLI store (default sli.store_path).")] = None,
    prometheus: Annotated[
        str | None, typer.Option(help="Read the SLIs from this Prometheus instead of the store.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """SLI, budget, burn rate and firing tiers of each SLO, from the store or Prometheus."""
    from datetime import UTC, datetime

    from sloguard.cli._slo_source import definitions, statuses
    from sloguard.settings import ConfigError, load_settings
    from sloguard.slo._budget import as_decimal
    from sloguard.slo._prometheus import SourceError
    from sloguard.store import StoreError

    try:
        settings = load_settings(config)
        chosen = definitions(settings, spec or [], slo or [])
        results = statuses(
            chosen, store or settings.sli.store_path, datetime.now(UTC), prometheus=prometheus
        )
    except (ConfigError, SpecError, StoreError, SourceError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyError as exc:
        typer.echo(f"error: unknown SLO: {exc.args[0]}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        payload = [
            {
                "slo": s.definition.name,
                "report": s.report.as_dict(),
                "tiers": [
                    {"name": t.tier.name, "severity": str(t.tier.severity), "firing": t.condition}
                    for t in s.tiers
                ],
            }
            for s in results
        ]
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table("SLO", "objective", "window", "good/total", "SLI %", "budget left %", "firing")
    for s in results:
        report = s.report
        table.add_row(
            s.definition.name,
            f"{s.definition.objective}%",
            describe_window(s.definition.window),
            f"{report.good}/{report.total}",
            "no data" if report.sli is None else str(as_decimal(report.sli * 100, 4)),
            "-" if report.remaining is None else str(as_decimal(report.remaining * 100, 2)),
            ", ".join(t.tier.name for t in s.firing) or "-",
        )
    Console().print(table)
