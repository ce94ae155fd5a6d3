"""The wrappers the AST rewrite puts around selected functions.

The import hook adds ``@__sloguard_traced__("module", "qualname")`` as the
innermost decorator of each selected ``def``; that name resolves to a
:class:`TraceRuntime`, which picks a wrapper by what the function is:

* sync function -- a span around the call;
* coroutine function -- an ``async def`` wrapper, the span around the await;
* generator function -- a wrapper generator whose span covers the whole
  iteration (first ``next`` to exhaustion, ``close`` or an escaping error).
  The span is current only while the wrapped generator's body runs: the
  wrapper attaches it before each ``send``/``throw``/``close`` and detaches it
  before yielding, so nothing the consumer does between items is parented to
  it and no context leaks across ``yield``. ``send``, ``throw``, ``close``,
  ``yield from`` and the return value (``StopIteration.value``) behave as
  for the bare generator;
* async generator function -- the same over ``asend``/``athrow``/``aclose``.

The wrappers are real ``def``/``async def`` functions, so
``inspect.isgeneratorfunction``/``iscoroutinefunction``/``isasyncgenfunction``
and method binding are those of the original, and ``functools.wraps`` keeps
the name, docstring, annotations and signature. One difference stays: the
body of a generator or coroutine wrapper runs at the first ``next``/``await``,
so a call with arguments that do not bind raises its ``TypeError`` there
instead of at the call.

Errors (``Exception`` subclasses) are recorded on the span (event + status
ERROR) and re-raised unchanged; the traceback gains exactly one frame, the
wrapper's. ``BaseException``\\ s that are not errors (``GeneratorExit``,
``CancelledError``, ``KeyboardInterrupt``) pass through unrecorded.

With a minimum duration (see :mod:`~sloguard.inject._threshold`), a call
costs two clock reads and emits its span afterwards, with explicit start and
end times, only when it was slow. Such a span is never current during the
call, so spans started inside it (a nested traced function, an HTTP client
span) are parented to the caller's span, not to it: the trade-off that keeps
fast calls free of context switches. Run without a minimum duration when the
tree shape matters more than the volume.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Generator
from time import time_ns
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode, Tracer
from opentelemetry.util.types import Attributes

from sloguard.inject._threshold import DurationGate, DurationPolicy

__all__ = ["TRACED_NAME", "TraceRuntime", "is_traced"]

#: The global name the rewritten modules call; set in each module's namespace by the loader.
TRACED_NAME = "__sloguard_traced__"

F = TypeVar("F", bound=Callable[..., Any])
_attach = otel_context.attach
_detach = otel_context.detach
_in_context = trace.set_span_in_context
_get_current = otel_context.get_current


def _record(span: Span, exc: BaseException) -> None:
    if isinstance(exc, Exception):
        span.record_exception(exc, escaped=True)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


class _Target:
    """What a wrapper needs about its function: span name, attributes, tracer, gate."""

    __slots__ = ("attributes", "gate", "name", "tracer")

    def __init__(self, tracer: Tracer, func: Callable[..., Any], module: str, qualname: str,
                 gate: DurationGate | None) -> None:  # fmt: skip
        code = getattr(func, "__code__", None)
        self.tracer = tracer
        self.name = f"{module}.{qualname}"
        self.gate = gate
        self.attributes: Attributes = {
            "code.namespace": module,
            "code.function": qualname,
            "code.filepath": code.co_filename if code is not None else "",
            "code.lineno": code.co_firstlineno if code is not None else 0,
        }

    def emit(self, start: int, end: int, exc: BaseException | None, parent: Any = None) -> None:
        """Emit a span after the fact (minimum-duration mode)."""
        span = self.tracer.start_span(
            self.name, context=parent, attributes=self.attributes, start_time=start
        )
        if exc is not None:
            _record(span, exc)
        span.end(end_time=end)


def _sync_always(func: Callable[..., Any], t: _Target) -> Callable[..., Any]:
    start_span, name, attributes = t.tracer.start_span, t.name, t.attributes

    @functools.wraps(func)
    def traced(*args: Any, **kwargs: Any) -> Any:
        span = start_span(name, attributes=attributes)
        token = _attach(_in_context(span))
        try:
            return func(*args, **kwargs)
        except BaseException as exc:
            _record(span, exc)
            raise
        finally:
            _detach(token)
            span.end()

    return traced


def _sync_gated(func: Callable[..., Any], t: _Target, gate: DurationGate) -> Callable[..., Any]:
    @functools.wraps(func)
    def traced(*args: Any, **kwargs: Any) -> Any:
        start = time_ns()
        try:
            result = func(*args, **kwargs)
        except BaseException as exc:
            end = time_ns()
            if gate.observe(end - start):
                t.emit(start, end, exc)
            raise
        end = time_ns()
        if gate.observe(end - start):
            t.emit(start, end, None)
        return result

    return traced


def _coroutine_always(func: Callable[..., Any], t: _Target) -> Callable[..., Any]:
    start_span, name, attributes = t.tracer.start_span, t.name, t.attributes

    @functools.wraps(func)
    async def traced(*args: Any, **kwargs: Any) -> Any:
        span = start_span(name, attributes=attributes)
        token = _attach(_in_context(span))
        try:
            return await func(*args, **kwargs)
        except BaseException as exc:
            _record(span, exc)
            raise
        finally:
            _detach(token)
            span.end()

    return traced


def _coroutine_gated(
    func: Callable[..., Any], t: _Target, gate: DurationGate
) -> Callable[..., Any]:
    @functools.wraps(func)
    async def traced(*args: Any, **kwargs: Any) -> Any:
        start = time_ns()
        try:
            result = await func(*args, **kwargs)
        except BaseException as exc:
            end = time_ns()
            if gate.observe(end - start):
                t.emit(start, end, exc)
            raise
        end = time_ns()
        if gate.observe(end - start):
            t.emit(start, end, None)
        return result

    return traced


def _generator(
    func: Callable[..., Any], t: _Target, gate: DurationGate | None
) -> Callable[..., Any]:
    @functools.wraps(func)
    def traced(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
        inner: Generator[Any, Any, Any] = func(*args, **kwargs)
        start = time_ns()
        parent = _get_current()
        span = None if gate is not None else t.tracer.start_span(t.name, attributes=t.attributes)
        failure: BaseException | None = None
        sent: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                token = None if span is None else _attach(_in_context(span))
                try:
                    item = inner.send(sent) if thrown is None else inner.throw(thrown)
                except StopIteration as stop:
                    return stop.value
                finally:
                    if token is not None:
                        _detach(token)
                thrown = sent = None
                try:
                    sent = yield item
                except GeneratorExit:
                    token = None if span is None else _attach(_in_context(span))
                    try:
                        inner.close()
                    finally:
                        if token is not None:
                            _detach(token)
                    raise
                except BaseException as exc:
                    thrown = exc
        except BaseException as exc:
            failure = exc
            raise
        finally:
            if span is not None:
                if failure is not None:
                    _record(span, failure)
                span.end()
            elif gate is not None:
                end = time_ns()
                if gate.observe(end - start):
                    t.emit(start, end, failure, parent)

    return traced


def _async_generator(
    func: Callable[..., Any], t: _Target, gate: DurationGate | None
) -> Callable[..., Any]:
    @functools.wraps(func)
    async def traced(*args: Any, **kwargs: Any) -> AsyncGenerator[Any, Any]:
        inner: AsyncGenerator[Any, Any] = func(*args, **kwargs)
        start = time_ns()
        parent = _get_current()
        span = None if gate is not None else t.tracer.start_span(t.name, attributes=t.attributes)
        failure: BaseException | None = None
        sent: Any = None
        thrown: BaseException | None = None
        try:
            while True:
                token = None if span is None else _attach(_in_context(span))
                try:
                    if thrown is None:
                        item = await inner.asend(sent)
                    else:
                        item = await inner.athrow(thrown)
                except StopAsyncIteration:
                    return
                finally:
                    if token is not None:
                        _detach(token)
                thrown = sent = None
                try:
                    sent = yield item
                except GeneratorExit:
                    token = None if span is None else _attach(_in_context(span))
                    try:
                        await inner.aclose()
                    finally:
                        if token is not None:
                            _detach(token)
                    raise
                except BaseException as exc:
                    thrown = exc
        except BaseException as exc:
            failure = exc
            raise
        finally:
            if span is not None:
                if failure is not None:
                    _record(span, failure)
                span.end()
            elif gate is not None:
                end = time_ns()
                if gate.observe(end - start):
                    t.emit(start, end, failure, parent)

    return traced


class TraceRuntime:
    """The ``__sloguard_traced__`` callable: ``runtime(module, qualname)`` returns a decorator."""

    def __init__(self, tracer: Tracer | None = None, policy: DurationPolicy | None = None) -> None:
        self.tracer = tracer if tracer is not None else trace.get_tracer("sloguard.inject")
        self.policy = policy if policy is not None else DurationPolicy()

    def __call__(self, module: str, qualname: str) -> Callable[[F], F]:
        def decorate(func: F) -> F:
            return self.wrap(func, module, qualname)

        return decorate

    def wrap(self, func: F, module: str, qualname: str) -> F:
        """Wrap one function; anything that is not a plain function is returned unchanged."""
        if not inspect.isfunction(func):
            return func
        gate = self.policy.gate()
        target = _Target(self.tracer, func, module, qualname, gate)
        wrapped: Callable[..., Any]
        if inspect.isasyncgenfunction(func):
            wrapped = _async_generator(func, target, gate)
        elif inspect.isgeneratorfunction(func):
            wrapped = _generator(func, target, gate)
        elif inspect.iscoroutinefunction(func):
            wrapped = (
                _coroutine_always(func, target)
                if gate is None
                else _coroutine_gated(func, target, gate)
            )
        else:
            wrapped = (
                _sync_always(func, target) if gate is None else _sync_gated(func, target, gate)
            )
        wrapped.__sloguard_traced__ = True  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]


def is_traced(func: Callable[..., Any]) -> bool:
    """True when ``func`` is a wrapper made by :class:`TraceRuntime`."""
    return getattr(func, "__sloguard_traced__", False) is True
