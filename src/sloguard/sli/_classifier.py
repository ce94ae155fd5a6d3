"""Which SLOs count a finished request, decided once per (route, method).

An SLO selects requests by route-template globs and methods (none listed means
every method). Route templates are few, so the answer for each (route, method)
pair is computed once and kept in a bounded dict; the request path then pays
one dict lookup.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Final

from sloguard.routing import GlobSet
from sloguard.slo.spec import SLOSpec

__all__ = ["DEFAULT_MAX_CACHED", "SLIClassifier"]

DEFAULT_MAX_CACHED: Final = 4096


class SLIClassifier:
    """Maps (route template, method) to the indices of the SLOs that count it."""

    __slots__ = ("_cache", "_max_cached", "_selectors", "slos")

    def __init__(self, slos: Sequence[SLOSpec], *, max_cached: int = DEFAULT_MAX_CACHED) -> None:
        if max_cached < 1:
            raise ValueError("max_cached must be at least 1")
        self.slos: tuple[SLOSpec, ...] = tuple(slos)
        self._selectors = tuple((GlobSet(slo.routes), frozenset(slo.methods)) for slo in self.slos)
        self._cache: dict[tuple[str, str], tuple[int, ...]] = {}
        self._max_cached = max_cached

    def match(self, route: str, method: str) -> tuple[int, ...]:
        """Indices into :attr:`slos` of every SLO counting this request, in order."""
        key = (route, method)
        found = self._cache.get(key)
        if found is None:
            found = self._classify(route, method)
            self._remember(key, found)
        return found

    def names(self, route: str, method: str) -> tuple[str, ...]:
        """The names of the SLOs counting this request (for humans and tests)."""
        return tuple(self.slos[index].name for index in self.match(route, method))

    def cached(self) -> int:
        """How many (route, method) answers are cached."""
        return len(self._cache)

    def _classify(self, route: str, method: str) -> tuple[int, ...]:
        upper = method.upper()
        return tuple(
            index
            for index, (globs, methods) in enumerate(self._selectors)
            if (not methods or upper in methods) and globs.matches(route)
        )

    def _remember(self, key: tuple[str, str], found: tuple[int, ...]) -> None:
        cache = self._cache
        if len(cache) >= self._max_cached:
            # Evict the oldest entry; another thread may be evicting too, and
            # losing that race costs only a recomputation later.
            with contextlib.suppress(KeyError, RuntimeError, StopIteration):
                del cache[next(iter(cache))]
        cache[key] = found
