"""``inject.probes``: live probes attached to a running process."""

from __future__ import annotations

from sloguard.settings._base import _Section

__all__ = ["ProbeSettings"]


class ProbeSettings(_Section):
    enabled: bool = True
