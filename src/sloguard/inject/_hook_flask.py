"""Flask under ``sloguard run``: each application's WSGI entry goes through guard_wsgi().

``Flask.__call__`` is replaced on the class, so an application made before
the hook (``from flask import Flask`` first) is covered as well. Flask's own
``__call__`` only calls ``self.wsgi_app``, the attribute users wrap with WSGI
middleware; guarding at ``__call__`` keeps such middleware inside the guard,
as ``guard_wsgi(app)`` would.

An application whose ``wsgi_app`` the user already replaced with
``guard_wsgi(app.wsgi_app)`` (Flask's middleware idiom) is left alone, and
the guard's own call into the application passes through (the environ is
marked).
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sloguard.context import current_request
from sloguard.inject._frameworks import (
    AppEntries,
    Hook,
    bridge_process_metrics,
    guarded_by_user,
)

if TYPE_CHECKING:
    from sloguard.asgi.wsgi import StartResponse, WSGIGuard
    from sloguard.inject._frameworks import Installation
    from sloguard.settings import Settings

__all__ = ["ENVIRON_MARK", "FLASK_HOOKS", "guard_wsgi_class", "wsgi_guard_options"]

ENVIRON_MARK = "sloguard.hooked"


def wsgi_guard_options(inst: Installation) -> dict[str, Any]:
    """The installation's guard options that ``WSGIGuard`` accepts (it may lack some)."""
    from sloguard.asgi.wsgi import WSGIGuard

    accepted = inspect.signature(WSGIGuard).parameters
    options = {k: v for k, v in inst.guard_options.items() if k in accepted}
    return {**options, **inst.wsgi_options}


def guard_wsgi_class(
    inst: Installation,
    cls: Any,
    skip: Callable[[Any], str | None],
    settings_for: Callable[[Any], Settings] | None = None,
) -> None:
    """Patch ``cls.__call__`` so each instance is served through its own WSGI guard."""
    from sloguard.asgi.wsgi import WSGIGuard

    original = cls.__call__
    options = wsgi_guard_options(inst)

    def build(app: Any) -> WSGIGuard:
        settings = settings_for(app) if settings_for is not None else inst.settings
        guarded = WSGIGuard(app, settings, **options)
        bridge_process_metrics(guarded.registry)
        return guarded

    def skipped(app: Any) -> str | None:
        return skip(app) or guarded_by_user(app, app.__dict__.get("wsgi_app"))

    entries = AppEntries(inst, build, lambda app: functools.partial(original, app), skipped)

    @functools.wraps(original)
    def hooked_call(
        self: Any, environ: dict[str, Any], start_response: StartResponse
    ) -> Iterable[bytes]:
        if ENVIRON_MARK in environ or current_request() is not None:
            result: Iterable[bytes] = original(self, environ, start_response)
            return result
        environ[ENVIRON_MARK] = True
        entry: Callable[[dict[str, Any], StartResponse], Iterable[bytes]] = entries.entry(self)
        return entry(environ, start_response)

    inst.patch(cls, "__call__", hooked_call)


def _install(module: types.ModuleType, inst: Installation) -> str:
    guard_wsgi_class(inst, module.Flask, lambda app: None)
    return "Flask.__call__: each application wrapped in guard_wsgi() at first call"


FLASK_HOOKS = (Hook("flask", "flask.app.Flask", "flask.app", _install),)
