"""stdlib logging and thread pools under ``sloguard run``: log lines keep the request.

* logging: sloguard's ``LogRecord`` factory, so every record -- the
  application's own loggers included, whatever handlers they use -- carries
  ``trace_id``, ``span_id``, ``request_id`` and ``route``. The bootstrap
  usually installed it already (then this hook only says so); the JSON root
  handler (``logging.configure_root``) is the bootstrap's and the guard's
  business, since only they know whether the application configured logging.
* threads: ``ThreadPoolExecutor.submit`` copies the submitter's context
  (``context.patch_executors``), which ``loop.run_in_executor`` uses too.
  Bare ``threading.Thread`` is left alone: a thread that outlives the request
  that started it (a lazily started pool, a connection reaper) would log under
  that request's ids for the rest of its life.
"""

from __future__ import annotations

import logging
import types
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from sloguard.inject._frameworks import Hook, Skip, framework_off

if TYPE_CHECKING:
    from sloguard.inject._frameworks import Installation
    from sloguard.settings import Settings

__all__ = ["LOGGING_HOOKS"]


def _install_logging(module: types.ModuleType, inst: Installation) -> str:
    from sloguard.telemetry import logging as sloguard_logging

    before = logging.getLogRecordFactory()
    sloguard_logging.install_record_factory()
    if logging.getLogRecordFactory() is before:
        raise Skip("sloguard's record factory is in place already")
    inst.on_undo(lambda: logging.setLogRecordFactory(before))
    return "LogRecord factory: trace_id, span_id, request_id and route on every record"


def _install_threads(module: types.ModuleType, inst: Installation) -> str:
    from sloguard.context import propagate_context_to_threads

    before = ThreadPoolExecutor.__dict__["submit"]
    if not propagate_context_to_threads():
        raise Skip("ThreadPoolExecutor.submit copies the context already")
    inst.on_undo(lambda: setattr(ThreadPoolExecutor, "submit", before))
    return "ThreadPoolExecutor.submit (and so run_in_executor) runs tasks in the caller's context"


def _logging_unwanted(settings: Settings) -> str | None:
    if not settings.logging.enabled:
        return "logging.enabled is false"
    return framework_off(settings, "logging")


def _threads_unwanted(settings: Settings) -> str | None:
    if not settings.context.patch_executors:
        return "context.patch_executors is false"
    return framework_off(settings, "threads")


LOGGING_HOOKS = (
    Hook("logging", "logging.LogRecord factory", "logging", _install_logging, _logging_unwanted),
    Hook(
        "threads",
        "concurrent.futures.ThreadPoolExecutor",
        "concurrent.futures.thread",
        _install_threads,
        _threads_unwanted,
    ),
)
