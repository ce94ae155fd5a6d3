"""The applications under test, built the same way in-process and under uvicorn.

Three stacks around one trivial Starlette endpoint (``GET /items/{item_id}``):

* ``bare``: the Starlette app alone.
* ``sloguard``: ``guard(app, settings)`` -- server span, RED metrics, JSON
  access log, request id, SLI recording against two SLOs.
* ``peer``: what a user assembles today for the same signals:
  opentelemetry-instrumentation-asgi's ``OpenTelemetryMiddleware`` (own
  ``TracerProvider``), prometheus-fastapi-instrumentator (fresh registry),
  asgi-correlation-id's ``CorrelationIdMiddleware`` and python-json-logger's
  ``JsonFormatter`` with ``CorrelationIdFilter``. None of those emits an
  access-log line, so :class:`AccessLogMiddleware` (the smallest pure-ASGI
  one) adds it.

Equal work on both sides: each stack's spans go through its own
``BatchSpanProcessor`` (same deep queue, see :data:`SPAN_QUEUE`) to the same
kind of :class:`CountingSpanExporter` (drops the batches, counts the spans),
and each access-log line goes to a
``StreamHandler`` on the same kind of sink (an in-memory buffer in-process,
/dev/null under uvicorn).

For uvicorn, ``bare_app``, ``guarded_app`` and ``peer_app`` are built lazily on
first attribute access (module ``__getattr__``), so importing this module
builds nothing: ``uvicorn benchmarks.apps:guarded_app``.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

__all__ = [
    "ACCESS_LOGGER_PEER",
    "FAIRNESS",
    "ACCESS_LOGGER_SLOGUARD",
    "ITEM_ROUTE",
    "WORKDIR_ENV",
    "AccessLogMiddleware",
    "Built",
    "CountingSpanExporter",
    "build_bare",
    "build_peer",
    "build_sloguard",
    "bench_environment",
    "sloguard_settings",
    "starlette_app",
    "stored_sli_total",
]

ITEM_ROUTE = "/items/{item_id}"
ACCESS_LOGGER_SLOGUARD = "sloguard.access"
ACCESS_LOGGER_PEER = "peer.access"
#: Where the uvicorn-served guarded app keeps its SLI store (set by e2e_wrk).
WORKDIR_ENV = "BENCH_SLI_WORKDIR"
SERVICE = "bench"
#: Both stacks' BatchSpanProcessor queue. The SDK default (2048) drops spans when
#: the export thread is starved of CPU on a loaded box, and a stack that drops
#: spans does less work; a deep queue keeps every span, so the work stays equal.
SPAN_QUEUE = 65_536

ASGIApp = Callable[..., Any]

#: The equal-work rules, written into every benchmark's JSON.
FAIRNESS = [
    "Both stacks make one SERVER span per request (the peer's OpenTelemetryMiddleware gets "
    "exclude_spans=['receive','send']; 'peer-default-spans' shows the library default of "
    "3 spans) and send it through their own BatchSpanProcessor to the same no-op, counting "
    "SpanExporter. Both processors get max_queue_size=65536: with the SDK default (2048) "
    "the CPU-starved export thread fell behind and spans were dropped, and a stack that "
    "drops spans does less work.",
    "Both count Prometheus RED metrics in a fresh CollectorRegistry. sloguard: requests "
    "counter, duration histogram, in-flight gauge, response-size histogram. Peer: "
    "prometheus-fastapi-instrumentator defaults (requests counter, request/response size "
    "summaries, two duration histograms).",
    "Both write one JSON access-log line per request through a StreamHandler to an in-memory "
    "buffer cleared every round (/dev/null under uvicorn): sloguard's logger "
    "'sloguard.access' with sloguard.telemetry.logging.JsonFormatter (plus its LogRecord "
    "factory adding trace/span/request ids); the peer's 'peer.access' with "
    "python-json-logger's JsonFormatter and asgi-correlation-id's CorrelationIdFilter. "
    "No peer library logs requests, so the benchmark adds the smallest pure-ASGI "
    "access-log middleware (benchmarks/apps.py AccessLogMiddleware). The peer's lines "
    "carry no trace ids (that would need opentelemetry-instrumentation-logging, not "
    "installed).",
    "Both mint a request id and echo it in x-request-id (sloguard itself; the peer with "
    "asgi-correlation-id's CorrelationIdMiddleware).",
    "Only sloguard records SLIs (2 SLOs: availability, latency 100 ms) and flushes them to "
    "SQLite every 5 s in a background thread; the peer has no equivalent.",
]


async def item(request: Request) -> Response:
    return PlainTextResponse(f"item {request.path_params['item_id']}")


def starlette_app(middleware: Sequence[Middleware] = ()) -> Starlette:
    """A fresh trivial app (fresh because the peer's instrumentator mutates it)."""
    return Starlette(routes=[Route(ITEM_ROUTE, item)], middleware=list(middleware))


class CountingSpanExporter(SpanExporter):
    """Drops every batch; counts the spans (and those continuing a remote parent)."""

    def __init__(self) -> None:
        self.spans = 0
        self.continued = 0
        self.batches = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        self.continued += sum(1 for s in spans if s.parent is not None and s.parent.is_remote)
        self.batches += 1
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _batch(exporter: SpanExporter) -> BatchSpanProcessor:
    return BatchSpanProcessor(exporter, max_queue_size=SPAN_QUEUE)


@dataclass
class Built:
    """One stack under test and the counters that show it did its work."""

    name: str
    app: ASGIApp
    exporter: CountingSpanExporter | None
    provider: TracerProvider | None
    requests_counted: Callable[[], float]
    close: Callable[[], None]
    extra: dict[str, Any] = field(default_factory=dict)

    def spans_exported(self) -> int:
        """Flush the batch processor, then the spans the exporter has seen."""
        if self.provider is None or self.exporter is None:
            return 0
        self.provider.force_flush()
        return self.exporter.spans


def _access_handler(
    logger_name: str, sink: TextIO, formatter: logging.Formatter, *filters: logging.Filter
) -> logging.Handler:
    """One handler on ``logger_name`` (replacing earlier ones), not propagating to root."""
    logger = logging.getLogger(logger_name)
    for old in list(logger.handlers):
        logger.removeHandler(old)
    handler = logging.StreamHandler(sink)
    handler.setFormatter(formatter)
    for log_filter in filters:
        handler.addFilter(log_filter)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler


def build_bare() -> Built:
    return Built("bare", starlette_app(), None, None, lambda: 0.0, lambda: None)


def sloguard_settings(
    workdir: Path, sample_ratio: float, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> Any:
    """The benchmark's settings; ``overrides`` are merged into their sections."""
    from sloguard.settings import Settings

    data: dict[str, dict[str, Any]] = {
        "service": {"name": SERVICE},
        "tracing": {"sample_ratio": sample_ratio},
        "sli": {
            "store_path": str(workdir / "sli.db"),
            "slos": [
                {"name": "avail"},
                {"name": "fast", "kind": "latency", "threshold_ms": 100},
            ],
        },
        "logging": {"configure_root": False},
    }
    for section, values in (overrides or {}).items():
        data[section] = {**data.get(section, {}), **values}
    return Settings.model_validate(data)


def build_sloguard(
    workdir: Path,
    sink: TextIO,
    *,
    sample_ratio: float = 1.0,
    name: str = "sloguard",
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Built:
    """guard() with 2 SLOs; its access log gets sloguard's JsonFormatter on ``sink``.

    ``overrides`` switch parts off (``{"tracing": {"enabled": False}}``) to see
    what each part costs.

    ``configure_root: False`` so the benchmark owns the handlers; the record
    factory (trace/request ids on every record) is installed as
    ``configure_root: True`` would do.
    """
    from sloguard.asgi import guard
    from sloguard.telemetry.logging import JsonFormatter, install_record_factory

    install_record_factory()
    _access_handler(ACCESS_LOGGER_SLOGUARD, sink, JsonFormatter(static_fields={"service": SERVICE}))
    exporter = CountingSpanExporter()
    guarded = guard(
        starlette_app(),
        sloguard_settings(workdir, sample_ratio, overrides),
        span_processors=[_batch(exporter)],
    )

    def counted() -> float:
        total = 0.0
        for metric in guarded.registry.collect():
            if metric.name == "sloguard_http_requests":
                total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
        return total

    return Built(
        name,
        guarded,
        exporter,
        guarded.tracer_provider,
        counted,
        guarded.close,
        extra={"guard": guarded},
    )


class AccessLogMiddleware:
    """The peer's access log: one JSON line per request, the fields sloguard logs.

    None of the peer libraries logs requests, so this is the smallest pure-ASGI
    middleware that does (added by the benchmark, not by a library).
    """

    def __init__(self, app: ASGIApp, logger: str = ACCESS_LOGGER_PEER) -> None:
        self.app = app
        self.log = logging.getLogger(logger)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        size = 0

        async def logged_send(message: dict[str, Any]) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                size += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, logged_send)
        finally:
            user_agent = ""
            for name, value in scope["headers"]:
                if name == b"user-agent":
                    user_agent = value.decode("latin-1")
            client = scope.get("client")
            self.log.info(
                "%s %s %d",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "http_method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                    "response_bytes": size,
                    "client": client[0] if client else None,
                    "user_agent": user_agent,
                },
            )


def build_peer(sink: TextIO, *, internal_spans: bool = False) -> Built:
    """OTel ASGI + prometheus-fastapi-instrumentator + asgi-correlation-id + JSON logs.

    ``internal_spans=False`` passes ``exclude_spans=["receive", "send"]`` so the
    peer, like sloguard, makes one server span per request; True keeps the
    library's default of two extra internal spans per request.
    """
    from asgi_correlation_id import CorrelationIdFilter, CorrelationIdMiddleware
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.resources import Resource
    from prometheus_client import CollectorRegistry
    from prometheus_fastapi_instrumentator import Instrumentator
    from pythonjsonlogger.json import JsonFormatter as PeerJsonFormatter

    _access_handler(
        ACCESS_LOGGER_PEER,
        sink,
        PeerJsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
            static_fields={"service": SERVICE},
        ),
        CorrelationIdFilter(),
    )
    exporter = CountingSpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    provider.add_span_processor(_batch(exporter))
    registry = CollectorRegistry(auto_describe=True)
    app = starlette_app([Middleware(CorrelationIdMiddleware), Middleware(AccessLogMiddleware)])
    Instrumentator(registry=registry).instrument(app)
    outer = OpenTelemetryMiddleware(
        app,
        tracer_provider=provider,
        exclude_spans=None if internal_spans else ["receive", "send"],
    )

    def counted() -> float:
        value = 0.0
        for metric in registry.collect():
            if metric.name == "http_requests":
                value += sum(s.value for s in metric.samples if s.name.endswith("_total"))
        return value

    def close() -> None:
        provider.force_flush()
        provider.shutdown()

    name = "peer-default-spans" if internal_spans else "peer"
    return Built(name, outer, exporter, provider, counted, close, extra={"registry": registry})


def stored_sli_total(workdir: Path, slo: str = "avail") -> int:
    """Requests the SLI flusher wrote to the store under ``workdir`` (after close())."""
    from sloguard.store import SQLiteStore

    with SQLiteStore(workdir / "sli.db") as store:
        return store.totals(slo, 0, 2**40)[1]


def bench_environment() -> dict[str, str]:
    """This environment without settings that would change what is measured.

    ``OTEL_*`` would reconfigure the SDK (sampler, limits), ``SLOGUARD_*`` the
    settings, ``PROMETHEUS_MULTIPROC_DIR`` would switch both stacks' metrics
    to files.
    """
    dropped = ("OTEL_", "SLOGUARD_", "PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir")
    return {k: v for k, v in os.environ.items() if not k.startswith(dropped)}


def _server_workdir() -> Path:
    configured = os.environ.get(WORKDIR_ENV)
    if configured:
        return Path(configured)
    return Path(tempfile.mkdtemp(prefix="sloguard-bench-"))


def _server_app(name: str) -> ASGIApp:
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the server process
    if name == "bare_app":
        return build_bare().app
    if name == "guarded_app":
        return build_sloguard(_server_workdir(), sink).app
    if name == "guarded_1pct_app":
        return build_sloguard(_server_workdir(), sink, sample_ratio=0.01).app
    return build_peer(sink).app


_SERVER_APPS = ("bare_app", "guarded_app", "guarded_1pct_app", "peer_app")
_built: dict[str, ASGIApp] = {}


def __getattr__(name: str) -> ASGIApp:
    if name not in _SERVER_APPS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _built:
        _built[name] = _server_app(name)
    return _built[name]
