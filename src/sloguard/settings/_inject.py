"""The ``inject`` section: what ``sloguard run`` instruments without code changes."""

from __future__ import annotations

from sloguard.settings._base import _Section
from sloguard.settings._inject_probes import ProbeSettings
from sloguard.settings._inject_trace import TaskSettings, TraceSettings

__all__ = ["InjectSettings"]


class InjectSettings(_Section):
    enabled: bool = True
    trace: TraceSettings = TraceSettings()
    tasks: TaskSettings = TaskSettings()
    probes: ProbeSettings = ProbeSettings()
