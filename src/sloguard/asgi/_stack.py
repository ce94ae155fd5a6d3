"""Builds the parts of the observe stack from settings, once, for ASGI and WSGI.

:class:`Stack` owns the tracer provider (when sloguard made it), the metrics,
the route table, the SLI recorder and flusher, and the :class:`Observer`
that uses them; ``close()`` flushes and releases all of it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from prometheus_client import CollectorRegistry

from sloguard.asgi._observer import Observer
from sloguard.context import propagate_context_to_threads
from sloguard.routing import RouteTable
from sloguard.settings import Settings
from sloguard.sli import SLIFlusher, SLIRecorder
from sloguard.telemetry.logging import configure_logging, install_record_factory
from sloguard.telemetry.metrics import HTTPMetrics, exposition
from sloguard.telemetry.sampling import RouteRatioSampler
from sloguard.telemetry.tracing import (
    build_tracer_provider,
    install_global_provider,
    sampling_config,
)

__all__ = ["Stack"]

log = logging.getLogger("sloguard")


class Stack:
    def __init__(
        self,
        settings: Settings,
        templates: Sequence[str],
        *,
        registry: CollectorRegistry | None = None,
        span_processors: Sequence[SpanProcessor] = (),
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        from sloguard import __version__

        cfg = settings
        self._closed = False
        self._close_lock = threading.Lock()
        if cfg.logging.enabled:
            install_record_factory()
        if cfg.logging.enabled and cfg.logging.configure_root:
            configure_logging(
                level=cfg.logging.level,
                json_format=cfg.logging.json_format,
                static_fields={"service": cfg.service.name},
            )
        if cfg.context.patch_executors:
            propagate_context_to_threads()

        self.tracer_provider: TracerProvider | None = None
        self.sampler: RouteRatioSampler | None = None
        self._owns_provider = False
        tracer = None
        if cfg.tracing.enabled:
            if tracer_provider is not None:
                # The caller's provider keeps its own sampler; ours still decides
                # for callers that deferred (B3 without a sampling flag).
                self.tracer_provider = tracer_provider
                self.sampler = RouteRatioSampler(sampling_config(cfg.tracing))
            else:
                self.tracer_provider, self.sampler = build_tracer_provider(
                    cfg.service, cfg.tracing, processors=tuple(span_processors)
                )
                self._owns_provider = True
                install_global_provider(self.tracer_provider)
            tracer = self.tracer_provider.get_tracer("sloguard", __version__)

        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.metrics = HTTPMetrics(self.registry, cfg.metrics) if cfg.metrics.enabled else None
        self.routes = RouteTable(
            cfg.routing.templates or tuple(templates),
            trailing_slash=cfg.routing.trailing_slash,
            max_cached_paths=cfg.routing.max_cached_paths,
        )
        self.recorder: SLIRecorder | None = None
        self.flusher: SLIFlusher | None = None
        if cfg.sli.enabled and cfg.sli.slos:
            self.recorder = SLIRecorder(cfg.sli.slos)
            self.flusher = SLIFlusher(self.recorder, cfg.sli.store_path, cfg.sli.flush_interval_s)
            self.flusher.start()
        self.observer = Observer(
            cfg,
            tracer=tracer,
            sampler=self.sampler,
            metrics=self.metrics,
            recorder=self.recorder,
            routes=self.routes,
            fast_spans=cfg.tracing.fast_spans,
        )

    def scrape(self, accept: str | None) -> tuple[bytes, str]:
        """The ``/metrics`` body and content type (all workers' values in multiprocess mode)."""
        multiprocess_path = self.metrics.multiprocess_dir if self.metrics is not None else None
        return exposition(self.registry, accept, multiprocess_path)

    def close(self) -> None:
        """Flush SLI counts and spans, release resources. Idempotent."""
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        if self.flusher is not None:
            self.flusher.close()
        if self.tracer_provider is not None and self._owns_provider:
            self.tracer_provider.force_flush()
            self.tracer_provider.shutdown()
        if self.metrics is not None:
            self.metrics.mark_process_dead()
