"""The protection layers of the guard, built from ``settings.resilience``.

Where each sits in the request flow (outermost first)::

    observe → shed → rate limits keyed without a principal → auth
            → rate limits keyed by principal or tenant → inbound breakers → app

Shedding comes first so an overloaded service refuses with the least work;
limits keyed by client IP, route or header run before auth so a flood of bad
tokens is limited too; limits keyed by principal or tenant need auth's answer
and run after it; breakers wrap the application itself.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from sloguard.asgi._breaker_layer import BreakerMiddleware, InboundBreakers
from sloguard.asgi._limit_layer import LimitMiddleware, RateLimits
from sloguard.asgi._shed_layer import ShedMiddleware, build_shedder, shedding_configured
from sloguard.asgi._types import ASGIApp
from sloguard.resilience._shedder import LoadShedder
from sloguard.settings._resilience import ResilienceSettings

__all__ = ["ResilienceLayer"]


class ResilienceLayer:
    """The protection parts for one guarded app; ``outer``/``inner`` wrap it."""

    def __init__(self, settings: ResilienceSettings, registry: CollectorRegistry) -> None:
        self.settings = settings
        self.registry = registry
        self.shedder: LoadShedder | None = (
            build_shedder(settings.shedding) if shedding_configured(settings.shedding) else None
        )
        self.breakers: InboundBreakers | None = (
            InboundBreakers(settings, registry) if settings.breakers else None
        )
        self.limits: RateLimits | None = (
            RateLimits(settings, registry) if settings.rate_limits else None
        )

    def inner(self, app: ASGIApp) -> ASGIApp:
        """The layers that run after auth (they may read the principal)."""
        if self.breakers is not None:
            app = BreakerMiddleware(app, self.breakers)
        if self.limits is not None and self.limits.after is not None:
            app = LimitMiddleware(app, self.limits, self.limits.after)
        return app

    def outer(self, app: ASGIApp) -> ASGIApp:
        """The layers that run before auth."""
        if self.limits is not None and self.limits.before is not None:
            app = LimitMiddleware(app, self.limits, self.limits.before)
        if self.shedder is not None:
            app = ShedMiddleware(app, self.shedder, self.settings.shedding, self.registry)
        return app

    async def aclose(self) -> None:
        if self.limits is not None:
            await self.limits.aclose()
        self.close()

    def close(self) -> None:
        if self.breakers is not None:
            self.breakers.close()
