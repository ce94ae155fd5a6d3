"""``sloguard demo``: the guarded shop under load, watched live (the main job)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sloguard.settings import ConfigError

__all__ = ["demo"]


def demo(
    duration: Annotated[
        float, typer.Option(help="Seconds to run; 0 runs until Ctrl-C.", min=0)
    ] = 0.0,
    rps: Annotated[float, typer.Option(help="Requests per second the load driver sends.")] = 20.0,
    host: Annotated[str, typer.Option(help="Address to serve the shop on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve the shop on (0: a free one).")] = 8000,
    store: Annotated[Path, typer.Option(help="SQLite file for SLI buckets.")] = Path(
        ".sloguard/demo.db"
    ),
    error_rate: Annotated[float, typer.Option(help="Share of checkouts that fail (0-1).")] = 0.02,
    slow_rate: Annotated[float, typer.Option(help="Share of searches that are slow (0-1).")] = 0.05,
    config: Annotated[
        Path | None, typer.Option(help="Settings file (default ./sloguard.yaml if present).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed for a repeatable run.")] = None,
) -> None:
    """Serve a sample shop guarded by sloguard, drive load at it, show RED and SLOs live."""
    from sloguard.demo import DemoError, run_demo

    try:
        result = run_demo(
            duration=duration,
            rps=rps,
            port=port,
            host=host,
            store=store,
            error_rate=error_rate,
            slow_rate=slow_rate,
            config=config,
            seed=seed,
        )
    except (DemoError, ConfigError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(result.exit_code)
