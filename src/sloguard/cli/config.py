"""``sloguard config …``: check and show the settings in force."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from sloguard.settings import ConfigError, load_settings

__all__ = ["app"]

app = typer.Typer(
    help="Check and show sloguard.yaml and SLOGUARD_* settings.", no_args_is_help=True
)

PathArg = Annotated[
    Path | None,
    typer.Argument(help="Settings file (default: $SLOGUARD_CONFIG, else ./sloguard.yaml)."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@app.command("check")
def check(path: PathArg = None, as_json: JsonOpt = False) -> None:
    """Validate the settings; exit 2 with file, line and field on an error."""
    console = Console(stderr=True, soft_wrap=True)
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        if as_json:
            problems = [{"where": w, "field": f, "message": m} for w, f, m in exc.problems]
            typer.echo(json.dumps({"valid": False, "problems": problems}))
        else:
            for where, field, message in exc.problems:
                console.print(
                    f"[red]error[/red] {where}: [bold]{field}[/bold]: {message}", highlight=False
                )
        raise typer.Exit(2) from None
    slos = [slo.name for slo in settings.sli.slos]
    if as_json:
        typer.echo(json.dumps({"valid": True, "service": settings.service.name, "slos": slos}))
    else:
        Console().print(
            f"[green]ok[/green] settings valid (service {settings.service.name!r}, "
            f"{len(slos)} SLO{'s' if len(slos) != 1 else ''})",
            highlight=False,
        )


@app.command("show")
def show(path: PathArg = None) -> None:
    """Print the settings in force (file + environment + defaults) as JSON."""
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    typer.echo(settings.model_dump_json(indent=2))
