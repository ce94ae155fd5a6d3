"""Starlette and FastAPI under ``sloguard run``: each application's ASGI entry goes through guard().

``Starlette.__call__`` is replaced on the class, so every application --
made before or after the hook, FastAPI and other subclasses included (their
``__call__`` ends in ``super().__call__``) -- reaches it. At an application's
first call (the lifespan startup, usually) its guard is built with the
application's routes in place; later calls go straight to it.

The outermost application marks the scope, so an application mounted inside
a hooked one, and the application behind the guard itself, pass through to
Starlette's own ``__call__``. So does a call made inside a request that a
guard already observes.
"""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sloguard.context import current_request
from sloguard.inject._frameworks import (
    AppEntries,
    Hook,
    bridge_process_metrics,
    framework_off,
    guarded_by_user,
)

if TYPE_CHECKING:
    from sloguard.asgi._types import Receive, Scope, Send
    from sloguard.inject._frameworks import Installation
    from sloguard.settings import Settings

__all__ = ["SCOPE_MARK", "STARLETTE_HOOKS", "guard_asgi_class"]

SCOPE_MARK = "sloguard.hooked"


def guard_asgi_class(
    inst: Installation,
    cls: Any,
    skip: Callable[[Any], str | None],
    settings_for: Callable[[Any], Settings] | None = None,
) -> None:
    """Patch ``cls.__call__`` so each instance is served through its own guard, built once.

    ``skip(app)`` gives a reason to leave an instance unguarded;
    ``settings_for(app)`` the settings of its guard (default: the installation's).
    """
    from sloguard.asgi.guard import Guard

    original = cls.__call__

    def build(app: Any) -> Guard:
        settings = settings_for(app) if settings_for is not None else inst.settings
        guarded = Guard(app, settings, **inst.guard_options)
        bridge_process_metrics(guarded.registry)
        return guarded

    def skipped(app: Any) -> str | None:
        return skip(app) or guarded_by_user(app)

    entries = AppEntries(inst, build, lambda app: functools.partial(original, app), skipped)

    @functools.wraps(original)
    async def hooked_call(self: Any, scope: Scope, receive: Receive, send: Send) -> None:
        if SCOPE_MARK in scope or current_request() is not None:
            await original(self, scope, receive, send)
            return
        scope[SCOPE_MARK] = True
        await entries.entry(self)(scope, receive, send)

    inst.patch(cls, "__call__", hooked_call)


def _is_fastapi(app: object) -> bool:
    return any(klass.__module__.partition(".")[0] == "fastapi" for klass in type(app).__mro__)


def _install(module: types.ModuleType, inst: Installation) -> str:
    def skip(app: object) -> str | None:
        return framework_off(inst.settings, "fastapi" if _is_fastapi(app) else "starlette")

    guard_asgi_class(inst, module.Starlette, skip)
    return "Starlette.__call__: each application (FastAPI too) wrapped in guard() at first call"


def _unwanted(settings: Settings) -> str | None:
    if framework_off(settings, "starlette") and framework_off(settings, "fastapi"):
        return "neither 'starlette' nor 'fastapi' is in inject.frameworks"
    return None


STARLETTE_HOOKS = (
    Hook(
        "starlette",
        "starlette.applications.Starlette",
        "starlette.applications",
        _install,
        _unwanted,
    ),
)
