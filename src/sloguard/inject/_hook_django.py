"""Django under ``sloguard run``: its WSGI and ASGI handlers go through guard_wsgi() / guard().

``WSGIHandler.__call__`` and ``ASGIHandler.__call__`` are replaced on the
classes, so the handler ``get_wsgi_application()`` / ``get_asgi_application()``
returns -- whenever it was made -- is guarded at its first request.

Django declares its routes in the URLconf, not on the handler, so the guard
gets them from there (``path()`` routes; ``re_path()`` regexes have no
template and are left to the route table's fallback) unless
``routing.templates`` lists them already.
"""

from __future__ import annotations

import importlib
import logging
import re
import types
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sloguard.inject._frameworks import Hook
from sloguard.inject._hook_flask import guard_wsgi_class
from sloguard.inject._hook_starlette import guard_asgi_class

if TYPE_CHECKING:
    from sloguard.inject._frameworks import Installation
    from sloguard.settings import Settings

__all__ = ["DJANGO_HOOKS", "django_templates"]

_log = logging.getLogger("sloguard.inject")
_CONVERTER = re.compile(r"<(?:(\w+):)?(\w+)>")
_CONVERTERS = {"int": ":int", "path": ":path", "uuid": ":uuid"}
_MAX_DEPTH = 32


def django_templates(patterns: Iterable[Any]) -> tuple[str, ...]:
    """Route templates, in sloguard's ``{name:conv}`` syntax, of Django URL patterns."""
    found: list[str] = []
    _collect(patterns, "/", found, 0)
    return tuple(dict.fromkeys(found))


def _collect(patterns: Iterable[Any], prefix: str, found: list[str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    for entry in patterns:
        pattern = getattr(entry, "pattern", None)
        if type(pattern).__name__ != "RoutePattern":
            continue  # re_path() regexes, locale prefixes: no template to read
        route = prefix + _CONVERTER.sub(_template_part, str(pattern))
        nested = getattr(entry, "url_patterns", None)
        if nested is not None:
            _collect(nested, route, found, depth + 1)
        else:
            found.append(route)


def _template_part(match: re.Match[str]) -> str:
    converter, name = match.group(1) or "str", match.group(2)
    return "{" + name + _CONVERTERS.get(converter, "") + "}"


def _settings_for(inst: Installation) -> Settings:
    settings = inst.settings
    if settings.routing.templates:
        return settings
    try:
        urls = importlib.import_module("django.urls")
        templates = django_templates(urls.get_resolver().url_patterns)
    except Exception:  # a broken URLconf is Django's error to report, at the request
        _log.warning("sloguard: could not read Django's URLconf for route templates", exc_info=True)
        return settings
    routing = settings.routing.model_copy(update={"templates": templates})
    return settings.model_copy(update={"routing": routing})


def _install_wsgi(module: types.ModuleType, inst: Installation) -> str:
    guard_wsgi_class(inst, module.WSGIHandler, lambda app: None, lambda app: _settings_for(inst))
    return "WSGIHandler.__call__: the handler wrapped in guard_wsgi() at its first request"


def _install_asgi(module: types.ModuleType, inst: Installation) -> str:
    guard_asgi_class(inst, module.ASGIHandler, lambda app: None, lambda app: _settings_for(inst))
    return "ASGIHandler.__call__: the handler wrapped in guard() at its first request"


DJANGO_HOOKS = (
    Hook(
        "django",
        "django.core.handlers.wsgi.WSGIHandler",
        "django.core.handlers.wsgi",
        _install_wsgi,
    ),
    Hook(
        "django",
        "django.core.handlers.asgi.ASGIHandler",
        "django.core.handlers.asgi",
        _install_asgi,
    ),
)
