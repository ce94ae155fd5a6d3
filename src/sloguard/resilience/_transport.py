"""Circuit breakers for outbound HTTP: httpx transports that fail fast while a dependency is down.

:class:`BreakerTransport` (sync) and :class:`AsyncBreakerTransport` wrap
another httpx transport (by default httpx's own) and put a breaker from a
:class:`~sloguard.resilience._breaker.BreakerRegistry` in front of each
request. Which breaker is picked by ``key``:

* ``"host"`` (default): one breaker per origin, named ``http:<host>`` or
  ``http:<host>:<port>`` when the URL gives a non-default port;
* ``"route"``: one per route template of that host, named
  ``http:<host>[:port] <template>``, the path resolved with
  :class:`sloguard.routing.RouteTable` (so ``/users/42`` and ``/users/7``
  share ``/users/{id}``); paths that match no template share
  ``http:<host> <unmatched>``, or bypass the breakers with
  ``unmatched="bypass"``;
* a callable ``(request) -> name | None``: its name, or no breaker for None.

A response whose status the classifier counts as a failure (500, 502, 503,
504 by default) is counted as a failure *and returned*: the caller still
decides what to do with a 503. Transport errors (connect errors, timeouts)
count as failures and propagate. The duration is the time to the response
headers; errors while streaming the body happen after the transport returns
and are not seen. While the breaker rejects, the transport raises
:class:`HTTPBreakerOpenError` -- an ``httpx.TransportError`` as well as a
``BreakerOpenError`` -- without touching the network, so code that already
handles httpx errors handles an open circuit too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

import httpx

from sloguard.resilience._breaker import BreakerOpenError, BreakerRegistry
from sloguard.resilience._classify import FailureClassifier
from sloguard.resilience._local import LocalBreaker
from sloguard.resilience._types import Admission, BreakerBackend, BreakerState
from sloguard.routing import UNMATCHED, RouteTable

__all__ = ["AsyncBreakerTransport", "BreakerTransport", "HTTPBreakerOpenError", "breaker_key"]

KeyFunction = Callable[[httpx.Request], str | None]


class HTTPBreakerOpenError(BreakerOpenError, httpx.TransportError):
    """An outbound request refused by an open breaker; carries the ``request``."""

    def __init__(
        self, name: str, retry_after_s: float, state: BreakerState, *, request: httpx.Request
    ) -> None:
        super().__init__(name, retry_after_s, state)
        self._request = request


def _authority(url: httpx.URL) -> str:
    return f"{url.host}:{url.port}" if url.port is not None else url.host


def breaker_key(
    key: Literal["host", "route"] | KeyFunction,
    routes: Iterable[str] = (),
    *,
    unmatched: Literal["breaker", "bypass"] = "breaker",
) -> KeyFunction:
    """The function naming a request's breaker (None: no breaker); see the module docstring."""
    if callable(key):
        return key
    if key == "host":
        return lambda request: "http:" + _authority(request.url)
    if key != "route":
        raise ValueError(f"key must be 'host', 'route' or a callable, not {key!r}")
    if unmatched not in ("breaker", "bypass"):
        raise ValueError(f"unmatched must be 'breaker' or 'bypass', not {unmatched!r}")
    table = RouteTable(routes)
    if not table.templates:
        raise ValueError("routes: key='route' needs at least one route template")
    bypass = unmatched == "bypass"

    def by_route(request: httpx.Request) -> str | None:
        route = table.resolve(request.url.raw_path)
        if route == UNMATCHED and bypass:
            return None
        return f"http:{_authority(request.url)} {route}"

    return by_route


class _Guard:
    """What both transports share: naming, admission and counting."""

    def __init__(
        self,
        key: Literal["host", "route"] | KeyFunction,
        routes: Iterable[str],
        unmatched: Literal["breaker", "bypass"],
        registry: BreakerRegistry | None,
        classifier: FailureClassifier | None,
    ) -> None:
        self.name_of = breaker_key(key, routes, unmatched=unmatched)
        self.registry = registry if registry is not None else BreakerRegistry()
        classifier = classifier or FailureClassifier()
        self.classify_status = classifier.classify_status
        self.classify_exception = classifier.classify_exception
        self.monotonic = self.registry.clock.monotonic

    def backend(self, name: str) -> BreakerBackend:
        return self.registry.get(name).backend

    def rejected(
        self, name: str, admission: Admission, request: httpx.Request
    ) -> HTTPBreakerOpenError:
        return HTTPBreakerOpenError(name, admission.retry_after_s, admission.state, request=request)

    def start(self, backend: BreakerBackend) -> float | None:
        """The start time, when the slow-call strategy needs durations."""
        return self.monotonic() if backend.policy.slow_call_ratio is not None else None

    def elapsed(self, start: float | None) -> float:
        return 0.0 if start is None else self.monotonic() - start

    def record_error(
        self, backend: BreakerBackend, admission: Admission, exc: BaseException, start: float | None
    ) -> None:
        backend.record(admission, self.classify_exception(exc), self.elapsed(start))

    def record_response(
        self, backend: BreakerBackend, admission: Admission, status: int, start: float | None
    ) -> None:
        backend.record(admission, self.classify_status(status), self.elapsed(start))


class BreakerTransport(httpx.BaseTransport):
    """A sync httpx transport with a breaker per host, route or custom key."""

    def __init__(
        self,
        transport: httpx.BaseTransport | None = None,
        *,
        key: Literal["host", "route"] | KeyFunction = "host",
        routes: Iterable[str] = (),
        unmatched: Literal["breaker", "bypass"] = "breaker",
        registry: BreakerRegistry | None = None,
        classifier: FailureClassifier | None = None,
    ) -> None:
        self._transport = transport or httpx.HTTPTransport()
        self._guard = _Guard(key, routes, unmatched, registry, classifier)

    @property
    def registry(self) -> BreakerRegistry:
        return self._guard.registry

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        guard = self._guard
        name = guard.name_of(request)
        if name is None:
            return self._transport.handle_request(request)
        backend = guard.backend(name)
        admission = backend.admit()
        if not admission.allowed:
            raise guard.rejected(name, admission, request)
        start = guard.start(backend)
        try:
            response = self._transport.handle_request(request)
        except BaseException as exc:
            guard.record_error(backend, admission, exc, start)
            raise
        guard.record_response(backend, admission, response.status_code, start)
        return response

    def close(self) -> None:
        self._transport.close()


class AsyncBreakerTransport(httpx.AsyncBaseTransport):
    """An async httpx transport with a breaker per host, route or custom key."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        key: Literal["host", "route"] | KeyFunction = "host",
        routes: Iterable[str] = (),
        unmatched: Literal["breaker", "bypass"] = "breaker",
        registry: BreakerRegistry | None = None,
        classifier: FailureClassifier | None = None,
    ) -> None:
        self._transport = transport or httpx.AsyncHTTPTransport()
        self._guard = _Guard(key, routes, unmatched, registry, classifier)

    @property
    def registry(self) -> BreakerRegistry:
        return self._guard.registry

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        guard = self._guard
        name = guard.name_of(request)
        if name is None:
            return await self._transport.handle_async_request(request)
        backend = guard.backend(name)
        if isinstance(backend, LocalBreaker):
            admission = backend.admit()
        else:
            admission = await backend.admit_async()
        if not admission.allowed:
            raise guard.rejected(name, admission, request)
        start = guard.start(backend)
        try:
            response = await self._transport.handle_async_request(request)
        except BaseException as exc:
            guard.record_error(backend, admission, exc, start)
            raise
        guard.record_response(backend, admission, response.status_code, start)
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()
