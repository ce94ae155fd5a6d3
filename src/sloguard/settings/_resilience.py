"""The ``resilience`` section: circuit breakers, rate limits, load shedding."""

from __future__ import annotations

from sloguard.settings._base import _Section

__all__ = ["ResilienceSettings"]


class ResilienceSettings(_Section):
    enabled: bool = False
