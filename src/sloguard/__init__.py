"""sloguard: keep a Python web service inside its service level objectives.

The public surface is what this module exports (``__all__``); everything in
``_private`` modules may change without notice. ``tests/test_exported_members.py``
keeps this list honest.
"""

__version__ = "0.1.0"

from sloguard.asgi import Guard, WSGIGuard, guard, guard_wsgi
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
