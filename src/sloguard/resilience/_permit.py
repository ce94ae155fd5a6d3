"""Leaving a ``with`` block releases a shedding token: one rule for all of them.

Every admission the shedding stages hand out -- a static limit's
:class:`~sloguard.resilience._concurrency.ConcurrencyPermit`, an adaptive
limit's :class:`~sloguard.resilience._adaptive.AdaptivePermit`, the chain's
:class:`~sloguard.resilience._shedder.ShedToken` -- is released once, with
the request's outcome, by ``release`` or by leaving its ``with`` block:
normally as ``Outcome.SUCCESS``, on an exception as ``Outcome.IGNORED`` (the
place is given back without a latency sample, so a crash does not teach an
adaptive limit anything about the service's latency).
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

from sloguard.resilience._types import Outcome

__all__ = ["ReleasedOnExit"]


class _Releasable(Protocol):
    def release(self, outcome: Outcome = ..., latency_s: float | None = ...) -> None: ...


class ReleasedOnExit:
    """Mixin for a token with ``release(outcome, latency_s)``: a context manager releasing it."""

    __slots__ = ()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self: _Releasable,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release(Outcome.SUCCESS if exc_type is None else Outcome.IGNORED)
