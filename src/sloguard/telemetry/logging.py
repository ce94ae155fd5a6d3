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
* :func:`log_direct` writes the line a JSON handler would write for a record,
  without building the record, when nothing between the logger and its
  handlers could see the difference (the access log's hot path).

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
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from json.encoder import c_encode_basestring, c_make_encoder  # type: ignore[attr-defined]
from typing import Any
from urllib.parse import parse_qsl, quote

from opentelemetry import trace
from opentelemetry.trace import SpanContext

from sloguard.context import current_request

__all__ = [
    "REDACTED",
    "JsonFormatter",
    "Redactor",
    "configure_logging",
    "hex_ids",
    "install_record_factory",
    "log_direct",
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
#: the factory ours wraps (a direct line is only like a record from ours over the stdlib's)
_installed_over: Callable[..., logging.LogRecord] | None = None
#: the last span context formatted, with its hex ids (the ids of one span are
#: formatted once, however many lines it logs); one tuple, swapped atomically
_last_ids: tuple[SpanContext | None, str, str] = (None, "", "")


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


def hex_ids(span_ctx: SpanContext) -> tuple[str, str]:
    """``span_ctx``'s trace and span ids as 32 and 16 hex digits (remembers the last one)."""
    global _last_ids
    last = _last_ids
    if last[0] is span_ctx:
        return last[1], last[2]
    trace_id = format(span_ctx.trace_id, "032x")
    span_id = format(span_ctx.span_id, "016x")
    _last_ids = (span_ctx, trace_id, span_id)
    return trace_id, span_id


def _context_values() -> tuple[str, str, str, str]:
    """``trace_id``, ``span_id``, ``request_id``, ``route`` as a record made now gets them."""
    ctx = current_request()
    span_ctx = trace.get_current_span().get_span_context()
    if span_ctx.is_valid:
        trace_id, span_id = hex_ids(span_ctx)
    elif ctx is None:
        trace_id = span_id = ""
    else:
        trace_id, span_id = ctx.trace_id, ctx.span_id
    if ctx is None:
        # outside a request (a worker, a job) a span may still be current
        return trace_id, span_id, "", ""
    return trace_id, span_id, ctx.request_id, ctx.route


def install_record_factory() -> None:
    """Add the request context to every LogRecord. Idempotent."""
    global _installed, _installed_over
    with _factory_lock:
        current = logging.getLogRecordFactory()
        if current is _installed:
            return
        previous = current

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            record.trace_id, record.span_id, record.request_id, record.route = _context_values()
            return record

        logging.setLogRecordFactory(factory)
        _installed, _installed_over = factory, previous


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context, extras.

    Built for the access log's rate: one reusable C encoder, the timestamp's
    second formatted once per second, extras found with one set difference.
    """

    def __init__(self, *, static_fields: dict[str, str] | None = None) -> None:
        super().__init__()
        self._static = dict(static_fields or {})
        encoder = json.JSONEncoder(default=str, ensure_ascii=False, separators=(",", ":"))
        self._encode = encoder.encode
        # The same encoder built once, for direct lines (flat, built here, so
        # no circular-reference bookkeeping); None where the C module is not.
        self._encode_flat: Callable[[dict[str, Any], int], Any] | None = (
            c_make_encoder(None, str, c_encode_basestring, None, ":", ",", False, False, True)
            if c_make_encoder is not None and c_encode_basestring is not None
            else None
        )
        self._second = -1
        self._second_text = ""

    def _time(self, created: float) -> str:
        second = int(created)
        if second != self._second:
            stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second, self._second_text = second, stamp
        return f"{self._second_text}.{int((created - second) * 1000):03d}+00:00"

    def _head(self, created: float, level: str, logger: str, message: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "time": self._time(created),
            "level": level,
            "logger": logger,
            "message": message,
        }
        if self._static:
            out.update(self._static)
        return out

    def format(self, record: logging.LogRecord) -> str:
        out = self._head(
            record.created, record.levelname.lower(), record.name, _scrub(record.getMessage())
        )
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

    def format_fields(
        self,
        created: float,
        level: str,
        logger: str,
        message: str,
        context: tuple[str, str, str, str],
        extra: Mapping[str, Any],
    ) -> str:
        """What :meth:`format` makes of a record with these fields, no exception or stack.

        ``message`` is the formatted, already scrubbed message; ``context``
        the :data:`CONTEXT_FIELDS` values; ``extra`` keys are not LogRecord
        attributes and do not start with ``_``.
        """
        out = self._head(created, level, logger, message)
        trace_id, span_id, request_id, route = context
        if trace_id:
            out["trace_id"] = trace_id
        if span_id:
            out["span_id"] = span_id
        if request_id:
            out["request_id"] = request_id
        if route:
            out["route"] = route
        out.update(extra)
        if self._encode_flat is None:
            return self._encode(out)
        return "".join(self._encode_flat(out, 0))


_PLAIN_HANDLERS = (logging.StreamHandler, logging.FileHandler)
_NO_CONTEXT = ("", "", "", "")


def _plain_json_handlers(logger: logging.Logger, level: int) -> list[logging.StreamHandler[Any]]:
    """The handlers a ``level`` record from ``logger`` reaches, if all are plain JSON ones.

    Plain: a stream or file handler of exactly that class, with an open
    stream, no filter and a :class:`JsonFormatter`; the logger filters
    nothing either. Empty when any of that does not hold (or no handler
    would get the record: logging's last resort then decides).
    """
    if logger.disabled or logger.filters:
        return []
    found: list[logging.StreamHandler[Any]] = []
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if level >= handler.level:
                if (
                    type(handler) not in _PLAIN_HANDLERS
                    or handler.filters
                    or type(handler.formatter) is not JsonFormatter
                    or handler.stream is None  # type: ignore[attr-defined]
                ):
                    return []
                found.append(handler)  # type: ignore[arg-type]
        if not current.propagate:
            break
        current = current.parent
    return found


def log_direct(
    logger: logging.Logger,
    level: int,
    msg: str,
    args: tuple[Any, ...],
    extra: Mapping[str, Any],
    created: float,
    context: tuple[str, str, str, str] | None = None,
) -> bool:
    """Write what ``logger.log(level, msg, *args, extra=extra)`` would, without a record.

    A LogRecord costs more than the rest of a JSON line (about 10 us in
    CPython); the access log writes one per request. When the record would
    go only to plain JSON handlers (see :func:`_plain_json_handlers`) and be
    made by this module's record factory over the stdlib's (or by the
    stdlib's alone), the line is built from the same fields, in the same
    order, by the same formatter, and written under the handler's lock as
    ``StreamHandler.emit`` does. Otherwise nothing is written and False is
    returned: the caller logs the usual way. The caller checks the level;
    ``extra`` keys are not LogRecord attributes and do not start with ``_``.
    ``context``: the :data:`CONTEXT_FIELDS` values, when the caller knows
    what the record factory would find (the request and span now current).
    """
    factory = logging.getLogRecordFactory()
    if factory is not logging.LogRecord and (
        factory is not _installed or _installed_over is not logging.LogRecord
    ):
        return False
    if type(logger).handle is not logging.Logger.handle:  # a custom Logger class
        return False
    handlers = _plain_json_handlers(logger, level)
    if not handlers:
        return False
    if factory is logging.LogRecord:
        context = _NO_CONTEXT
    elif context is None:
        context = _context_values()
    message = _scrub(msg % args if args else msg)
    level_name = logging.getLevelName(level).lower()
    for handler in handlers:
        formatter: JsonFormatter = handler.formatter  # type: ignore[assignment]
        handler.acquire()
        try:
            line = formatter.format_fields(
                created, level_name, logger.name, message, context, extra
            )
            handler.stream.write(line + handler.terminator)
            handler.flush()
        except RecursionError:
            raise
        except Exception:
            record = logger.makeRecord(logger.name, level, "", 0, msg, args, None, extra=extra)
            handler.handleError(record)
        finally:
            handler.release()
    return True


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
