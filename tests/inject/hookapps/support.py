"""Install the framework hooks for one test, capture spans, undo everything after."""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from sloguard.inject._explain import Outcome, Report
from sloguard.inject._frameworks import Installation, all_hooks
from sloguard.settings import Settings

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACE_ID = TRACEPARENT.split("-")[1]


def settings_for(tmp_path: Path, **sections: Any) -> Settings:
    data: dict[str, Any] = {
        "service": {"name": "hooked"},
        "logging": {"configure_root": False},
        "context": {"patch_executors": False},
        "sli": {"store_path": str(tmp_path / "sli.db"), "slos": [{"name": "availability"}]},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return Settings.model_validate(data)


@dataclass
class Hooked:
    installation: Installation
    report: Report
    exporter: InMemorySpanExporter

    def spans(self, kind: SpanKind | None = None) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if kind is None or s.kind == kind]

    def outcome(self, target: str) -> tuple[Outcome, str] | None:
        for entry in self.report.entries():
            if entry.target == target:
                return entry.outcome, entry.detail
        return None


@contextlib.contextmanager
def hooks_installed(tmp_path: Path, **sections: Any) -> Iterator[Hooked]:
    """Every hook whose module is imported already (none left pending), undone at exit."""
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    report = Report()
    installation = Installation(
        settings_for(tmp_path, **sections),
        report,
        guard_options={"span_processors": [processor]},
        wsgi_options={"span_processors": [processor]},
        tracer=provider.get_tracer("tests.inject"),
    )
    installation.install(tuple(h for h in all_hooks() if h.module in sys.modules))
    try:
        yield Hooked(installation, report, exporter)
    finally:
        installation.undo()
        provider.shutdown()


class _EchoHandler(BaseHTTPRequestHandler):
    """Answers every GET with the trace headers it received, as ``name: value`` lines."""

    def do_GET(self) -> None:
        status = int(self.path.rsplit("/", 1)[-1]) if self.path.startswith("/status/") else 200
        body = "".join(
            f"{name}: {value}\n"
            for name, value in self.headers.items()
            if name.lower() in {"traceparent", "tracestate", "b3"}
        ).encode()
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@contextlib.contextmanager
def echo_server() -> Iterator[str]:
    """A stdlib HTTP server on 127.0.0.1 in a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
