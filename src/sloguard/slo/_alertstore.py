"""Alert state that survives a restart: one row per (SLO, tier), plus a transition log.

``sloguard serve`` steps every tier's :class:`AlertState` on each evaluation;
if the process restarts, a firing page must not fire again (nor a resolved one
be forgotten). The state lives next to the SLI buckets, in the same SQLite
file, in tables of its own (``slo_alert_state``, ``slo_alert_transitions``)
reached through a separate connection, so the bucket store's schema and
behaviour stay untouched. WAL mode and a busy timeout let the flusher keep
writing buckets meanwhile.

Errors from :mod:`sqlite3` are raised as :class:`AlertStoreError` (carrying
``path``) with the original as ``__cause__``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Self, TypeVar

from sloguard.slo._alerting import AlertPhase, AlertState, Transition

__all__ = ["AlertStore", "AlertStoreError", "TransitionRecord"]

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS slo_alert_state (
    slo TEXT NOT NULL,
    tier TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (slo, tier)
);
CREATE TABLE IF NOT EXISTS slo_alert_transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    slo TEXT NOT NULL,
    tier TEXT NOT NULL,
    before TEXT NOT NULL,
    after TEXT NOT NULL,
    at TEXT NOT NULL
);
"""


class AlertStoreError(Exception):
    """The alert state could not be read or written."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


@dataclass(frozen=True, slots=True)
class TransitionRecord:
    """One logged phase change of one tier."""

    slo: str
    tier: str
    before: AlertPhase
    after: AlertPhase
    at: datetime


class AlertStore:
    """Persisted :class:`AlertState` per (SLO, tier). Thread-safe; one connection."""

    def __init__(self, path: str | os.PathLike[str], *, timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, timeout=timeout_s, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise AlertStoreError(str(exc), self.path) from exc
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            self._conn.close()
            raise AlertStoreError(str(exc), self.path) from exc

    def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        with self._lock:
            try:
                return work(self._conn)
            except sqlite3.Error as exc:
                raise AlertStoreError(str(exc), self.path) from exc

    def load(self, slo: str, tier: str) -> AlertState:
        """The tier's state; a never-seen tier is inactive."""
        row = self._run(
            lambda c: c.execute(
                "SELECT state FROM slo_alert_state WHERE slo = ? AND tier = ?", (slo, tier)
            ).fetchone()
        )
        return AlertState() if row is None else AlertState.from_dict(json.loads(row[0]))

    def load_all(self) -> dict[tuple[str, str], AlertState]:
        rows = self._run(
            lambda c: c.execute("SELECT slo, tier, state FROM slo_alert_state").fetchall()
        )
        return {(s, t): AlertState.from_dict(json.loads(v)) for s, t, v in rows}

    def save(
        self, slo: str, tier: str, state: AlertState, transition: Transition | None = None
    ) -> None:
        """Write the state (and log the transition) in one transaction."""

        def work(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                updated = (transition.at if transition else datetime.now().astimezone()).isoformat()
                conn.execute(
                    "INSERT INTO slo_alert_state (slo, tier, state, updated_at) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (slo, tier) DO UPDATE SET state = excluded.state,"
                    " updated_at = excluded.updated_at",
                    (slo, tier, json.dumps(state.to_dict()), updated),
                )
                if transition is not None:
                    conn.execute(
                        "INSERT INTO slo_alert_transitions (slo, tier, before, after, at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (slo, tier, str(transition.before), str(transition.after), updated),
                    )
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

        self._run(work)

    def transitions(self, slo: str | None = None) -> list[TransitionRecord]:
        """The logged transitions, oldest first (of one SLO when ``slo`` is given)."""
        query = "SELECT slo, tier, before, after, at FROM slo_alert_transitions"
        params: tuple[str, ...] = ()
        if slo is not None:
            query, params = query + " WHERE slo = ?", (slo,)
        rows = self._run(lambda c: c.execute(query + " ORDER BY id", params).fetchall())
        return [
            TransitionRecord(s, t, AlertPhase(b), AlertPhase(a), datetime.fromisoformat(at))
            for s, t, b, a, at in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
