"""``inject.trace`` and ``inject.tasks``: import-time function tracing and asyncio task tracking."""

from __future__ import annotations

from pydantic import Field, field_validator

from sloguard.settings._base import _Section

__all__ = ["TaskSettings", "TraceSettings"]


class TraceSettings(_Section):
    #: ``module_glob:qualname_glob`` selectors (see ``sloguard.inject._selectors``).
    selectors: tuple[str, ...] = ()
    #: Calls faster than this get no span (0: every call gets one).
    min_duration_ms: float = Field(default=0.0, ge=0.0)
    #: Raise each function's cut to a running estimate of its own ``quantile``.
    adaptive: bool = False
    quantile: float = Field(default=0.99, gt=0.0, lt=1.0)

    @field_validator("selectors")
    @classmethod
    def _parse_selectors(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        # Imported here: the parser is stdlib-only, but sloguard.inject must not be
        # imported while sloguard.settings itself is still loading.
        from sloguard.inject._selectors import parse_selector

        return tuple(parse_selector(value).text for value in values)


class TaskSettings(_Section):
    enabled: bool = False
    #: A task step that holds the event loop longer than this is logged with its stack.
    slow_step_ms: float = Field(default=100.0, gt=0.0)
    #: Coroutine names kept as metric labels; later names are counted as ``other``.
    max_coroutine_names: int = Field(default=200, ge=1)
    #: At most one slow-step log line per coroutine name per this many seconds.
    slow_step_log_interval_s: float = Field(default=1.0, ge=0.0)
