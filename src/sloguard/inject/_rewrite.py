"""Import-time function tracing: ``install_tracing(selectors, settings, report)``.

The bootstrap calls :func:`install_tracing` before the application imports
anything; from then on each module a selector can match is rewritten as it is
imported (:mod:`~sloguard.inject._rewrite_loader`) and its selected functions
get spans (:mod:`~sloguard.inject._traced`). Modules imported before that
moment cannot be rewritten (their functions already exist and may be bound
anywhere); they are reported as skipped, by name.
"""

from __future__ import annotations

import builtins
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from opentelemetry import trace

from sloguard.inject._rewrite_loader import ReportSink, TracingFinder, never_traced
from sloguard.inject._selectors import SelectorSet
from sloguard.inject._threshold import DurationPolicy
from sloguard.inject._traced import TRACED_NAME, TraceRuntime

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from sloguard.settings import Settings

__all__ = ["install_tracing", "installed_finder", "uninstall_tracing"]

_lock = threading.Lock()
_finder: TracingFinder | None = None


def install_tracing(
    selectors: Sequence[str],
    settings: Settings,
    report: ReportSink,
    *,
    tracer: Tracer | None = None,
) -> None:
    """Rewrite the selected functions of every module imported from now on.

    Raises :class:`~sloguard.inject._selectors.SelectorError` for a bad
    selector. Installing again replaces the previous selectors.
    """
    global _finder
    selector_set = SelectorSet(selectors)
    trace_settings = settings.inject.trace
    policy = DurationPolicy(
        min_duration_ns=round(trace_settings.min_duration_ms * 1_000_000),
        adaptive=trace_settings.adaptive,
        quantile=trace_settings.quantile,
    )
    runtime = TraceRuntime(tracer or trace.get_tracer("sloguard.inject"), policy)
    finder = TracingFinder(selector_set, runtime, report)
    with _lock:
        _remove_finder()
        sys.meta_path.insert(0, finder)
        _finder = finder
        # Rewritten defs look the runtime up by name: in the module's globals
        # (set by the loader's exec_module), else here. ``python -m pkg`` runs
        # the rewritten code through runpy without exec_module.
        setattr(builtins, TRACED_NAME, runtime)
    for name in sorted(sys.modules):
        if selector_set.module_may_match(name):
            if never_traced(name):
                report.skipped(name, "never traced: sloguard, OpenTelemetry and the stdlib")
            else:
                report.skipped(name, "imported before the bootstrap ran; not rewritten")
    report.instrumented(
        "trace selectors", f"import hook for {', '.join(s.text for s in selector_set.selectors)}"
    )


def uninstall_tracing() -> None:
    """Remove the import hook; functions already rewritten stay traced."""
    global _finder
    with _lock:
        _remove_finder()
        _finder = None
        if hasattr(builtins, TRACED_NAME):
            delattr(builtins, TRACED_NAME)


def installed_finder() -> TracingFinder | None:
    return _finder


def _remove_finder() -> None:
    if _finder is not None:
        while _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
