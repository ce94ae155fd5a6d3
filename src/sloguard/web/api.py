"""``/api/slos``, ``/api/slos/{name}`` and ``/metrics`` over an SLO service's latest views.

The handlers only read the service's in-memory views (the budget history,
which reads the store, runs in a worker thread). Figures are exact decimal
strings, as ``sloguard slo status --json`` prints them. The Prometheus
collector labels by SLO, tier, severity and window only: a handful of series
per SLO, never per route or tenant.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

import anyio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sloguard.slo._budget import as_decimal
from sloguard.slo._model import RollingWindow, format_duration
from sloguard.slo._service import SLOService, SLOView, tier_burn_rates
from sloguard.slo.spec import SLOKind

__all__ = ["SLOCollector", "create_app"]


def _show(value: Fraction | None, places: int = 6) -> str | None:
    return None if value is None else str(as_decimal(value, places))


def _window(view: SLOView) -> str:
    window = view.definition.window
    if isinstance(window, RollingWindow):
        return f"rolling {format_duration(window.length)}"
    return f"calendar {window.unit} ({window.time_zone})"


def _sli(view: SLOView) -> str:
    kind = getattr(view.definition.sli, "kind", None)
    name = type(view.definition.sli).__name__
    return f"{name}:{kind}" if isinstance(kind, SLOKind) else name


def summary(view: SLOView) -> dict[str, Any]:
    report = view.status.report
    return {
        "name": view.definition.name,
        "service": view.definition.service,
        "objective": str(view.definition.objective),
        "window": _window(view),
        "sli_type": _sli(view),
        "evaluated_at": view.status.at.isoformat(),
        "data": str(report.status),
        "good": report.good,
        "total": report.total,
        "sli": _show(report.sli),
        "budget_remaining": _show(report.remaining),
        "burn_rate": _show(report.burn_rate, 4),
        "tiers": [
            {
                "name": t.result.tier.name,
                "severity": str(t.result.tier.severity),
                "threshold": _show(t.result.threshold, 4),
                "burn_rates": tier_burn_rates(t.result),
                "condition": t.result.condition,
                "reason": str(t.result.reason),
                "state": t.state.to_dict(),
            }
            for t in view.tiers
        ],
        "firing": [t.result.tier.name for t in view.tiers if t.firing],
    }


class SLOCollector(Collector):
    """Prometheus gauges of every SLO's latest evaluation."""

    def __init__(self, service: SLOService) -> None:
        self.service = service

    def collect(self) -> Iterator[Metric]:
        objective = GaugeMetricFamily(
            "sloguard_slo_objective", "SLO objective as a ratio.", labels=["slo"]
        )
        sli = GaugeMetricFamily("sloguard_slo_sli", "SLI over the SLO window.", labels=["slo"])
        remaining = GaugeMetricFamily(
            "sloguard_slo_budget_remaining", "Share of the error budget left.", labels=["slo"]
        )
        burn = GaugeMetricFamily(
            "sloguard_slo_burn_rate", "Burn rate over a tier window.", labels=["slo", "window"]
        )
        firing = GaugeMetricFamily(
            "sloguard_slo_alert_firing",
            "1 while the tier's alert fires.",
            labels=["slo", "tier", "severity"],
        )
        for view in self.service.views():
            name, report = view.definition.name, view.status.report
            objective.add_metric([name], float(view.definition.target))
            if report.sli is not None:
                sli.add_metric([name], float(report.sli))
            if report.remaining is not None:
                remaining.add_metric([name], float(report.remaining))
            windows: dict[str, float] = {}
            for tier in view.tiers:
                for window, rate in tier_burn_rates(tier.result).items():
                    windows[window] = float(rate)
                labels = [name, tier.result.tier.name, str(tier.result.tier.severity)]
                firing.add_metric(labels, 1.0 if tier.firing else 0.0)
            for window, value in sorted(windows.items()):
                burn.add_metric([name, window], value)
        yield from (objective, sli, remaining, burn, firing)


def create_app(
    service: SLOService,
    *,
    interval: timedelta | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Starlette:
    """The API over ``service``; with ``interval``, the app also runs its evaluation loop."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SLOCollector(service))

    async def list_slos(request: Request) -> JSONResponse:
        return JSONResponse([summary(v) for v in service.views()])

    async def one_slo(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        view = service.view(name)
        if view is None:
            known = name in service.definitions
            detail = "not evaluated yet" if known else "unknown SLO"
            return JSONResponse({"error": detail, "slo": name}, status_code=404)
        points = await anyio.to_thread.run_sync(service.history, name, view.status.at)
        body = summary(view)
        body["budget_history"] = [
            {"at": p.at.isoformat(), "remaining": _show(p.remaining)} for p in points
        ]
        return JSONResponse(body)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if interval is None:
            yield
            return
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: service.run(interval, clock=clock))
            yield
            group.cancel_scope.cancel()

    routes = [
        Route("/api/slos", list_slos),
        Route("/api/slos/{name}", one_slo),
        Route("/metrics", metrics),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
