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
