"""The demo's settings: the user's ``sloguard.yaml`` with the demo's SLOs and store.

The demo runs with the settings a user already has (so ``sloguard demo``
shows their tracing, logging and metrics choices at work), changed only where
the demo needs it: its own SLOs unless the user wrote some, its own store,
and a flush interval short enough for the view to move.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sloguard.settings import MetricsSettings, Settings, load_settings
from sloguard.slo.spec import SLOKind, SLOSpec

__all__ = ["DEMO_PROTECTION", "DEMO_SLOS", "demo_settings"]

DEMO_SLOS = (
    SLOSpec(
        name="shop-availability",
        kind=SLOKind.AVAILABILITY,
        objective=99.5,
        description="Every shop request answers without a server error.",
    ),
    SLOSpec(
        name="checkout-latency",
        kind=SLOKind.LATENCY,
        # Checkouts take 50-400 ms, so about 14% miss 350 ms against a 10%
        # allowance: this SLO burns slowly in every run, on purpose.
        objective=90.0,
        threshold_ms=350,
        routes=("/checkout",),
        methods=("POST",),
        description="Nine checkouts in ten finish within 350 ms.",
    ),
    SLOSpec(
        name="catalog-latency",
        kind=SLOKind.LATENCY,
        objective=99.9,
        threshold_ms=100,
        routes=("/products", "/products/**"),
        methods=("GET",),
        description="Catalog pages answer within 100 ms.",
    ),
)


#: the protection the demo turns on unless the user's settings enable their own:
#: a breaker on the checkout (it trips when a run's ``--error-rate`` is high),
#: a per-client limit on searches (hit with a high ``--rps``), and shedding
#: that keeps the health check for last
DEMO_PROTECTION: dict[str, Any] = {
    "enabled": True,
    "breakers": [
        {
            "name": "checkout",
            "routes": ["/checkout"],
            "consecutive_failures": None,
            "failure_ratio": 0.5,
            "min_calls": 6,
            "window_s": 20,
            "open_s": 5,
            "half_open_probes": 2,
            "half_open_successes": 2,
        }
    ],
    "rate_limits": [
        {"name": "search-per-client", "key": "ip", "limit": 600, "routes": ["/search"]}
    ],
    "shedding": {
        "max_concurrency": 64,
        "priorities": {"/healthz": "critical", "/checkout": "high", "/search": "low"},
    },
}


def demo_settings(store: Path, config: Path | None = None) -> Settings:
    """The user's settings (``sloguard.yaml`` and ``SLOGUARD_*``) with the demo's SLI section.

    The demo's SLOs apply unless the user defined some; the store path and a
    1 s flush interval (so the view moves) always apply, and default latency
    buckets gain finer steps and one at each SLO threshold.
    """
    base = load_settings(config)
    sli: dict[str, Any] = {"enabled": True, "store_path": store, "flush_interval_s": 1.0}
    if not base.sli.slos:
        sli["slos"] = DEMO_SLOS
    metrics: dict[str, Any] = {"enabled": True}
    if base.metrics.duration_buckets == MetricsSettings().duration_buckets:
        # Finer buckets for the fast catalog, and one at each SLO threshold, so the
        # quantiles the view interpolates are sharp where the SLOs look.
        thresholds = (
            s.threshold_ms / 1000 for s in sli.get("slos", base.sli.slos) if s.threshold_ms
        )
        extra = (0.001, 0.0025, *thresholds)
        metrics["duration_buckets"] = tuple(sorted({*base.metrics.duration_buckets, *extra}))
    update: dict[str, Any] = {
        "sli": base.sli.model_copy(update=sli),
        "metrics": base.metrics.model_copy(update=metrics),
        # Access logs would scroll the live view away; the metrics tell the story.
        "logging": base.logging.model_copy(update={"access_log": False}),
    }
    if not base.resilience.enabled:
        update["resilience"] = base.resilience.model_validate(
            {**base.resilience.model_dump(), **DEMO_PROTECTION}
        )
    if base.service.name == "app":
        update["service"] = base.service.model_copy(update={"name": "shop"})
    return base.model_copy(update=update)
