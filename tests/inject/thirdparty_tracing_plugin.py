"""A pytest plugin (``-p thirdparty_tracing_plugin``) that traces a package under test.

Loaded by ``test_rewrite_thirdparty`` in a child pytest, before the package's
modules are imported. ``SLOGUARD_TEST_TRACE`` holds the selectors (comma
separated); at exit the plugin writes the span count and the explain report
to the JSON file ``SLOGUARD_TEST_TRACE_OUT``.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator

from sloguard.inject._explain import Report
from sloguard.inject._rewrite import install_tracing
from sloguard.settings import Settings


class _Counting(SpanProcessor):
    def __init__(self) -> None:
        self.ended = 0
        self.errors = 0

    def on_end(self, span: ReadableSpan) -> None:
        self.ended += 1
        self.errors += span.status.status_code.name == "ERROR"


class _PrivateIds(IdGenerator):
    """Ids from a private RNG: the SDK's default draws from the global ``random``,
    which shifts every ``random.*`` result after a ``random.seed()`` in the code under test."""

    def __init__(self) -> None:
        self._random = random.Random()

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


_SELECTORS = [s for s in os.environ["SLOGUARD_TEST_TRACE"].split(",") if s]
_COUNTING = _Counting()
_PROVIDER = TracerProvider(id_generator=_PrivateIds())
_PROVIDER.add_span_processor(_COUNTING)
_REPORT = Report()
install_tracing(
    _SELECTORS,
    Settings(inject={"trace": {"selectors": _SELECTORS}}),
    _REPORT,
    tracer=_PROVIDER.get_tracer("sloguard.inject"),
)


def pytest_unconfigure(config: Any) -> None:
    Path(os.environ["SLOGUARD_TEST_TRACE_OUT"]).write_text(
        json.dumps(
            {
                "spans": _COUNTING.ended,
                "error_spans": _COUNTING.errors,
                "report": [entry.as_dict() for entry in _REPORT.entries()],
            }
        )
    )
