"""sloguard: keep a Python web service inside its service level objectives.

The public surface is what this module exports (``__all__``); everything in
``_private`` modules may change without notice. ``tests/test_exported_members.py``
keeps this list honest.
"""

__version__ = "0.1.0"

# Imported on first use, so ``import sloguard`` (and the ``sloguard run``
# bootstrap, which imports it in every process) loads nothing the
# application does not use: no httpx, no asyncio servers, no Redis.
from typing import TYPE_CHECKING

from sloguard._lazy import lazy_attributes as _lazy_attributes

if TYPE_CHECKING:
    from sloguard.asgi import Guard, WSGIGuard, guard, guard_wsgi  # type: ignore[no-redef]
    from sloguard.context import (
        ContextThreadPoolExecutor,
        RequestContext,
        current_request,
        propagate_context_to_threads,
        run_in_executor,
    )
    from sloguard.errors import SloguardHTTPError
    from sloguard.settings import ConfigError, Settings, load_settings
    from sloguard.slo import SLOKind, SLOSpec
    from sloguard.telemetry import (
        AsyncTracedTransport,
        JsonFormatter,
        MissingExtraError,
        TracedTransport,
        instrument_httpx,
        uninstrument_httpx,
    )

__all__ = [
    "AsyncTracedTransport",
    "ConfigError",
    "ContextThreadPoolExecutor",
    "Guard",
    "JsonFormatter",
    "MissingExtraError",
    "RequestContext",
    "SLOKind",
    "SLOSpec",
    "Settings",
    "SloguardHTTPError",
    "TracedTransport",
    "WSGIGuard",
    "__version__",
    "current_request",
    "guard",
    "guard_wsgi",
    "instrument_httpx",
    "load_settings",
    "propagate_context_to_threads",
    "run_in_executor",
    "uninstrument_httpx",
]

_LAZY = {
    "AsyncTracedTransport": "sloguard.telemetry",
    "ConfigError": "sloguard.settings",
    "ContextThreadPoolExecutor": "sloguard.context",
    "Guard": "sloguard.asgi",
    "JsonFormatter": "sloguard.telemetry",
    "MissingExtraError": "sloguard.telemetry",
    "RequestContext": "sloguard.context",
    "SLOKind": "sloguard.slo",
    "SLOSpec": "sloguard.slo",
    "Settings": "sloguard.settings",
    "SloguardHTTPError": "sloguard.errors",
    "TracedTransport": "sloguard.telemetry",
    "WSGIGuard": "sloguard.asgi",
    "current_request": "sloguard.context",
    "guard": "sloguard.asgi",
    "guard_wsgi": "sloguard.asgi",
    "instrument_httpx": "sloguard.telemetry",
    "load_settings": "sloguard.settings",
    "propagate_context_to_threads": "sloguard.context",
    "run_in_executor": "sloguard.context",
    "uninstrument_httpx": "sloguard.telemetry",
}


__getattr__ = _lazy_attributes(__name__, _LAZY)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
