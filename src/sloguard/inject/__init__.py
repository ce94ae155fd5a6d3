"""Zero-code instrumentation: the ``sloguard run`` bootstrap, post-import hooks,
import-time function tracing (AST rewriting), asyncio task tracking and live
probes.

Everything here is imported on first use: the bootstrap runs in every process
started under ``sloguard run``, and must not load what the application does
not use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sloguard._lazy import lazy_attributes as _lazy_attributes

if TYPE_CHECKING:
    from sloguard.inject._control import ProbeClient, start_control_server
    from sloguard.inject._explain import REPORT, Report
    from sloguard.inject._frameworks import install_framework_hooks, uninstall_framework_hooks
    from sloguard.inject._hooks import when_imported
    from sloguard.inject._probes import ProbeKind, ProbeManager, ProbeSpec
    from sloguard.inject._rewrite import install_tracing, uninstall_tracing
    from sloguard.inject._selectors import Selector, SelectorError, parse_selector
    from sloguard.inject._tasks import TaskTracker, install_task_tracking, uninstall_task_tracking

__all__ = [
    "REPORT",
    "ProbeClient",
    "ProbeKind",
    "ProbeManager",
    "ProbeSpec",
    "Report",
    "Selector",
    "SelectorError",
    "TaskTracker",
    "install_framework_hooks",
    "install_task_tracking",
    "install_tracing",
    "parse_selector",
    "start_control_server",
    "uninstall_framework_hooks",
    "uninstall_task_tracking",
    "uninstall_tracing",
    "when_imported",
]

_LAZY = {
    "ProbeClient": "_control",
    "start_control_server": "_control",
    "REPORT": "_explain",
    "Report": "_explain",
    "install_framework_hooks": "_frameworks",
    "uninstall_framework_hooks": "_frameworks",
    "when_imported": "_hooks",
    "ProbeKind": "_probes",
    "ProbeManager": "_probes",
    "ProbeSpec": "_probes",
    "install_tracing": "_rewrite",
    "uninstall_tracing": "_rewrite",
    "Selector": "_selectors",
    "SelectorError": "_selectors",
    "parse_selector": "_selectors",
    "TaskTracker": "_tasks",
    "install_task_tracking": "_tasks",
    "uninstall_task_tracking": "_tasks",
}


__getattr__ = _lazy_attributes(__name__, {name: f".{module}" for name, module in _LAZY.items()})
