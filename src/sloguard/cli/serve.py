"""``sloguard serve``: evaluate every SLO on an interval; JSON API, metrics and alert delivery."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["serve"]


def serve(
    spec: Annotated[
        list[Path] | None, typer.Option(help="SLO spec files/dirs (default: the settings' SLOs).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Settings file.")] = None,
    store: Annotated[Path | None, typer.Option(help="SLI store (default sli.store_path).")] = None,
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Listen port.")] = 9464,
    interval: Annotated[float, typer.Option(help="Seconds between evaluations.")] = 30.0,
    webhook: Annotated[
        list[str] | None, typer.Option(help="JSON webhook URL for alerts (repeat).")
    ] = None,
    alertmanager: Annotated[
        list[str] | None, typer.Option(help="Alertmanager base URL (repeat).")
    ] = None,
    min_events: Annotated[int, typer.Option(help="Fewest events an SLI needs.")] = 1,
) -> None:
    """Evaluate SLOs every --interval; serve /api/slos, /api/slos/{name} and /metrics."""
    import uvicorn

    from sloguard.cli._slo_source import definitions
    from sloguard.settings import ConfigError, load_settings
    from sloguard.slo._alertstore import AlertStore, AlertStoreError
    from sloguard.slo._delivery import AlertmanagerNotifier, Notifier, WebhookNotifier
    from sloguard.slo._service import SLOService
    from sloguard.slo._specload import SpecError
    from sloguard.store import SQLiteStore, StoreError
    from sloguard.web import create_app

    if interval <= 0:
        typer.echo("error: --interval must be positive", err=True)
        raise typer.Exit(2)
    try:
        settings = load_settings(config)
        chosen = definitions(settings, spec or [], [])
        path = store or settings.sli.store_path
        sli_store = SQLiteStore(path)
        alert_store = AlertStore(path)
    except (ConfigError, SpecError, StoreError, AlertStoreError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    every = timedelta(seconds=interval)
    notifiers: list[Notifier] = [WebhookNotifier(url) for url in webhook or []]
    notifiers += [AlertmanagerNotifier(url, valid_for=4 * every) for url in alertmanager or []]
    service = SLOService(
        chosen,
        sli_store,
        alert_store,
        notifiers,
        min_events=min_events,
        generator_url=f"http://{host}:{port}",
    )
    try:
        uvicorn.run(create_app(service, interval=every), host=host, port=port, log_level="info")
    finally:
        alert_store.close()
        sli_store.close()
