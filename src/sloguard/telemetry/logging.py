"""JSON log lines that carry the request's trace and request ids.

Three parts, each usable alone:

* :func:`install_record_factory` wraps the process's ``LogRecord`` factory so
  *every* record created during a request — sloguard's and the application's
  own loggers alike, whatever handler they end up in — gets ``trace_id``,
  ``span_id``, ``request_id`` and ``route`` attributes.
* :class:`JsonFormatter` renders a record as one JSON object per line and
  scrubs what looks like a credential from the message: bearer/basic
  credentials, JWTs, and secret-named query parameters in URLs (so a
  library that logs a URL does not leak ``?token=…``).
* :class:`Redactor` masks sensitive headers and query parameters before they
  reach a log line (the access log uses it).

The formatter is hand-written rather than python-json-logger's because the
access log runs once per request: it is about twice as fast on the same
record (see benchmarks/observe.py), and it knows our context fields.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

from opentelemetry import trace

from sloguard.context import current_request

__all__ = [
    "REDACTED",
    "JsonFormatter",
    "Redactor",
    "configure_logging",
    "install_record_factory",
]

REDACTED = "[REDACTED]"
CONTEXT_FIELDS = ("trace_id", "span_id", "request_id", "route")
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys()
    | {"message", "asctime", "taskName", *CONTEXT_FIELDS}
)
_TOKENISH = re.compile(
    r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]*"
)
_factory_lock = threading.Lock()
_installed: Callable[..., logging.LogRecord] | None = None


_SECRET_PARAMS = re.compile(
    r"(?i)([?&;](?:access_token|api_key|apikey|id_token|password|refresh_token|secret|sig|signature|token|code|key)=)[^&\\s\"']+"
)


def _scrub(text: str) -> str:
    """Mask what looks like a credential in free text (messages, exceptions)."""
    if "=" in text:
        text = _SECRET_PARAMS.sub(lambda m: m.group(1) + REDACTED, text)
    if "eyJ" not in text and "earer" not in text and "asic" not in text:
        return text
    return _TOKENISH.sub(lambda m: f"{m.group(1)} {REDACTED}" if m.group(1) else REDACTED, text)


def install_record_factory() -> None:
    """Add the request context to every LogRecord. Idempotent."""
    global _installed
    with _factory_lock:
        current = logging.getLogRecordFactory()
        if current is _installed:
            return
        previous = current

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            ctx = current_request()
            span_ctx = trace.get_current_span().get_span_context()
            if ctx is None:
                # outside a request (a worker, a job) a span may still be current
                if span_ctx.is_valid:
                    record.trace_id = format(span_ctx.trace_id, "032x")
                    record.span_id = format(span_ctx.span_id, "016x")
                else:
                    record.trace_id = record.span_id = ""
                record.request_id = record.route = ""
                return record
            if span_ctx.is_valid:
                record.trace_id = format(span_ctx.trace_id, "032x")
                record.span_id = format(span_ctx.span_id, "016x")
            else:
                record.trace_id, record.span_id = ctx.trace_id, ctx.span_id
            record.request_id = ctx.request_id
            record.route = ctx.route
            return record

        logging.setLogRecordFactory(factory)
        _installed = factory


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context, extras.

    Built for the access log's rate: one reusable C encoder, the timestamp's
    second formatted once per second, extras found with one set difference.
    """

    def __init__(self, *, static_fields: dict[str, str] | None = None) -> None:
        super().__init__()
        self._static = dict(static_fields or {})
        self._encode = json.JSONEncoder(
            default=str, ensure_ascii=False, separators=(",", ":")
        ).encode
        self._second = -1
        self._second_text = ""

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second, self._second_text = second, stamp
        return f"{self._second_text}.{int((created - second) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _scrub(record.getMessage()),
        }
        if self._static:
            out.update(self._static)
        fields = record.__dict__
        for name in CONTEXT_FIELDS:
            value = fields.get(name)
            if value:
                out[name] = value
        # in the order the record got them (a set difference would shuffle
        # them between processes)
        out.update(
            {k: v for k, v in fields.items() if k not in _STANDARD and not k.startswith("_")}
        )
        if record.exc_info:
            out["exception"] = _scrub(self.formatException(record.exc_info))
        if record.stack_info:
            out["stack"] = record.stack_info
        return self._encode(out)


class Redactor:
    """Masks sensitive header values and query parameters (case-insensitive names)."""

    __slots__ = ("headers", "query_params")

    def __init__(self, headers: Iterable[str], query_params: Iterable[str]) -> None:
        self.headers = frozenset(h.lower() for h in headers)
        self.query_params = frozenset(q.lower() for q in query_params)

    def header(self, name: str, value: str) -> str:
        return REDACTED if name.lower() in self.headers else _scrub(value)

    def query(self, query: str) -> str:
        """The query string with sensitive parameters' values masked."""
        if not query:
            return query
        pairs = parse_qsl(query, keep_blank_values=True)
        if not any(k.lower() in self.query_params for k, _ in pairs) and "eyJ" not in query:
            return query
        masked = (
            (k, REDACTED if k.lower() in self.query_params else quote(_scrub(v), safe="[]"))
            for k, v in pairs
        )
        return "&".join(f"{quote(k, safe='')}={v}" for k, v in masked)


def configure_logging(
    *, level: str = "INFO", json_format: bool = True, static_fields: dict[str, str] | None = None
) -> logging.Handler | None:
    """Install the record factory; give the root logger a JSON handler if it has none.

    Returns the handler added, or None when the application already
    configured the root logger (its handlers are left alone; they still get
    the context attributes).
    """
    install_record_factory()
    root = logging.getLogger()
    if root.handlers:
        return None
    handler = logging.StreamHandler(sys.stderr)
    if json_format:
        handler.setFormatter(JsonFormatter(static_fields=static_fields))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root.addHandler(handler)
    root.setLevel(level)
    return handler
