"""Framework and client hooks for ``sloguard run``: lazy, import-order-proof, undoable.

Each hook waits (:func:`~sloguard.inject._hooks.when_imported`) for the
module that defines what it patches and never imports a library itself, so a
process pays only for what the application imports. Patches go on classes,
not on module attributes: ``from starlette.applications import Starlette``
binds the class, and a class attribute set later still reaches every
instance and subclass, whenever they were made. That is the import-order bug
``opentelemetry-instrument`` has (it replaces ``flask.Flask`` with a subclass,
which a ``from flask import Flask`` done first never sees).

Server frameworks (Starlette/FastAPI, Flask, Django) get their application
wrapped in ``guard()`` / ``guard_wsgi()`` lazily, at the application's first
call, when its routes exist; clients (httpx, requests, aiohttp) get client
spans and trace propagation; executors carry the request context.

Twice is never: an application the user already passed to ``guard()`` is left
alone (``sloguard.asgi`` marks what a guard wraps), an application mounted inside a
hooked one passes through (the outer one marks the scope), and a client whose
transport sloguard already traces is not traced again.

:class:`Installation` holds one installation's state and undoes it: every
class attribute it set is restored, every guard it built is closed. Tests
use that; ``sloguard run`` keeps its installation for the process's life.
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
import types
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sloguard._marker import GUARDED_MARKER
from sloguard.inject._explain import Report
from sloguard.inject._hooks import when_imported

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from sloguard.settings import Settings

__all__ = [
    "AppEntries",
    "Hook",
    "Installation",
    "Skip",
    "all_hooks",
    "framework_off",
    "guarded_by_user",
    "install_framework_hooks",
    "installation",
    "layers",
    "uninstall_framework_hooks",
]

_log = logging.getLogger("sloguard.inject")
_MISSING = object()
_MAX_LAYERS = 32
_ENTRY = "_sloguard_entry"


class Skip(Exception):
    """Raised by a hook that decides not to patch; ``why`` goes into the report."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


@dataclass(frozen=True, slots=True)
class Hook:
    """One hook: the module it waits for, and what it does to it.

    ``name`` is its ``inject.frameworks`` entry. ``install(module,
    installation)`` patches and returns how (for the report), or raises
    :class:`Skip`. ``unwanted(settings)`` returns why the settings switch the
    hook off, or None; by default, ``name`` left out of ``inject.frameworks``.
    """

    name: str
    target: str
    module: str
    install: Callable[[types.ModuleType, Installation], str]
    unwanted: Callable[[Settings], str | None] | None = None

    def why_off(self, settings: Settings) -> str | None:
        if self.unwanted is not None:
            return self.unwanted(settings)
        return framework_off(settings, self.name)


class Installation:
    """The patches and guards of one :func:`install_framework_hooks` call, undoable.

    ``guard_options`` / ``wsgi_options`` go to ``Guard`` / ``WSGIGuard`` as
    keyword arguments (the bootstrap's tracer provider; tests pass span
    processors). ``tracer`` is the client spans' tracer; None resolves the
    global tracer at each request.
    """

    def __init__(
        self,
        settings: Settings,
        report: Report,
        *,
        guard_options: dict[str, Any] | None = None,
        wsgi_options: dict[str, Any] | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.settings = settings
        self.report = report
        self.guard_options = (
            guard_options if guard_options is not None else _bootstrap_guard_options()
        )
        self.wsgi_options = wsgi_options if wsgi_options is not None else {}
        self.tracer = tracer
        self.active = True
        self.lock = threading.RLock()
        self._patches: list[tuple[Any, str, object]] = []
        self._guards: list[Any] = []
        self._undos: list[Callable[[], None]] = []
        self._entries: weakref.WeakSet[Any] = weakref.WeakSet()

    def install(self, hooks: tuple[Hook, ...]) -> None:
        """Register each wanted hook; report the unwanted ones as skipped."""
        for hook in hooks:
            why = hook.why_off(self.settings)
            if why is not None:
                self.report.skipped(hook.target, why)
                continue
            when_imported(hook.module, functools.partial(self._fire, hook))

    def _fire(self, hook: Hook, module: types.ModuleType) -> None:
        # A hook registered by an undone installation may still fire later:
        # the post-import finder cannot forget one callback.
        if not self.active:
            return
        try:
            how = hook.install(module, self)
        except Skip as skip:
            self.report.skipped(hook.target, skip.why)
            return
        except Exception as exc:  # an unexpected library version: run it uninstrumented
            _log.warning("sloguard: hook for %s failed", hook.target, exc_info=True)
            self.report.failed(hook.target, f"{type(exc).__name__}: {exc}")
            return
        self.report.instrumented(hook.target, how)

    def patch(self, owner: Any, name: str, value: object) -> None:
        """Set ``owner.name`` (a class attribute) and remember how to restore it."""
        with self.lock:
            self._patches.append((owner, name, owner.__dict__.get(name, _MISSING)))
            setattr(owner, name, value)

    def on_undo(self, undo: Callable[[], None]) -> None:
        """Run ``undo`` at :meth:`undo`, for a change that is not a class attribute."""
        with self.lock:
            self._undos.append(undo)

    def keep(self, guarded: Any) -> None:
        """Close ``guarded`` (a Guard or WSGIGuard this installation built) at undo or exit."""
        with self.lock:
            self._guards.append(guarded)
        atexit.register(guarded.close)

    def guards(self) -> tuple[Any, ...]:
        """The guards this installation built, in the order it built them."""
        with self.lock:
            return tuple(self._guards)

    def remember_entry(self, app: object) -> None:
        self._entries.add(app)

    def undo(self) -> None:
        """Restore every patched attribute (last first) and close every guard built."""
        self.active = False
        with self.lock:
            patches, self._patches = self._patches, []
            guards, self._guards = self._guards, []
            undos, self._undos = self._undos, []
            entries = list(self._entries)
            self._entries = weakref.WeakSet()
        for owner, name, original in reversed(patches):
            if original is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        for undo in reversed(undos):
            undo()
        for app in entries:
            app.__dict__.pop(_ENTRY, None)
        for guarded in guards:
            atexit.unregister(guarded.close)
            guarded.close()
            # the guard marked the application it wrapped; the next installation may wrap it
            vars(guarded.wrapped).pop(GUARDED_MARKER, None)


def layers(app: object) -> Iterator[object]:
    """``app``, the middleware layers under it (``.app``) and a bound method's owner."""
    seen: set[int] = set()
    current: object = app
    while current is not None and id(current) not in seen and len(seen) < _MAX_LAYERS:
        seen.add(id(current))
        yield current
        owner = getattr(current, "__self__", None)
        if owner is not None and not isinstance(owner, types.ModuleType):
            yield owner
        current = getattr(current, "app", None)


class AppEntries:
    """Each application's entry point, decided once, at its first call.

    The entry is a guard built around the application by ``build``, or the
    unpatched call when ``skip(app)`` gives a reason not to guard it (the
    user guarded it already, its framework is switched off). It is kept on
    the instance -- one dict lookup per request -- and removed at undo. The
    lock is this object's own: building a guard may import, and an import may
    be firing a hook on another thread.
    """

    def __init__(
        self,
        installation: Installation,
        build: Callable[[Any], Any],
        unhooked: Callable[[Any], Any],
        skip: Callable[[Any], str | None],
    ) -> None:
        self._installation = installation
        self._build = build
        self._unhooked = unhooked
        self._skip = skip
        self._lock = threading.Lock()

    def entry(self, app: Any) -> Any:
        found = app.__dict__.get(_ENTRY)
        if found is not None:
            return found
        installation = self._installation
        with self._lock:
            found = app.__dict__.get(_ENTRY)
            if found is not None:
                return found
            label = f"{type(app).__module__}.{type(app).__qualname__} instance"
            why = self._skip(app)
            if why is not None:
                found = self._unhooked(app)
                installation.report.skipped(label, why)
            else:
                try:
                    found = self._build(app)
                except Exception as exc:  # serve the application unguarded rather than not at all
                    _log.warning("sloguard: could not guard %s", label, exc_info=True)
                    found = self._unhooked(app)
                    installation.report.failed(label, f"{type(exc).__name__}: {exc}")
                else:
                    installation.keep(found)
                    installation.report.instrumented(label, f"wrapped in {type(found).__name__}")
            app.__dict__[_ENTRY] = found
            installation.remember_entry(app)
            return found


def guarded_by_user(*apps: object) -> str | None:
    """Why not to guard: a guard of the application's own wraps one of ``apps``.

    Either the guard marked what it wraps, or it sits among the layers (a
    Flask app whose ``wsgi_app`` the user replaced with ``guard_wsgi(...)``).
    """
    from sloguard.asgi import Guard, WSGIGuard

    for app in apps:
        for layer in layers(app):
            if getattr(layer, GUARDED_MARKER, False) is True or isinstance(
                layer, Guard | WSGIGuard
            ):
                return "already wrapped by guard() in the application"
    return None


def framework_off(settings: Settings, name: str) -> str | None:
    """Why a hook is off: ``inject.frameworks`` leaves ``name`` out."""
    if name in settings.inject.frameworks:
        return None
    return f"{name!r} is not in inject.frameworks"


#: families the bootstrap's parts (asyncio task tracking, live probes) keep on
#: prometheus_client's default registry; a hook-built guard serves them too
PROCESS_FAMILIES = ("sloguard_asyncio_", "sloguard_probe_")


def bridge_process_metrics(registry: Any) -> None:
    """Serve the process-wide task and probe families on ``registry`` (a guard's)."""
    from prometheus_client import REGISTRY
    from prometheus_client.registry import Collector

    if registry is REGISTRY:
        return

    class ProcessFamilies(Collector):
        def collect(self) -> Iterator[Any]:
            for family in REGISTRY.collect():
                if family.name.startswith(PROCESS_FAMILIES):
                    yield family

    registry.register(ProcessFamilies())


def _bootstrap_guard_options() -> dict[str, Any]:
    """Guard options from ``sloguard run``'s bootstrap: its tracer provider, if it made one."""
    from sloguard.inject import _bootstrap

    state = _bootstrap.state()
    if state is None or state.tracer_provider is None:
        return {}
    return {"tracer_provider": state.tracer_provider}


def all_hooks() -> tuple[Hook, ...]:
    """Every hook, in installation order (imported here: the hook modules import this one)."""
    from sloguard.inject._hook_clients import CLIENT_HOOKS
    from sloguard.inject._hook_django import DJANGO_HOOKS
    from sloguard.inject._hook_flask import FLASK_HOOKS
    from sloguard.inject._hook_logging import LOGGING_HOOKS
    from sloguard.inject._hook_starlette import STARLETTE_HOOKS

    return (
        *STARLETTE_HOOKS,
        *FLASK_HOOKS,
        *DJANGO_HOOKS,
        *CLIENT_HOOKS,
        *LOGGING_HOOKS,
    )


_installed: Installation | None = None
_install_lock = threading.Lock()


def install_framework_hooks(settings: Settings, report: Report, **options: Any) -> None:
    """Install every framework and client hook the settings want, once per process.

    ``options`` go to :class:`Installation` (``guard_options``, ``wsgi_options``,
    ``tracer``). A second call is reported as skipped.
    """
    global _installed
    with _install_lock:
        if _installed is not None:
            report.skipped("frameworks", "hooks already installed in this process")
            return
        _installed = Installation(settings, report, **options)
    _installed.install(all_hooks())


def installation() -> Installation | None:
    """The process's installation, None before :func:`install_framework_hooks`."""
    return _installed


def uninstall_framework_hooks() -> bool:
    """Undo :func:`install_framework_hooks`. Returns False if nothing was installed."""
    global _installed
    with _install_lock:
        current, _installed = _installed, None
    if current is None:
        return False
    current.undo()
    return True
