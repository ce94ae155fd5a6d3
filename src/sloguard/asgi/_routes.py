"""Route templates read out of a Starlette or FastAPI application.

The middleware labels metrics and checks rules by route template, and the
application already declares its templates. :func:`templates_from_app` reads
them so a user need not repeat them, without importing Starlette: it walks
any object shaped like Starlette's routing tree.

* An application is unwrapped through middleware layers (objects with an
  ``.app``) until something has ``.routes`` (a Starlette or FastAPI app, a
  ``Router``) or ``.router.routes``.
* A route with a ``.path`` (``Route``, ``APIRoute``, ``WebSocketRoute``)
  contributes that path -- Starlette keeps the template there.
* A ``Mount`` (a ``.path`` plus ``.routes``) prefixes its path to the routes
  of the application it wraps; one wrapping something with no routes at all
  (``StaticFiles``, a WSGI app) contributes ``prefix/{path:path}``.
* A ``Host`` (a ``.host`` plus an ``.app``) contributes its application's
  routes unprefixed: templates describe paths, not hosts.
* FastAPI's lazily included routers (an ``.original_router`` plus an
  ``.include_context.prefix``, as recent FastAPI releases build them)
  contribute their router's routes under the include prefix.

Anything else is skipped; an application with no routing tree gives ``()``.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["templates_from_app"]

_MAX_DEPTH = 64


def templates_from_app(app: object) -> tuple[str, ...]:
    """Every route template ``app`` declares, mounts prefixed, in routing order, once each."""
    return tuple(dict.fromkeys(template for template, _ in endpoints_from_app(app)))


def endpoints_from_app(app: object) -> list[tuple[str, object]]:
    """(template, endpoint) for every route; the endpoint is None for a mounted app."""
    found: list[tuple[str, object]] = []
    routes = _routes_of(app)
    if routes is not None:
        _collect(routes, "", found, depth=0)
    return found


def _collect(
    routes: Sequence[object], prefix: str, found: list[tuple[str, object]], *, depth: int
) -> None:
    if depth > _MAX_DEPTH:
        return
    for route in routes:
        path = _attribute(route, "path")
        if isinstance(path, str) and _attribute(route, "routes") is not None:
            inner = _routes_of(_attribute(route, "app"))
            if inner is None:
                found.append((f"{prefix}{path}/{{path:path}}", None))
            else:
                _collect(inner, prefix + path, found, depth=depth + 1)
        elif isinstance(path, str):
            found.append((prefix + path, _attribute(route, "endpoint")))
        elif isinstance(_attribute(route, "host"), str):
            inner = _routes_of(_attribute(route, "app"))
            if inner is not None:
                _collect(inner, prefix, found, depth=depth + 1)
        else:
            included = _routes_of(_attribute(route, "original_router"))
            include_prefix = _attribute(_attribute(route, "include_context"), "prefix")
            if included is not None and isinstance(include_prefix, str):
                _collect(included, prefix + include_prefix, found, depth=depth + 1)


def _routes_of(app: object) -> Sequence[object] | None:
    """The route list of ``app`` or of the first app beneath its middleware layers."""
    seen: set[int] = set()
    while app is not None and id(app) not in seen and len(seen) < _MAX_DEPTH:
        seen.add(id(app))
        for holder in (app, _attribute(app, "router")):
            routes = _attribute(holder, "routes")
            if isinstance(routes, Sequence) and not isinstance(routes, str | bytes):
                return routes
        app = _attribute(app, "app")
    return None


def _attribute(obj: object, name: str) -> object:
    # A foreign object's property may raise anything; such an object has no routes for us.
    try:
        return getattr(obj, name, None)
    except Exception:
        return None
