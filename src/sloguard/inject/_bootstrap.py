"""``bootstrap()``: set sloguard up once per interpreter, before the application runs.

``sloguard run`` puts a ``sitecustomize`` first on ``PYTHONPATH``, so every
Python process of the command (the server, each worker it spawns, the reload
child) calls :func:`bootstrap` while the interpreter starts. It:

1. loads the settings (``SLOGUARD_CONFIG`` / ``sloguard.yaml`` + ``SLOGUARD_*``);
2. sets up the process-wide telemetry the hooks share: the record factory and
   JSON logging, the tracer provider (made global); framework hooks pass
   :attr:`BootstrapState.tracer_provider` to ``guard()`` so an instrumented
   app exports through the same provider instead of building a second one;
3. installs the post-import finder, then each optional part, imported lazily
   and reported as skipped when absent: framework hooks (``_frameworks``),
   import-time function tracing (``_rewrite``), asyncio task tracking
   (``_tasks``) and the live-probe control server (``_control``);
4. arranges the explain report at exit.

Once per interpreter: a second call returns the first state, and
:func:`active` lets framework hooks (and an application calling ``guard()``
itself) tell whether the bootstrap owns instrumentation in this process.

Fork: the interpreter's state is inherited by a forked child (gunicorn
``--preload``), so nothing is set up twice. The parts with threads restart
themselves there: the OpenTelemetry batch processor re-creates its worker
thread after fork, the SLI flusher restarts its thread (``sli/_flusher.py``),
the store reopens its SQLite connections, and prometheus_client's
multiprocess values follow the pid. The at-fork hook here re-creates the
locks this package holds, which a thread of the parent may have held when it
forked.

Never crash the user's program: any error is printed once to stderr and the
program runs uninstrumented.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import os
import signal
import sys
import threading
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sloguard.inject import _hooks
from sloguard.inject._explain import REPORT, Report

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from sloguard.settings import Settings

__all__ = ["SITE_DIR", "BootstrapState", "active", "bootstrap", "state"]

# Holds sloguard's sitecustomize.py; ``sloguard run`` puts it first on PYTHONPATH.
SITE_DIR = Path(__file__).resolve().with_name("_site")


@dataclass(frozen=True, slots=True)
class BootstrapState:
    """What the bootstrap set up in this interpreter (``settings`` None: it failed or is off)."""

    settings: Settings | None
    tracer_provider: TracerProvider | None
    error: str | None = None

    @property
    def instrumenting(self) -> bool:
        return self.settings is not None and self.error is None


_lock = threading.RLock()
_state: BootstrapState | None = None

# The optional parts: (report target, module, function, what it needs to run).
_Part = tuple[str, str, str, Callable[["Settings"], bool]]
_PARTS: tuple[_Part, ...] = (
    (
        "frameworks",
        "sloguard.inject._frameworks",
        "install_framework_hooks",
        lambda settings: bool(settings.inject.frameworks),
    ),
    (
        "trace selectors",
        "sloguard.inject._rewrite",
        "install_tracing",
        lambda settings: bool(settings.inject.trace.selectors),
    ),
    (
        "asyncio tasks",
        "sloguard.inject._tasks",
        "install_task_tracking",
        lambda settings: settings.inject.tasks.enabled,
    ),
    (
        "probe control server",
        "sloguard.inject._control",
        "start_control_server",
        lambda settings: settings.inject.probes.enabled,
    ),
)


def bootstrap(env: Mapping[str, str] | None = None) -> BootstrapState:
    """Set sloguard up in this interpreter; idempotent, never raises."""
    global _state
    with _lock:
        if _state is None:
            try:
                _state = _start(env)
            except Exception as exc:  # the user's program must run regardless
                _state = BootstrapState(None, None, error=f"{type(exc).__name__}: {exc}")
                REPORT.failed("bootstrap", _state.error or "")
                print(
                    f"sloguard: bootstrap failed, running uninstrumented: {_state.error}",
                    file=sys.stderr,
                    flush=True,
                )
        return _state


def state() -> BootstrapState | None:
    """The bootstrap's state, None when it has not run in this interpreter."""
    return _state


def active() -> bool:
    """True when ``sloguard run`` instruments this process (hooks check before wrapping)."""
    current = _state
    return current is not None and current.instrumenting


def _start(env: Mapping[str, str] | None) -> BootstrapState:
    from sloguard.settings import load_settings

    settings = load_settings(env=env)
    _arrange_explain(settings)
    if not settings.inject.enabled:
        REPORT.skipped("sloguard run", "inject.enabled is false")
        return BootstrapState(settings, None)
    provider = _telemetry(settings)
    global _state
    # Visible to the parts as they install (framework hooks take the tracer provider).
    _state = BootstrapState(settings, provider)
    _hooks.install()
    for target, module, function, wanted in _PARTS:
        if wanted(settings):
            _install_part(target, module, function, settings)
        else:
            REPORT.skipped(target, "switched off in the settings")
    _hooks.install()  # first on sys.meta_path again, ahead of any finder a part added
    return _state


def _telemetry(settings: Settings) -> TracerProvider | None:
    from sloguard.telemetry.logging import configure_logging, install_record_factory
    from sloguard.telemetry.tracing import build_tracer_provider, install_global_provider

    if settings.logging.enabled:
        install_record_factory()
        REPORT.instrumented("logging.LogRecord", "trace_id, span_id, request_id on every record")
        if settings.logging.configure_root:
            configure_logging(
                level=settings.logging.level,
                json_format=settings.logging.json_format,
                static_fields={"service": settings.service.name},
            )
    if not settings.tracing.enabled:
        REPORT.skipped("tracing", "tracing.enabled is false")
        return None
    provider, _sampler = build_tracer_provider(settings.service, settings.tracing)
    _at_exit(functools.partial(_flush_within, provider, _FLUSH_TIMEOUT_S))
    if install_global_provider(provider):
        REPORT.instrumented(
            "tracing", f"global tracer provider, exporter {settings.tracing.exporter}"
        )
    else:
        REPORT.skipped("tracing", "the application set its own global tracer provider")
    return provider


def _install_part(target: str, module_name: str, function: str, settings: Settings) -> None:
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            REPORT.failed(target, f"importing {module_name}: {exc}")
        else:
            REPORT.skipped(target, f"{module_name} is not available in this sloguard")
        return
    except Exception as exc:
        REPORT.failed(target, f"importing {module_name}: {type(exc).__name__}: {exc}")
        return
    try:
        install: Callable[..., Any] = getattr(module, function)
        if function == "install_tracing":
            install(settings.inject.trace.selectors, settings, REPORT)
        else:
            install(settings, REPORT)
    except Exception as exc:
        REPORT.failed(target, f"{function} raised {type(exc).__name__}: {exc}")


def _arrange_explain(settings: Settings) -> None:
    if settings.inject.explain:
        _at_exit(functools.partial(_print_report, REPORT))
    if settings.inject.explain_file is not None:
        _at_exit(functools.partial(_append_report, REPORT, settings.inject.explain_file))


def _print_report(report: Report) -> None:
    sys.stderr.write(report.render_text(pending=_hooks.pending()))
    sys.stderr.flush()


def _append_report(report: Report, path: Path) -> None:
    line = report.to_json(pending=_hooks.pending()) + "\n"
    # One write of one line, in append mode: workers exiting together do not interleave.
    with path.open("a", encoding="utf-8") as file:
        file.write(line)


# Exit work (final span flush, the explain report) runs at a normal exit, and
# also when SIGTERM's default action would end the process: uvicorn handles
# SIGTERM gracefully, then restores the previous handler and raises the signal
# again, so its processes end *by the signal*, skipping atexit. The handler put
# in place of SIG_DFL does the exit work and then re-delivers the signal with
# the default action: the process still dies by SIGTERM, as before.
_exit_work: list[Callable[[], object]] = []
_exit_lock = threading.Lock()
_exit_done = False
_FLUSH_TIMEOUT_S = 3.0


def _at_exit(work: Callable[[], object]) -> None:
    with _exit_lock:
        first = not _exit_work
        _exit_work.append(work)
    if first:
        atexit.register(_run_exit_work)
        _catch_sigterm()


def _run_exit_work() -> None:
    global _exit_done
    with _exit_lock:
        if _exit_done:
            return
        _exit_done = True
        work = list(_exit_work)
    for item in work:
        try:
            item()
        except Exception as exc:  # exiting anyway: say it, go on with the rest
            print(f"sloguard: at exit: {type(exc).__name__}: {exc}", file=sys.stderr)


def _flush_within(provider: TracerProvider, timeout_s: float) -> None:
    """Flush spans, giving up after ``timeout_s``: exiting must not hang on an exporter.

    The SDK's ``force_flush`` ignores its timeout (it exports until the queue is
    empty), so it runs on a daemon thread that is abandoned when time is up.
    """
    flusher = threading.Thread(target=provider.force_flush, name="sloguard-exit-flush", daemon=True)
    try:
        flusher.start()
    except RuntimeError:  # no new threads this late in the interpreter's shutdown
        return
    flusher.join(timeout_s)


def _catch_sigterm() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


def _on_sigterm(signum: int, frame: types.FrameType | None) -> None:
    _run_exit_work()
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


def _after_fork_in_child() -> None:
    global _lock, _exit_lock
    _lock = threading.RLock()
    _exit_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
