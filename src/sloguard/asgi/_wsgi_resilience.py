"""The protection layers of :class:`~sloguard.asgi.WSGIGuard`: shedding, rate
limits and inbound breakers for WSGI apps (Flask, Django).

They run the same cores as the ASGI layers (``_shed_layer``, ``_limit_layer``,
``_breaker_layer``), built once by :class:`ResilienceLayer`, in the same
order, and refuse the same way (problem+json with the request id, the code
marked on the request context, ``Retry-After`` and ``RateLimit`` headers).
What differs is the end of a request: a WSGI response is an iterable the
server consumes and then closes (PEP 3333), so a shed token is released and
a breaker outcome recorded when that iterable is closed, or when the app or
the iteration raises. The status is whatever the app last passed to
``start_response``. A body the server drops without closing gives its place
back when it is collected, as neither success nor failure.

Every call here is blocking by design: the limiter's Redis store has a
blocking client bounded by its timeout, and a Redis-shared breaker waits (at
most its timeout) only to take a half-open probe.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from http import HTTPStatus
from typing import Any, overload

from sloguard.asgi._breaker_layer import (
    REFUSED_CODE,
    REFUSED_DETAIL,
    InboundBreakers,
    retry_after,
)
from sloguard.asgi._limit_layer import RateLimits, count_decisions, refusal
from sloguard.asgi._reject import mark_refused
from sloguard.asgi._resilience_stack import ResilienceLayer
from sloguard.asgi._shed_layer import ShedLayer, shed_outcome
from sloguard.context import current_request
from sloguard.errors import lookup, problem_body, problem_response_headers
from sloguard.resilience._client_ip import ClientIPResolver, normalize_ip
from sloguard.resilience._limit_keys import RequestInfo, principal_id
from sloguard.resilience._priority import ShedDecision
from sloguard.resilience._ratelimit import RateLimiter
from sloguard.resilience._types import Outcome
from sloguard.routing import UNMATCHED

__all__ = [
    "WSGIBreakerMiddleware",
    "WSGILimitMiddleware",
    "WSGIShedMiddleware",
    "close_wsgi",
    "wrap_wsgi",
]

log = logging.getLogger("sloguard.resilience")

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
#: called once when a response ends: the last status (0: none) and what ended it
Finish = Callable[[int, BaseException | None], None]


def wrap_wsgi(layer: ResilienceLayer, app: WSGIApp, *, inner: bool) -> WSGIApp:
    """``app`` wrapped in the layers that run after auth (``inner``) or before it."""
    if inner:
        if layer.breakers is not None:
            app = WSGIBreakerMiddleware(app, layer.breakers)
        if layer.limits is not None and layer.limits.after is not None:
            app = WSGILimitMiddleware(app, layer.limits, layer.limits.after)
        return app
    if layer.limits is not None and layer.limits.before is not None:
        app = WSGILimitMiddleware(app, layer.limits, layer.limits.before)
    if layer.shedder is not None:
        app = WSGIShedMiddleware(app, layer.shedder, layer.settings.shedding, layer.registry)
    return app


def close_wsgi(layer: ResilienceLayer) -> None:
    """Close the breakers and the limiter store's blocking client."""
    if layer.limits is not None:
        close = getattr(layer.limits.store, "close_sync", None)
        if close is not None:
            close()
    layer.close()


class _Abandoned(BaseException):
    """The server dropped a response body without closing it (not an ``Exception``:
    every layer counts such an ending as neither success nor failure)."""


class _WatchedBody:
    """The app's response iterable, calling ``finish`` exactly once when it ends."""

    __slots__ = ("_body", "_done", "_finish", "_status")

    def __init__(self, body: Iterable[bytes], status: list[int], finish: Finish) -> None:
        self._body = body
        self._status = status
        self._finish = finish
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._body
        except Exception as exc:
            self._end(exc)
            raise

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        except Exception as exc:
            self._end(exc)
            raise
        finally:
            self._end(None)

    def __del__(self) -> None:
        self._end(_Abandoned())

    def _end(self, exc: BaseException | None) -> None:
        if not self._done:
            self._done = True
            self._finish(self._status[0], exc)


def call_watched(
    app: WSGIApp,
    environ: dict[str, Any],
    start_response: StartResponse,
    finish: Finish,
) -> Iterable[bytes]:
    """Run ``app``; ``finish`` is called when its response ends, however it ends."""
    status = [0]

    def watching_start_response(
        status_line: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Any:
        code = status_line[:3]
        status[0] = int(code) if code.isdigit() else 500
        return start_response(status_line, headers, exc_info)

    try:
        body = app(environ, watching_start_response)
    except BaseException as exc:
        finish(status[0], exc)
        raise
    return _WatchedBody(body, status, finish)


def refuse(
    start_response: StartResponse, code: str, detail: str, headers: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    """Answer a refusal from a protection layer as problem+json (see ``_reject``)."""
    request_id = mark_refused(code, detail)
    body = problem_body(code, detail, request_id=request_id)
    response_headers = [(k.decode(), v.decode()) for k, v in problem_response_headers(body)]
    response_headers.extend(headers)
    log.info("request refused: %s", code, extra={"code": code, "reason": detail})
    start_response(_status_line(lookup(code).status), response_headers)
    return [body]


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _current_route() -> str:
    ctx = current_request()
    return ctx.route if ctx is not None and ctx.route else UNMATCHED


class WSGIShedMiddleware(ShedLayer[WSGIApp]):
    """Asks the shedder before the request; the token goes back when the response ends.

    As in ASGI: a 503/504 from the app counts as a drop for the adaptive
    limit, an exception or an abandoned body gives the place back without a
    latency sample.
    """

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        route = _current_route()
        admitted = self.shedder.admit(route, self.priority_of(route))
        if isinstance(admitted, ShedDecision):
            return refuse(
                start_response,
                admitted.code,
                admitted.detail,
                [("Retry-After", admitted.retry_after_header)],
            )

        def finish(status: int, exc: BaseException | None) -> None:
            if exc is not None or status == 0:
                admitted.release(Outcome.IGNORED)
            else:
                admitted.release(shed_outcome(status))

        return call_watched(self.app, environ, start_response, finish)


class _EnvironHeaders(Sequence[tuple[bytes, bytes]]):
    """The request headers as ASGI-style lower-case byte pairs, built only when a
    key function reads them (most limits key on the client, principal or route,
    and building the list costs about as much as the limiter's decision)."""

    __slots__ = ("_environ", "_items")

    def __init__(self, environ: dict[str, Any]) -> None:
        self._environ = environ
        self._items: list[tuple[bytes, bytes]] | None = None

    def _built(self) -> list[tuple[bytes, bytes]]:
        items = self._items
        if items is None:
            items = []
            for key, value in self._environ.items():
                if key.startswith("HTTP_"):
                    name = key[5:].lower().replace("_", "-")
                elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                    name = key.lower().replace("_", "-")
                else:
                    continue
                if isinstance(value, str):
                    # PEP 3333 header values are bytes decoded as latin-1
                    items.append((name.encode("latin-1"), value.encode("latin-1", "replace")))
            self._items = items
        return items

    @overload
    def __getitem__(self, index: int) -> tuple[bytes, bytes]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[bytes, bytes]]: ...

    def __getitem__(
        self, index: int | slice
    ) -> tuple[bytes, bytes] | Sequence[tuple[bytes, bytes]]:
        return self._built()[index]

    def __len__(self) -> int:
        return len(self._built())

    def __iter__(self) -> Iterator[tuple[bytes, bytes]]:
        return iter(self._built())


@functools.lru_cache(maxsize=4096)
def _peer_ip(peer: str) -> str | None:
    """The peer address normalised; cached, as parsing it is a third of the layer's cost."""
    return normalize_ip(peer)


def request_info(environ: dict[str, Any], resolver: ClientIPResolver) -> RequestInfo:
    """What the limits' key functions see of a WSGI request (headers lower-case bytes)."""
    peer = environ.get("REMOTE_ADDR")
    forwarded = None
    if resolver.honours_headers:
        forwarded = environ.get("HTTP_" + resolver.header.upper().replace("-", "_"))
    if forwarded:
        client_ip = resolver.resolve(peer, (forwarded,))
    else:
        client_ip = _peer_ip(peer) if peer else None
    # PEP 3333 paths are bytes decoded as latin-1; ASGI's are UTF-8 text
    raw_path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
    ctx = current_request()
    return RequestInfo(
        method=environ.get("REQUEST_METHOD", "GET"),
        path=raw_path.encode("latin-1", "replace").decode("utf-8", "replace") or "/",
        route=ctx.route if ctx is not None else "",
        client_ip=client_ip,
        headers=_EnvironHeaders(environ),
        principal=principal_id(ctx.principal) if ctx is not None else None,
        tenant=ctx.tenant if ctx is not None else None,
    )


class WSGILimitMiddleware:
    """Checks the limits before the app; adds the ``RateLimit`` headers to its answer."""

    def __init__(self, app: WSGIApp, limits: RateLimits, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter
        self.resolver = limits.resolver
        self.metrics = limits.metrics

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        result = self.limiter.check_sync(request_info(environ, self.resolver))
        if self.metrics is not None:
            count_decisions(self.metrics, result.decisions)
        if not result.allowed:
            code, (status, headers, body) = refusal(result)
            log.info("request refused: %s", code, extra={"code": code, "reason": "rate limited"})
            start_response(
                _status_line(status),
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers],
            )
            return [body]
        extra = result.headers()
        if not extra:
            return self.app(environ, start_response)

        def start_with_headers(
            status_line: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            return start_response(status_line, [*headers, *extra], exc_info)

        return self.app(environ, start_with_headers)


class WSGIBreakerMiddleware:
    """Asks the route's breaker before the app; records the outcome when the response ends.

    A status in the breaker's ``failure_statuses`` or an exception from the
    app or its body counts as a failure (per the classifier); an abandoned
    body counts as neither. The response itself is never changed.
    """

    def __init__(self, app: WSGIApp, breakers: InboundBreakers) -> None:
        self.app = app
        self.breakers = breakers

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        found = self.breakers.for_route(_current_route())
        if found is None:
            return self.app(environ, start_response)
        backend, classifier = found
        admission = backend.admit()
        if not admission.allowed:
            return refuse(
                start_response,
                REFUSED_CODE,
                REFUSED_DETAIL,
                [("Retry-After", retry_after(admission))],
            )
        started = time.monotonic()

        def finish(status: int, exc: BaseException | None) -> None:
            if exc is not None:
                outcome = classifier.classify_exception(exc)
            elif status == 0:
                outcome = Outcome.IGNORED
            else:
                outcome = classifier.classify_status(status)
            backend.record(admission, outcome, time.monotonic() - started)

        return call_watched(self.app, environ, start_response, finish)
