"""Shared set-up for the import-tracing tests: an in-memory exporter and a clean sys.modules."""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sloguard.inject._explain import Report
from sloguard.inject._rewrite import install_tracing, uninstall_tracing
from sloguard.settings import Settings


@dataclass
class Traced:
    exporter: InMemorySpanExporter
    report: Report
    provider: TracerProvider

    def spans(self) -> tuple[ReadableSpan, ...]:
        return tuple(self.exporter.get_finished_spans())

    def names(self) -> list[str]:
        return [span.name for span in self.spans()]

    def load(self, name: str) -> Any:
        return importlib.import_module(name)


def in_memory_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@contextlib.contextmanager
def traced_imports(selectors: Sequence[str], **trace: Any) -> Iterator[Traced]:
    """Install the hook; modules imported inside are forgotten afterwards."""
    provider, exporter = in_memory_provider()
    settings = Settings(inject={"trace": {"selectors": list(selectors), **trace}})
    report = Report()
    before = set(sys.modules)
    install_tracing(selectors, settings, report, tracer=provider.get_tracer("sloguard.inject"))
    try:
        yield Traced(exporter, report, provider)
    finally:
        uninstall_tracing()
        for name in set(sys.modules) - before:
            del sys.modules[name]
        importlib.invalidate_caches()
        provider.shutdown()
