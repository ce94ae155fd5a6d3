"""Traces, metrics and logs: the observation half of sloguard.

* :mod:`~sloguard.telemetry.propagation` -- W3C Trace Context, B3 and
  ``X-Trace-ID`` header parsing and injection (hand-written for speed,
  checked against OpenTelemetry's propagator);
* :mod:`~sloguard.telemetry.sampling` -- per-route ratios, changeable live;
* :mod:`~sloguard.telemetry.tracing` -- the OpenTelemetry SDK provider and exporters;
* :mod:`~sloguard.telemetry.metrics` -- Prometheus RED metrics, exact under multi-process servers;
* :mod:`~sloguard.telemetry.logging` -- JSON lines carrying trace and request ids, redaction;
* :mod:`~sloguard.telemetry.outbound` -- httpx client spans and propagation.

Exceptions::

    MissingExtraError    an optional integration was asked for without its extra
"""

from typing import TYPE_CHECKING

from sloguard._lazy import lazy_attributes as _lazy_attributes
from sloguard.telemetry.logging import JsonFormatter, Redactor, configure_logging
from sloguard.telemetry.metrics import HTTPMetrics
from sloguard.telemetry.propagation import IncomingTrace, extract, inject
from sloguard.telemetry.sampling import RouteRatioSampler, SamplingConfig
from sloguard.telemetry.tracing import MissingExtraError, build_tracer_provider

if TYPE_CHECKING:
    from sloguard.telemetry.outbound import (
        AsyncTracedTransport,
        TracedTransport,
        instrument_httpx,
        uninstrument_httpx,
    )

__all__ = [
    "AsyncTracedTransport",
    "HTTPMetrics",
    "IncomingTrace",
    "JsonFormatter",
    "MissingExtraError",
    "Redactor",
    "RouteRatioSampler",
    "SamplingConfig",
    "TracedTransport",
    "build_tracer_provider",
    "configure_logging",
    "extract",
    "inject",
    "instrument_httpx",
    "uninstrument_httpx",
]

#: the httpx integration is imported on first use: an application that never
#: imports httpx does not get it loaded by sloguard
_OUTBOUND = frozenset(
    {"AsyncTracedTransport", "TracedTransport", "instrument_httpx", "uninstrument_httpx"}
)


__getattr__ = _lazy_attributes(__name__, dict.fromkeys(_OUTBOUND, "sloguard.telemetry.outbound"))
