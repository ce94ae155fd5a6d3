"""The ``inject`` section: what ``sloguard run`` instruments without code changes.

``frameworks`` names the post-import hooks that are on; a framework left out
is never touched (and the explain report says so). ``explain`` prints, at the
exit of every process, what was instrumented, skipped or failed;
``explain_file`` appends the same report as one JSON line per process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from sloguard.settings._base import _Section
from sloguard.settings._inject_probes import ProbeSettings
from sloguard.settings._inject_trace import TaskSettings, TraceSettings

__all__ = ["FRAMEWORKS", "Framework", "InjectSettings"]

Framework = Literal[
    "starlette",
    "fastapi",
    "flask",
    "django",
    "httpx",
    "requests",
    "aiohttp",
    "logging",
    "threads",
]
FRAMEWORKS: tuple[Framework, ...] = (
    "starlette",
    "fastapi",
    "flask",
    "django",
    "httpx",
    "requests",
    "aiohttp",
    "logging",
    "threads",
)


class InjectSettings(_Section):
    enabled: bool = True
    frameworks: tuple[Framework, ...] = FRAMEWORKS
    explain: bool = False
    explain_file: Path | None = None
    trace: TraceSettings = TraceSettings()
    tasks: TaskSettings = TaskSettings()
    probes: ProbeSettings = ProbeSettings()
