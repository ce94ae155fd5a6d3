"""What a live probe does on each call of its function: a span, a metric or a log line.

The mechanisms (``sys.monitoring``, code replacement) only know *when* a call
starts and ends; a :class:`CallHandler` knows what to record. Handlers are
plain objects with two methods so both mechanisms drive them alike:
``enter(arguments)`` returns a token, ``exit(token, error)`` finishes it.

Spans are started with ``Tracer.start_span`` and ended explicitly; they are
never made the current span. A monitoring callback or a trampoline that
attached a context in ``enter`` would have to detach it in ``exit``, which for
a generator or coroutine runs in another task's context (and for a call that
raised, maybe never): the probe span is a child of whatever was current when
the call started (the request span) and nothing is nested under it.

Arguments are rendered with :mod:`reprlib` (bounded size whatever the
object), masked when the argument's name contains a sensitive word, and
scrubbed of bearer tokens and JWTs by the telemetry :class:`Redactor`.
"""

from __future__ import annotations

import logging
import reprlib
import time
import weakref
from collections.abc import Callable, Mapping
from types import FunctionType
from typing import ClassVar, Protocol, cast

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from prometheus_client import CollectorRegistry, Counter, Histogram

from sloguard.telemetry.logging import REDACTED, Redactor

__all__ = [
    "ArgumentReader",
    "ArgumentRenderer",
    "CallHandler",
    "Mechanism",
    "ProbeHook",
    "LogHandler",
    "MetricHandler",
    "ProbeMetrics",
    "SpanHandler",
]

_MARKER = "…"
_SELFISH = frozenset({"self", "cls"})


class CallHandler(Protocol):
    """Records one call: ``enter`` when it starts, ``exit`` with its token when it ends."""

    def enter(self, arguments: Mapping[str, object] | None) -> object: ...

    def exit(self, token: object, error: BaseException | None) -> None: ...


ArgumentReader = Callable[[object], Mapping[str, object]]


class ProbeHook(Protocol):
    """What a mechanism calls: a probe with its handler, sampling and budget.

    ``enter`` gets a reader and its source (a frame, or the call's arguments)
    and calls the reader only when ``wants_arguments`` is true, so a probe
    that captures nothing never pays for binding arguments to names.
    """

    @property
    def wants_arguments(self) -> bool: ...

    def enter(self, read: ArgumentReader, source: object) -> object: ...

    def exit(self, token: object, error: BaseException | None) -> None: ...


class Mechanism(Protocol):
    """How hooks get called on a function's calls: ``sys.monitoring`` or code replacement."""

    name: str

    def attach(self, func: FunctionType, hook: ProbeHook) -> None: ...

    def detach(self, func: FunctionType, hook: ProbeHook) -> None: ...


def _failed(error: BaseException | None) -> bool:
    # A generator closed early ends with GeneratorExit: that is the caller's
    # choice, not the function failing.
    return error is not None and not isinstance(error, GeneratorExit)


class ArgumentRenderer:
    """Arguments as short, redacted strings, within a per-value and a total size."""

    def __init__(self, redact: tuple[str, ...], max_arg_chars: int, max_bytes: int) -> None:
        self._sensitive = tuple(word.lower() for word in redact)
        self._redactor = Redactor(headers=(), query_params=())
        self._max_arg = max_arg_chars
        self._max_bytes = max_bytes
        self._repr = reprlib.Repr()
        self._repr.maxstring = self._repr.maxother = self._repr.maxlong = max_arg_chars
        self._repr.maxlevel = 3

    def _is_sensitive(self, name: str) -> bool:
        lowered = name.lower()
        return any(word in lowered for word in self._sensitive)

    def _value(self, value: object) -> str:
        if isinstance(value, Mapping) and any(
            isinstance(key, str) and self._is_sensitive(key) for key in value
        ):
            value = {
                key: REDACTED if isinstance(key, str) and self._is_sensitive(key) else item
                for key, item in value.items()
            }
        if isinstance(value, str):  # before repr cuts a token in half
            value = self._redactor.header("", value)
        try:
            text = self._repr.repr(value)
        except Exception as exc:  # a broken __repr__ must not break the call
            text = f"<{type(value).__qualname__}: repr failed: {type(exc).__name__}>"
        text = self._redactor.header("", text)
        if len(text) > self._max_arg:
            text = text[: self._max_arg - 1] + _MARKER
        return text

    def render(self, arguments: Mapping[str, object]) -> dict[str, str]:
        out: dict[str, str] = {}
        used = 0
        for index, (name, value) in enumerate(arguments.items()):
            if self._is_sensitive(name):
                text = REDACTED
            elif name in _SELFISH:
                text = f"<{type(value).__qualname__}>"
            else:
                text = self._value(value)
            used += len(name) + len(text.encode())
            if used > self._max_bytes:
                out[_MARKER] = f"{len(arguments) - index} more argument(s) over max_bytes"
                break
            out[name] = text
        return out


class SpanHandler:
    """A span per call, from the call's start to its return or exception."""

    def __init__(
        self, tracer: Tracer, target: str, probe_id: str, renderer: ArgumentRenderer | None
    ) -> None:
        module, _, qualname = target.partition(":")
        self._tracer = tracer
        self._name = qualname
        self._attributes = {
            "code.namespace": module,
            "code.function": qualname,
            "sloguard.probe": probe_id,
        }
        self._renderer = renderer

    def enter(self, arguments: Mapping[str, object] | None) -> object:
        attributes: dict[str, str] = dict(self._attributes)
        if arguments is not None and self._renderer is not None:
            for name, text in self._renderer.render(arguments).items():
                attributes[f"code.arg.{name}"] = text
        return self._tracer.start_span(self._name, kind=SpanKind.INTERNAL, attributes=attributes)

    def exit(self, token: object, error: BaseException | None) -> None:
        span = token
        if _failed(error):
            assert error is not None
            span.record_exception(error)  # type: ignore[attr-defined]
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))  # type: ignore[attr-defined]
        span.end()  # type: ignore[attr-defined]


class ProbeMetrics:
    """The two probe metric families, registered once per registry."""

    _by_registry: ClassVar[weakref.WeakKeyDictionary[CollectorRegistry, ProbeMetrics]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, registry: CollectorRegistry) -> None:
        self.calls = Counter(
            "sloguard_probe_calls",
            "Calls of functions that carry a live metric probe.",
            ("target", "outcome"),
            registry=registry,
        )
        self.duration = Histogram(
            "sloguard_probe_duration_seconds",
            "Duration of calls of functions that carry a live metric probe.",
            ("target",),
            registry=registry,
        )

    @classmethod
    def for_registry(cls, registry: CollectorRegistry) -> ProbeMetrics:
        found = cls._by_registry.get(registry)
        if found is None:
            found = cls._by_registry[registry] = cls(registry)
        return found


class MetricHandler:
    """A call counter (by outcome) and a duration histogram, labelled by target."""

    def __init__(self, metrics: ProbeMetrics, target: str) -> None:
        self._ok = metrics.calls.labels(target, "ok")
        self._error = metrics.calls.labels(target, "error")
        self._duration = metrics.duration.labels(target)

    def enter(self, arguments: Mapping[str, object] | None) -> object:
        return time.perf_counter_ns()

    def exit(self, token: object, error: BaseException | None) -> None:
        elapsed = (time.perf_counter_ns() - token) / 1e9  # type: ignore[operator]
        self._duration.observe(elapsed)
        (self._error if _failed(error) else self._ok).inc()


class LogHandler:
    """One INFO line per call: target, outcome, duration and (redacted) arguments."""

    def __init__(
        self, logger: logging.Logger, target: str, probe_id: str, renderer: ArgumentRenderer | None
    ) -> None:
        self._logger = logger
        self._target = target
        self._probe_id = probe_id
        self._renderer = renderer

    def enter(self, arguments: Mapping[str, object] | None) -> object:
        rendered = None
        if arguments is not None and self._renderer is not None:
            rendered = self._renderer.render(arguments)
        return (time.perf_counter_ns(), rendered)

    def exit(self, token: object, error: BaseException | None) -> None:
        started, rendered = cast(tuple[int, dict[str, str] | None], token)
        if not self._logger.isEnabledFor(logging.INFO):
            return
        duration_ms = (time.perf_counter_ns() - started) / 1e6
        outcome = "error" if _failed(error) else "ok"
        extra: dict[str, object] = {
            "probe": self._probe_id,
            "probe_target": self._target,
            "probe_outcome": outcome,
            "probe_duration_ms": round(duration_ms, 3),
        }
        if rendered is not None:
            extra["probe_args"] = rendered
        if outcome == "error":
            extra["probe_error"] = type(error).__name__
        self._logger.info(
            "probe %s: %s %s in %.3f ms",
            self._probe_id,
            self._target,
            outcome,
            duration_ms,
            extra=extra,
        )
