"""Who spent the error budget: bad events by route template, status class and error code.

A burning budget raises one question first: where are the failures coming
from? The store keeps every bucket with its route template, status class and
error code, so :func:`attribute` answers it per dimension with
:meth:`SQLiteStore.breakdown`: the top ``top`` values by bad events, each with
its exact share of the window's bad events (and, given the objective, of the
window's error budget), and the rest folded into one ``other`` row so the
shares add up to one. Tenants are not a store dimension yet, so they are not
attributed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Final

from sloguard.slo._budget import as_decimal
from sloguard.store import DIMENSIONS, Dimension, SQLiteStore

__all__ = ["OTHER", "Attribution", "Contributor", "attribute"]

OTHER: Final = "(other)"


@dataclass(frozen=True, slots=True)
class Contributor:
    """One value of one dimension: its events and its share of the bad ones."""

    value: str
    bad: int
    total: int
    share: Fraction
    budget_share: Fraction | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "bad": self.bad,
            "total": self.total,
            "share": str(as_decimal(self.share, 6)),
            "budget_share": None
            if self.budget_share is None
            else str(as_decimal(self.budget_share, 6)),
        }


@dataclass(frozen=True, slots=True)
class Attribution:
    """The top contributors of one dimension over ``[start, end)`` (unix minutes)."""

    dimension: Dimension
    start: int
    end: int
    bad: int
    total: int
    contributors: tuple[Contributor, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "start_minute": self.start,
            "end_minute": self.end,
            "bad": self.bad,
            "total": self.total,
            "contributors": [c.as_dict() for c in self.contributors],
        }


def _contributor(
    value: str, bad: int, total: int, all_bad: int, budget: Fraction | None
) -> Contributor:
    budget_share = None if budget is None else Fraction(bad) / budget
    return Contributor(value, bad, total, Fraction(bad, all_bad), budget_share)


def attribute(
    store: SQLiteStore,
    slo: str,
    start: int,
    end: int,
    *,
    dimensions: Sequence[Dimension] = DIMENSIONS,
    top: int = 5,
    objective: Fraction | None = None,
) -> list[Attribution]:
    """Per dimension, the ``top`` values by bad events in ``[start, end)`` and an ``other`` row.

    Values without bad events are left out. With ``objective`` (a ratio), each
    contributor also carries ``budget_share``: its bad events over the error
    budget of the window's traffic, ``(1 - objective) x total``.
    """
    if top < 1:
        raise ValueError("top must be at least 1")
    out = []
    for dimension in dimensions:
        rows = store.breakdown(slo, start, end, by=(dimension,))
        bad = sum(t - g for _, g, t in rows)
        total = sum(t for _, _, t in rows)
        budget = None if objective is None or not total else (1 - objective) * total
        contributors = [
            _contributor(dims[0], t - g, t, bad, budget) for dims, g, t in rows[:top] if t - g > 0
        ]
        rest = rows[top:]
        rest_bad = sum(t - g for _, g, t in rest)
        if rest_bad:
            rest_total = sum(t for _, _, t in rest)
            contributors.append(_contributor(OTHER, rest_bad, rest_total, bad, budget))
        out.append(Attribution(dimension, start, end, bad, total, tuple(contributors)))
    return out
