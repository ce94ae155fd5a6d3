"""Where the SLO commands get definitions and data: spec files or settings, the store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from sloguard.settings import Settings
from sloguard.slo._engine import SLOStatus, definition_from_spec, evaluate, lookback, select
from sloguard.slo._model import SLODefinition
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


def statuses(
    chosen: Sequence[SLODefinition], store_path: Path, at: datetime, *, min_events: int = 1
) -> list[SLOStatus]:
    end = int(at.timestamp()) // 60 + 1
    with SQLiteStore(store_path) as store:
        out = []
        for definition in chosen:
            start = end - int(lookback(definition, at).total_seconds()) // 60 - 1
            series = store.series(definition.name, start, end)
            out.append(evaluate(definition, series, at, min_events=min_events))
    return out
