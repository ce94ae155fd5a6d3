"""``inject.trace`` and ``inject.tasks``: import-time function tracing and asyncio task tracking."""

from __future__ import annotations

from sloguard.settings._base import _Section

__all__ = ["TaskSettings", "TraceSettings"]


class TraceSettings(_Section):
    selectors: tuple[str, ...] = ()


class TaskSettings(_Section):
    enabled: bool = False
