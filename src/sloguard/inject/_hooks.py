"""Post-import hooks: run a callback right after a module's first execution.

This is how ``sloguard run`` instruments a framework without importing it:
``when_imported("starlette.applications", patch)`` costs nothing until the
application itself imports Starlette, and then ``patch`` runs once, on the
fully executed module, before the import statement returns to the
application. So ``from starlette.applications import Starlette`` already sees
the patched class, whatever the import order (``opentelemetry-instrument``
patches eagerly at start-up, which is why ``from flask import Flask`` before
its instrumentor runs escapes it).

How: a ``sys.meta_path`` finder, first in the list, that answers only for
names with pending callbacks. It asks the finders after it for the real spec
and swaps the spec's loader for a thin wrapper whose ``exec_module`` calls the
real one and then the callbacks; afterwards the module's ``__loader__`` and
``__spec__.loader`` are the real loader again, so nothing downstream
(``inspect``, ``importlib.resources``, ``isinstance`` checks) sees the wrapper.

Rules: the finder never imports anything itself; registration and firing are
thread-safe and each callback runs once; a callback that raises is logged and
reported as *failed* in the explain report, and the application's import goes
on. A module already imported when its hook is registered gets the callback
at once; :func:`imported_before_install` tells whether it was imported before
:func:`install` (that is, before the bootstrap), which matters when objects
made from the module already exist.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import os
import sys
import threading
import types
from collections.abc import Callable, Sequence
from typing import Any

from sloguard.inject._explain import REPORT

__all__ = [
    "Callback",
    "imported_before_install",
    "install",
    "installed",
    "pending",
    "spec_after",
    "uninstall",
    "when_imported",
]

Callback = Callable[[types.ModuleType], None]

_log = logging.getLogger("sloguard.inject")
_lock = threading.RLock()
_callbacks: dict[str, list[Callback]] = {}
_executing: set[str] = set()
_before_install: frozenset[str] = frozenset()
_searching = threading.local()


def when_imported(name: str, callback: Callback) -> None:
    """Run ``callback(module)`` once ``name`` has been imported (now, if it already is)."""
    with _lock:
        module = sys.modules.get(name)
        if module is None or name in _executing:
            _callbacks.setdefault(name, []).append(callback)
            return
    _run(name, module, (callback,))


def imported_before_install(name: str) -> bool:
    """True when ``name`` was already in ``sys.modules`` when the finder was installed."""
    return name in _before_install


def pending() -> tuple[str, ...]:
    """Module names with callbacks still waiting for their import, sorted."""
    with _lock:
        return tuple(sorted(name for name, callbacks in _callbacks.items() if callbacks))


def install() -> None:
    """Put the finder first on ``sys.meta_path``. Idempotent."""
    global _before_install
    with _lock:
        if not installed():
            _before_install = frozenset(sys.modules)
        else:
            sys.meta_path.remove(_FINDER)
        # First, even when another finder (AST rewriting) went in since: we wrap
        # whatever loader the rest of the chain returns.
        sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    """Remove the finder and forget every pending callback."""
    with _lock:
        while _FINDER in sys.meta_path:
            sys.meta_path.remove(_FINDER)
        _callbacks.clear()


def installed() -> bool:
    return _FINDER in sys.meta_path


def _run(name: str, module: types.ModuleType, callbacks: Sequence[Callback]) -> None:
    for callback in callbacks:
        try:
            callback(module)
        except Exception as exc:  # a hook must never break the import
            label = getattr(callback, "__qualname__", repr(callback))
            _log.warning("sloguard: post-import hook %s for %s failed", label, name, exc_info=True)
            REPORT.failed(name, f"hook {label} raised {type(exc).__name__}: {exc}")


def _fire(name: str, module: types.ModuleType) -> None:
    with _lock:
        _executing.discard(name)
        callbacks = _callbacks.pop(name, [])
    # A module may replace itself in sys.modules while it executes.
    _run(name, sys.modules.get(name, module), callbacks)


class _NotifyingLoader(importlib.abc.Loader):
    """Wraps a loader for one import; every other attribute is the real loader's."""

    def __init__(self, loader: importlib.abc.Loader, name: str) -> None:
        self._loader = loader
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._loader, attribute)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        with _lock:
            _executing.add(self._name)
        self._restore(module)
        try:
            self._loader.exec_module(module)
        except BaseException:
            with _lock:
                _executing.discard(self._name)
            raise
        _fire(self._name, module)

    def _restore(self, module: types.ModuleType) -> None:
        if getattr(module, "__loader__", None) is self:
            module.__loader__ = self._loader
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self._loader


class _PostImportFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _callbacks:  # the common case: one dict lookup, no lock
            return None
        spec = spec_after(self, _searching, fullname, path, target)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec  # namespace packages without a loader, legacy loaders: left alone
        spec.loader = _NotifyingLoader(spec.loader, fullname)
        return spec

    def invalidate_caches(self) -> None:
        return None


def spec_after(
    finder: object,
    searching: threading.local,
    fullname: str,
    path: Sequence[str] | None,
    target: types.ModuleType | None,
) -> importlib.machinery.ModuleSpec | None:
    """The spec the rest of ``sys.meta_path`` (every finder but ``finder``) gives ``fullname``.

    For a finder that wraps the real spec's loader (this module's, and the rewriting
    hook's). None when this thread is already looking ``fullname`` up through ``finder``:
    a finder further on that imports or finds the same name again gets the plain answer
    instead of recursing. ``searching`` holds the names being looked up, per thread.
    """
    names: set[str] = searching.__dict__.setdefault("names", set())
    if fullname in names:
        return None
    names.add(fullname)
    try:
        for other in list(sys.meta_path):
            if other is finder:
                continue
            find_spec = getattr(other, "find_spec", None)
            if find_spec is None:
                continue
            spec: importlib.machinery.ModuleSpec | None = find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return None
    finally:
        names.discard(fullname)


_FINDER = _PostImportFinder()


def _after_fork_in_child() -> None:
    # A thread of the parent may have held the lock when it forked.
    global _lock
    _lock = threading.RLock()
    _executing.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
