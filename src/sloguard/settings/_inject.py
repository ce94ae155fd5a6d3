"""The ``inject`` section: what ``sloguard run`` instruments without code changes."""

from __future__ import annotations

from sloguard.settings._base import _Section

__all__ = ["InjectSettings"]


class InjectSettings(_Section):
    enabled: bool = True
