"""What ``sloguard run`` did to this process, and why: the ``--explain`` report.

Zero-code instrumentation is only trustworthy when it can say what it touched.
Every part of the bootstrap (framework hooks, import-time tracing, task
tracking, probes) writes one line here per target: *instrumented* (and how),
*skipped* (and why: the framework is switched off, the module was imported
before the bootstrap ran, an optional part is not installed) or *failed* (the
error). ``sloguard run --explain`` prints it at exit; ``--explain-file`` appends
it as one JSON object per process, so a multi-worker server yields one line
per worker.

:data:`REPORT` is the process-wide instance. It is thread-safe, keeps entries
in the order they happened and drops exact repeats (a hook that fires in a
forked child does not add a second line).
"""

from __future__ import annotations

import enum
import json
import os
import sys
import threading
from dataclasses import dataclass
from typing import Any

__all__ = ["REPORT", "Entry", "Outcome", "Report"]


class Outcome(enum.Enum):
    INSTRUMENTED = "instrumented"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of the report: ``target`` (a module, a class, a selector) and why."""

    outcome: Outcome
    target: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return {"outcome": self.outcome.value, "target": self.target, "detail": self.detail}


class Report:
    """A thread-safe, ordered, de-duplicated list of :class:`Entry`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Entry, None] = {}  # an ordered set

    def instrumented(self, target: str, how: str) -> None:
        self._add(Entry(Outcome.INSTRUMENTED, target, how))

    def skipped(self, target: str, why: str) -> None:
        self._add(Entry(Outcome.SKIPPED, target, why))

    def failed(self, target: str, error: str) -> None:
        self._add(Entry(Outcome.FAILED, target, error))

    def _add(self, entry: Entry) -> None:
        with self._lock:
            self._entries[entry] = None

    def entries(self) -> tuple[Entry, ...]:
        with self._lock:
            return tuple(self._entries)

    def after_fork_in_child(self) -> None:
        """A fresh lock: a thread of the parent may have held this one when it forked."""
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def as_dict(self, *, pending: tuple[str, ...] = ()) -> dict[str, Any]:
        """The report as a JSON-ready mapping; ``pending`` lists hooks never triggered."""
        return {
            "pid": os.getpid(),
            "argv": list(sys.orig_argv),
            "entries": [entry.as_dict() for entry in self.entries()],
            "pending": list(pending),
        }

    def to_json(self, *, pending: tuple[str, ...] = ()) -> str:
        return json.dumps(self.as_dict(pending=pending), sort_keys=True)

    def render_text(self, *, pending: tuple[str, ...] = ()) -> str:
        """Human-readable: one section per outcome, then the hooks that never fired."""
        entries = self.entries()
        command = " ".join(sys.orig_argv) or "python"
        lines = [f"sloguard run --explain: pid {os.getpid()} ({command})"]
        for outcome in Outcome:
            chosen = [entry for entry in entries if entry.outcome is outcome]
            lines.append(f"  {outcome.value} ({len(chosen)}):")
            width = max((len(entry.target) for entry in chosen), default=0)
            lines.extend(f"    {entry.target:<{width}}  {entry.detail}" for entry in chosen)
        if pending:
            lines.append(f"  waiting for an import that never came ({len(pending)}):")
            lines.extend(f"    {name}" for name in pending)
        return "\n".join(lines) + "\n"


REPORT = Report()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=REPORT.after_fork_in_child)
