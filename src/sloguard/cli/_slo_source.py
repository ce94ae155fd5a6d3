"""Where the SLO commands get definitions and data: spec files or settings, the store."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Protocol

from sloguard.settings import Settings
from sloguard.slo._engine import SLOStatus, definition_from_spec, evaluate, lookback, select
from sloguard.slo._model import SLODefinition
from sloguard.slo._prometheus import PrometheusSource
from sloguard.slo._specload import load_slo_files
from sloguard.store import SQLiteStore

__all__ = ["definitions", "statuses"]


def definitions(
    settings: Settings, specs: Sequence[Path], names: Sequence[str]
) -> list[SLODefinition]:
    """From ``specs`` when given, else the SLOs in the settings; raises SpecError/KeyError."""
    if specs:
        found = load_slo_files(specs)
    else:
        found = [definition_from_spec(s, settings.service.name) for s in settings.sli.slos]
    return select(found, names)


class _Series(Protocol):
    def series(
        self, definition: SLODefinition, start_minute: int, end_minute: int
    ) -> list[tuple[int, int, int]]: ...


class _StoreSeries:
    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    def series(
        self, definition: SLODefinition, start_minute: int, end_minute: int
    ) -> list[tuple[int, int, int]]:
        return self.store.series(definition.name, start_minute, end_minute)


def statuses(
    chosen: Sequence[SLODefinition],
    store_path: Path,
    at: datetime,
    *,
    min_events: int = 1,
    prometheus: str | None = None,
) -> list[SLOStatus]:
    """Evaluate each SLO at ``at`` from the embedded store, or from Prometheus' HTTP API."""
    end = int(at.timestamp()) // 60 + 1
    with contextlib.ExitStack() as stack:
        source: _Series
        if prometheus is not None:
            source = stack.enter_context(PrometheusSource(prometheus))
        else:
            source = _StoreSeries(stack.enter_context(SQLiteStore(store_path)))
        out = []
        for definition in chosen:
            start = end - int(lookback(definition, at).total_seconds()) // 60 - 1
            series = source.series(definition, start, end)
            out.append(evaluate(definition, series, at, min_events=min_events))
    return out
