"""Which endings of a call count against a dependency.

A breaker protects callers from a dependency that is failing, not from their
own mistakes: a ``ValueError`` raised by a business rule, a 404 or a cancelled
request say nothing about the dependency's health. :class:`FailureClassifier`
maps an exception or an HTTP status to an :class:`~sloguard.resilience._types.Outcome`:

* exceptions: ``ignore`` types (default: ``asyncio.CancelledError``, which is
  never a failure whatever the lists say) and anything that is not an
  ``Exception`` (``KeyboardInterrupt``, ``SystemExit``, ``GeneratorExit``)
  are IGNORED; ``exclude`` types count as SUCCESS (the dependency answered,
  the answer was a business error); the two lists are checked first, so
  they override what follows; timeouts (``TimeoutError``,
  ``asyncio.TimeoutError``, ``httpx.TimeoutException``) are FAILURE; with
  ``failures`` set, only those types (and timeouts) are FAILURE and other
  exceptions count as SUCCESS; by default every other ``Exception`` is a
  FAILURE;
* statuses: those in ``failure_statuses`` (default 500, 502, 503, 504; add
  429 to treat throttling as failure) are FAILURE, every other status is
  SUCCESS.

Answers per exception type are cached (types are few, ``isinstance`` chains
are not free); the classifier is frozen, so the cache never goes stale.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import httpx

from sloguard.resilience._types import Outcome

__all__ = ["DEFAULT_FAILURE_STATUSES", "TIMEOUT_ERRORS", "FailureClassifier"]

DEFAULT_FAILURE_STATUSES = frozenset({500, 502, 503, 504})
TIMEOUT_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,
    asyncio.TimeoutError,
    httpx.TimeoutException,
)
_MAX_CACHED_TYPES = 256


def _exception_types(value: tuple[type[BaseException], ...], field_name: str) -> None:
    for item in value:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise TypeError(f"FailureClassifier.{field_name}: {item!r} is not an exception type")


@dataclass(frozen=True, slots=True)
class FailureClassifier:
    """Maps exceptions and HTTP statuses to outcomes; see the module docstring."""

    #: exception types that count as IGNORED (neither success nor failure)
    ignore: tuple[type[BaseException], ...] = (asyncio.CancelledError,)
    #: exception types that count as SUCCESS (business errors)
    exclude: tuple[type[BaseException], ...] = ()
    #: if set, only these exception types (and timeouts) are failures
    failures: tuple[type[BaseException], ...] | None = None
    failure_statuses: frozenset[int] = DEFAULT_FAILURE_STATUSES
    _cache: dict[type[BaseException], Outcome] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        _exception_types(self.ignore, "ignore")
        _exception_types(self.exclude, "exclude")
        if self.failures is not None:
            _exception_types(self.failures, "failures")
        # a set or list given at runtime becomes a frozenset: the classifier stays hashable
        object.__setattr__(self, "failure_statuses", frozenset(self.failure_statuses))
        for status in self.failure_statuses:
            if not (isinstance(status, int) and 100 <= status <= 599):
                raise ValueError(f"FailureClassifier.failure_statuses: {status!r} is not a status")

    def classify_exception(self, exc: BaseException) -> Outcome:
        kind = type(exc)
        outcome = self._cache.get(kind)
        if outcome is None:
            outcome = self._classify_type(kind)
            if len(self._cache) < _MAX_CACHED_TYPES:
                self._cache[kind] = outcome
        return outcome

    def classify_status(self, status: int) -> Outcome:
        return Outcome.FAILURE if status in self.failure_statuses else Outcome.SUCCESS

    def _classify_type(self, kind: type[BaseException]) -> Outcome:
        if issubclass(kind, asyncio.CancelledError) or not issubclass(kind, Exception):
            return Outcome.IGNORED
        if issubclass(kind, self.ignore):
            return Outcome.IGNORED
        if issubclass(kind, self.exclude):
            return Outcome.SUCCESS
        if issubclass(kind, TIMEOUT_ERRORS):
            return Outcome.FAILURE
        if self.failures is not None and not issubclass(kind, self.failures):
            return Outcome.SUCCESS
        return Outcome.FAILURE
