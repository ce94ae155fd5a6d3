"""The observe stack for WSGI applications (Flask, Django's WSGI handler).

Built on the same :class:`Observer` as the ASGI middleware, so a Flask
service gets the same spans, metrics, logs and SLI records. The request ends
when the server closes the response iterable (PEP 3333), so streamed bodies
are timed to their last byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from prometheus_client import CollectorRegistry

from sloguard._marker import mark_guarded
from sloguard.asgi._auth_stack import AuthLayer, permissions_from_routes
from sloguard.asgi._observer import Observation, Observer
from sloguard.asgi._resilience_stack import ResilienceLayer
from sloguard.asgi._stack import Stack
from sloguard.asgi._wsgi_resilience import close_wsgi, wrap_wsgi
from sloguard.settings import Settings, load_settings

__all__ = ["WSGIGuard", "guard_wsgi"]

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _environ_headers(names: Iterable[str]) -> dict[str, str]:
    """WSGI environ keys (``HTTP_USER_AGENT``) for header names (``user-agent``)."""
    return {"HTTP_" + name.upper().replace("-", "_"): name for name in names}


class _ObservedBody:
    """Counts body bytes and ends the observation when the server closes it."""

    __slots__ = ("_body", "_done", "_obs", "_observer", "_state")

    def __init__(
        self, body: Iterable[bytes], observer: Observer, obs: Observation, state: list[int]
    ) -> None:
        self._body = body
        self._observer = observer
        self._obs = obs
        self._state = state
        self._done = False

    def __iter__(self) -> Iterator[bytes]:
        # The request's context is bound while the body is produced (a streamed
        # body's log lines keep their ids) and unbound between server writes.
        self._observer.rebind(self._obs)
        try:
            for chunk in self._body:
                self._state[1] += len(chunk)
                yield chunk
        except Exception as exc:
            self._finish(exc)
            raise
        finally:
            if not self._done:
                self._observer.unbind(self._obs)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._finish(None)

    def _finish(self, exc: BaseException | None) -> None:
        if not self._done:
            self._done = True
            status = self._state[0] or 500
            if exc is not None:
                status = max(status, 500)
            self._observer.end(self._obs, status, self._state[1], exc)


class WSGIGuard:
    """A WSGI application wrapped in the observe stack, serving ``/metrics`` too."""

    def __init__(
        self,
        app: WSGIApp,
        settings: Settings | None = None,
        *,
        settings_path: str | Path | None = None,
        registry: CollectorRegistry | None = None,
        span_processors: Sequence[SpanProcessor] = (),
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.settings = cfg = settings if settings is not None else load_settings(settings_path)
        self.wrapped = app
        mark_guarded(app)
        self.stack = Stack(
            cfg,
            flask_templates(app),
            registry=registry,
            span_processors=span_processors,
            tracer_provider=tracer_provider,
        )
        self.registry = self.stack.registry
        self.metrics = self.stack.metrics
        self.recorder = self.stack.recorder
        self.flusher = self.stack.flusher
        self.observer = self.stack.observer
        self._headers = _environ_headers(self.observer.interesting)
        self._metrics_path = cfg.metrics.path if cfg.metrics.enabled else None
        self._excluded = frozenset(cfg.metrics.exclude_paths)
        self._echo = self.observer.echo_request_id
        self._request_id_header = self.observer.request_id_header
        self.auth: AuthLayer | None = None
        self.resilience: ResilienceLayer | None = None
        inner: WSGIApp = app
        if cfg.resilience.enabled:
            self.resilience = ResilienceLayer(cfg.resilience, self.registry)
            inner = wrap_wsgi(self.resilience, inner, inner=True)
        if cfg.auth.enabled:
            self.auth = AuthLayer(
                cfg.auth,
                self.registry,
                route_permissions=permissions_from_routes(flask_endpoints(app)),
            )
            inner = self.auth.wsgi(inner)
        if self.resilience is not None:
            inner = wrap_wsgi(self.resilience, inner, inner=False)
        self._inner = inner

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "") or "/"
        if path == self._metrics_path:
            body, content_type = self.stack.scrape(environ.get("HTTP_ACCEPT"))
            start_response(
                "200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))]
            )
            return [body]
        if path in self._excluded:
            return self.wrapped(environ, start_response)
        max_header = self.observer.max_header
        headers = {
            name: value
            for key, name in self._headers.items()
            if (value := environ.get(key)) is not None and len(value) <= max_header
        }
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        raw_path = raw.split("?", 1)[0] if raw else environ.get("SCRIPT_NAME", "") + path
        port = environ.get("SERVER_PORT")
        obs = self.observer.begin(
            environ.get("REQUEST_METHOD", "GET"),
            raw_path.encode("latin-1", "replace"),
            environ.get("QUERY_STRING", "").encode("latin-1", "replace"),
            headers,
            environ.get("REMOTE_ADDR"),
            environ.get("wsgi.url_scheme", "http"),
            (environ.get("SERVER_NAME", ""), int(port) if port and port.isdigit() else None),
            environ.get("SERVER_PROTOCOL", "HTTP/1.1").removeprefix("HTTP/"),
        )
        state = [0, 0]
        echo = (self._request_id_header, obs.request_id) if self._echo else None

        def observed_start_response(
            status: str, response_headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
        ) -> Callable[[bytes], object]:
            code = status[:3]
            state[0] = int(code) if code.isdigit() else 500
            if echo is not None:
                response_headers = [*response_headers, echo]
            write = start_response(status, response_headers, exc_info)

            def counted_write(data: bytes) -> object:
                state[1] += len(data)
                return write(data)

            return counted_write

        try:
            result = self._inner(environ, observed_start_response)
        except Exception as exc:
            self.observer.end(obs, 500, state[1], exc)
            raise
        # Nothing of this request stays bound to the server's thread after the
        # call returns, even if the server never iterates or closes the body.
        self.observer.unbind(obs)
        return _ObservedBody(result, self.observer, obs, state)

    def close(self) -> None:
        """Flush SLI counts and spans, release resources. Idempotent."""
        if self.auth is not None:
            self.auth.close()
        if self.resilience is not None:
            close_wsgi(self.resilience)
        self.stack.close()


def flask_endpoints(app: object) -> list[tuple[str, object]]:
    """(template, view function) for each Flask rule, for ``@requires`` marks."""
    url_map = getattr(app, "url_map", None)
    views = getattr(app, "view_functions", None)
    rules = getattr(url_map, "iter_rules", None)
    if rules is None or not isinstance(views, dict):
        return []
    templates = flask_templates(app)
    return [
        (template, views.get(rule.endpoint))
        for template, rule in zip(templates, rules(), strict=False)
    ]


def flask_templates(app: object) -> tuple[str, ...]:
    """Route templates of a Flask app, in sloguard's ``{name}`` syntax."""
    url_map = getattr(app, "url_map", None)
    rules = getattr(url_map, "iter_rules", None)
    if rules is None:
        return ()
    out = []
    for rule in rules():
        text = str(rule.rule)
        # Flask's <int:id> / <path:p> become {id:int} / {p:path}
        parts = []
        for segment in text.split("/"):
            if segment.startswith("<") and segment.endswith(">"):
                inner = segment[1:-1]
                conv, _, name = inner.rpartition(":")
                conv = {
                    "string": "",
                    "default": "",
                    "int": "int",
                    "float": "float",
                    "path": "path",
                    "uuid": "uuid",
                }.get(conv, "")
                parts.append("{" + name + (f":{conv}" if conv else "") + "}")
            else:
                parts.append(segment)
        out.append("/".join(parts))
    return tuple(out)


def guard_wsgi(app: WSGIApp, settings: Settings | None = None, **options: Any) -> WSGIGuard:
    """Wrap a WSGI ``app`` in the observe stack (idempotent)."""
    if isinstance(app, WSGIGuard):
        return app
    return WSGIGuard(app, settings, **options)
