"""The circuit breaker users hold: a decorator, a context manager, and a registry.

:class:`CircuitBreaker` wraps a backend (:class:`~sloguard.resilience._local.LocalBreaker`
by default, or the Redis-shared one) with the parts every caller needs: the
failure classifier, timing (only when ``slow_call_ratio`` needs it), the
``BreakerOpenError`` or a fallback when the breaker rejects, and the
guarantee that every admitted call reports its outcome (``finally``), so a
half-open probe slot is never leaked.

Ways to use it::

    breaker = CircuitBreaker("payments", BreakerPolicy(consecutive_failures=5))

    @breaker                      # sync or async function
    def charge(...): ...

    with breaker: ...             # sync block (admit: backend.admit())
    async with breaker: ...       # async block (admit: backend.admit_async())
    breaker.call(fn, *args)       # and await breaker.call_async(fn, *args)

The decorator is the fastest form (about 90 ns per successful call on a
closed in-memory breaker with the default policy, against ~260 ns for the
fastest peer, purgatory's unlocked context manager; ``benchmarks/breaker.py``),
then ``call``; a block costs a ContextVar write more (about 320 ns), because
``__exit__`` must find the admission its own ``__enter__`` got, per thread
and per task.

While the breaker rejects, ``fallback(exc, *args, **kwargs)`` is returned
instead of raising when given (awaited if it returns an awaitable, in async
calls); with ``fallback_on_failure`` it also replaces a call that failed.
Blocks (``with``) have no value to replace, so they always raise.

:class:`BreakerOpenError` is a :class:`~sloguard.errors.SloguardHTTPError`
(code ``BRK_503``) with a ``Retry-After`` header, so a web handler that lets
it escape answers 503 problem+json. Its ``detail`` does not name the breaker
(names hold internal host names); the ``name`` attribute does.

:class:`BreakerRegistry` creates breakers by name on first use from a policy
(or a policy factory) and a backend factory, so the httpx transports and the
inbound ASGI breaker share one set and the Redis-shared backend plugs in.

Exceptions::

    SloguardHTTPError
     +-- BreakerOpenError          (.name, .retry_after_s, .state)
          +-- HTTPBreakerOpenError (also an httpx.TransportError; see _transport)
"""

from __future__ import annotations

import functools
import inspect
import math
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from types import TracebackType
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from sloguard.errors import SloguardHTTPError
from sloguard.resilience._classify import FailureClassifier
from sloguard.resilience._clock import SYSTEM_CLOCK, Clock
from sloguard.resilience._local import LocalBreaker
from sloguard.resilience._types import (
    Admission,
    BreakerBackend,
    BreakerPolicy,
    BreakerState,
    Listener,
    Outcome,
)

__all__ = [
    "BreakerOpenError",
    "BreakerRegistry",
    "CircuitBreaker",
    "FastPath",
    "retry_after_header",
]

P = ParamSpec("P")
R = TypeVar("R")
Fallback = Callable[..., Any]
BackendFactory = Callable[[str, BreakerPolicy], BreakerBackend]

SUCCESS = Outcome.SUCCESS
FAILURE = Outcome.FAILURE
_DEFAULT_CLASSIFIER = FailureClassifier()

# The ``with breaker:`` blocks of this thread or task, as a linked list, innermost first:
# [breaker, admission, start, outer block, exited]. A ContextVar, so each asyncio task (and
# greenlet) has its own. Setting one costs more than everything else a block does, so only
# ``__enter__`` sets it: ``__exit__`` marks its block exited, and the next enter drops the
# exited blocks on top. An exited block stays reachable until then (the list is no longer
# than the deepest nesting plus one). A task's copy of its parent's context shares the
# parent's blocks, read-only but for the ``exited`` mark, which only a block's own exit
# sets. Blocks nest, so exit almost always finds its own block on top.
_Block = list[Any]
_ACTIVE: ContextVar[_Block | None] = ContextVar("sloguard_breaker_blocks", default=None)


class FastPath(Protocol):
    """What a backend lets callers skip ``admit`` and ``record`` with, on a closed breaker.

    A backend offers one as its ``fast_path`` attribute (optional: backends without it
    are always called; :class:`LocalBreaker` and the Redis-shared backend offer their
    :class:`~sloguard.resilience._core.BreakerCore`). The promises:

    * while ``closed_admission`` is set, ``admit()`` would return that very object and do
      nothing else, so a caller may read the attribute instead;
    * ``closed_success``, when not None, counts a SUCCESS of the admission that is still
      ``closed_admission`` exactly as ``record`` would, from any thread without a lock;
      it is offered only when no strategy needs call durations.
    """

    @property
    def closed_admission(self) -> Admission | None: ...

    @property
    def closed_success(self) -> Callable[[], object] | None: ...


class _NoFastPath:
    """Stands in for a backend that offers no fast path: every call goes to the backend."""

    __slots__ = ()
    closed_admission: Admission | None = None
    closed_success: Callable[[], object] | None = None


_NO_FAST_PATH = _NoFastPath()


def _fast_path(backend: BreakerBackend) -> FastPath:
    if isinstance(backend, LocalBreaker):
        return backend.core
    fast: FastPath | None = getattr(backend, "fast_path", None)
    return fast if fast is not None else _NO_FAST_PATH


def retry_after_header(retry_after_s: float) -> str:
    """``Retry-After`` in whole seconds, rounded up, at least 1."""
    if not math.isfinite(retry_after_s):
        raise ValueError(f"retry_after_s must be finite, not {retry_after_s!r}")
    return str(max(1, math.ceil(retry_after_s)))


class BreakerOpenError(SloguardHTTPError):
    """The breaker rejected the call: open, or half-open with every probe slot taken."""

    def __init__(self, name: str, retry_after_s: float, state: BreakerState) -> None:
        header = retry_after_header(retry_after_s)
        super().__init__(
            "BRK_503",
            f"a dependency is unavailable ({state.value} circuit); retry in {header} s",
            headers={"Retry-After": header},
        )
        self.name = name
        self.retry_after_s = retry_after_s
        self.state = state

    @classmethod
    def from_admission(cls, name: str, admission: Admission) -> BreakerOpenError:
        return cls(name, admission.retry_after_s, admission.state)


class CircuitBreaker:
    """A named breaker: decorator, context manager and ``call``; see the module docstring."""

    __slots__ = (
        "__weakref__",
        "_admit",
        "_backend",
        "_classify",
        "_fallback",
        "_fallback_on_failure",
        "_fast",
        "_monotonic",
        "_record",
        "_success",
        "_sync_admit_async",
        "_timed",
    )

    def __init__(
        self,
        name: str,
        policy: BreakerPolicy | None = None,
        *,
        classifier: FailureClassifier | None = None,
        backend: BreakerBackend | None = None,
        fallback: Fallback | None = None,
        fallback_on_failure: bool = False,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if backend is None:
            backend = LocalBreaker(name, policy, clock=clock)
        elif backend.name != name:
            raise ValueError(f"backend: its name {backend.name!r} is not the breaker's {name!r}")
        elif policy is not None and policy != backend.policy:
            raise ValueError("policy: differs from the backend's policy (give one or the other)")
        if fallback_on_failure and fallback is None:
            raise ValueError("fallback_on_failure: needs a fallback")
        self._backend = backend
        self._admit = backend.admit
        self._record = backend.record
        # With a fast path (in memory, or shared through Redis), a closed breaker's admission
        # is one attribute read, no call.
        self._fast = _fast_path(backend)
        # ... and, without a window strategy, a closed-state success takes no lock.
        self._success = self._fast.closed_success
        # The in-memory backend never waits, so async callers skip a coroutine per call.
        self._sync_admit_async = isinstance(backend, LocalBreaker)
        self._classify = (classifier or _DEFAULT_CLASSIFIER).classify_exception
        self._fallback = fallback
        self._fallback_on_failure = fallback_on_failure
        self._monotonic = clock.monotonic
        # Durations matter only to the slow-call strategy; without it no clock is read.
        self._timed = backend.policy.slow_call_ratio is not None

    @property
    def name(self) -> str:
        return self._backend.name

    @property
    def policy(self) -> BreakerPolicy:
        return self._backend.policy

    @property
    def state(self) -> BreakerState:
        return self._backend.state

    @property
    def backend(self) -> BreakerBackend:
        return self._backend

    def add_listener(self, listener: Listener) -> None:
        self._backend.add_listener(listener)

    def force_open(self) -> None:
        self._backend.force_open()

    def reset(self) -> None:
        self._backend.reset()

    # --- calls ------------------------------------------------------------------------------
    #
    # The decorator is the hot path, so its wrappers repeat the bodies of ``call`` and
    # ``call_async`` with everything bound to locals. With a fast path (``FastPath``: in
    # memory or shared through Redis), a closed breaker admits with one attribute read
    # (``fast.closed_admission``, always an allowed admission) and, without a window
    # strategy, counts a success with one lock-free ``success()`` -- provided the admission
    # is still the current one (see BreakerCore's "Lock-free successes"); anything else goes
    # through the backend's ``record``.

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        """Decorate a sync or async function."""
        if inspect.iscoroutinefunction(fn):
            return cast("Callable[P, R]", self._wrap_async(fn))
        if self._success is not None:
            return self._wrap_lock_free(fn)
        admit, record, classify, monotonic, fast = (
            self._admit,
            self._record,
            self._classify,
            self._monotonic,
            self._fast,
        )
        timed, rejected = self._timed, self._rejected
        fallback = self._fallback if self._fallback_on_failure else None

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            admission = fast.closed_admission
            if admission is None:
                admission = admit()
                if not admission.allowed:
                    return cast("R", rejected(admission, args, kwargs))
            start = monotonic() if timed else 0.0
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                outcome = classify(exc)
                record(admission, outcome, monotonic() - start if timed else 0.0)
                if outcome is FAILURE and fallback is not None:
                    return cast("R", fallback(exc, *args, **kwargs))
                raise
            record(admission, SUCCESS, monotonic() - start if timed else 0.0)
            return result

        return wrapper

    def _wrap_lock_free(self, fn: Callable[P, R]) -> Callable[P, R]:
        """The sync wrapper for a fast-path breaker with no window (so no timing either)."""
        admit, record, classify, fast = self._admit, self._record, self._classify, self._fast
        success = cast("Callable[[], object]", self._success)
        rejected = self._rejected
        fallback = self._fallback if self._fallback_on_failure else None

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            admission = fast.closed_admission
            if admission is None:
                admission = admit()
                if not admission.allowed:
                    return cast("R", rejected(admission, args, kwargs))
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                outcome = classify(exc)
                record(admission, outcome, 0.0)
                if outcome is FAILURE and fallback is not None:
                    return cast("R", fallback(exc, *args, **kwargs))
                raise
            if admission is fast.closed_admission:
                success()
            else:
                record(admission, SUCCESS, 0.0)
            return result

        return wrapper

    def _wrap_async(self, fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        """The async wrapper: the body of ``call_async``, one coroutine per call, not two."""
        admit, record, classify, monotonic, fast = (
            self._admit,
            self._record,
            self._classify,
            self._monotonic,
            self._fast,
        )
        timed, rejected, backend = self._timed, self._rejected, self._backend
        # With no window strategy ``timed`` is false and every duration is 0.0.
        success = self._success
        admit_async = admit if self._sync_admit_async else None
        fallback = self._fallback if self._fallback_on_failure else None

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            admission = fast.closed_admission
            if admission is None:
                admission = admit_async() if admit_async else await backend.admit_async()
                if not admission.allowed:
                    return cast("R", await _maybe_await(rejected(admission, args, kwargs)))
            start = monotonic() if timed else 0.0
            try:
                result = await fn(*args, **kwargs)
            except BaseException as exc:
                outcome = classify(exc)
                record(admission, outcome, monotonic() - start if timed else 0.0)
                if outcome is FAILURE and fallback is not None:
                    return cast("R", await _maybe_await(fallback(exc, *args, **kwargs)))
                raise
            if success is not None and admission is fast.closed_admission:
                success()
            else:
                record(admission, SUCCESS, monotonic() - start if timed else 0.0)
            return result

        return wrapper

    def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """``fn(*args, **kwargs)`` through the breaker."""
        fast = self._fast
        admission = fast.closed_admission
        if admission is None:
            admission = self._admit()
            if not admission.allowed:
                return cast("R", self._rejected(admission, args, kwargs))
        start = self._monotonic() if self._timed else 0.0
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            outcome = self._classify(exc)
            self._record(admission, outcome, self._monotonic() - start if self._timed else 0.0)
            if outcome is FAILURE and self._fallback_on_failure:
                return cast("R", self._fallback(exc, *args, **kwargs))  # type: ignore[misc]
            raise
        self._succeeded(admission, start)
        return result

    async def call_async(
        self, fn: Callable[P, Awaitable[R]], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """``await fn(*args, **kwargs)`` through the breaker."""
        admission = self._fast.closed_admission
        if admission is None:
            if self._sync_admit_async:
                admission = self._admit()
            else:
                admission = await self._backend.admit_async()
            if not admission.allowed:
                return cast("R", await _maybe_await(self._rejected(admission, args, kwargs)))
        start = self._monotonic() if self._timed else 0.0
        try:
            result = await fn(*args, **kwargs)
        except BaseException as exc:
            outcome = self._classify(exc)
            self._record(admission, outcome, self._monotonic() - start if self._timed else 0.0)
            if outcome is FAILURE and self._fallback_on_failure:
                fallback = cast("Fallback", self._fallback)
                return cast("R", await _maybe_await(fallback(exc, *args, **kwargs)))
            raise
        self._succeeded(admission, start)
        return result

    def _succeeded(self, admission: Admission, start: float) -> None:
        success = self._success
        if success is not None and admission is self._fast.closed_admission:
            success()
        else:
            self._record(admission, SUCCESS, self._monotonic() - start if self._timed else 0.0)

    def _rejected(self, admission: Admission, args: Any, kwargs: Any) -> Any:
        error = BreakerOpenError.from_admission(self._backend.name, admission)
        if self._fallback is None:
            raise error
        return self._fallback(error, *args, **kwargs)

    # --- blocks -----------------------------------------------------------------------------

    def __enter__(self) -> CircuitBreaker:
        admission = self._fast.closed_admission
        if admission is None:
            admission = self._admit()
            if not admission.allowed:
                raise BreakerOpenError.from_admission(self._backend.name, admission)
        outer = _ACTIVE.get()
        while outer is not None and outer[4]:
            outer = outer[3]
        _ACTIVE.set([self, admission, self._monotonic() if self._timed else 0.0, outer, False])
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # ``_exit`` again, inlined for the common case: a success of the innermost block.
        block = _ACTIVE.get()
        if exc is None and block is not None and block[0] is self and not block[4]:
            block[4] = True
            admission, start = block[1], block[2]
            if self._success is not None and admission is self._fast.closed_admission:
                self._success()
            else:
                self._record(admission, SUCCESS, self._monotonic() - start if self._timed else 0.0)
            return
        self._exit(exc)

    async def __aenter__(self) -> CircuitBreaker:
        admission = self._fast.closed_admission
        if admission is None:
            if self._sync_admit_async:
                admission = self._admit()
            else:
                admission = await self._backend.admit_async()
            if not admission.allowed:
                raise BreakerOpenError.from_admission(self._backend.name, admission)
        outer = _ACTIVE.get()
        while outer is not None and outer[4]:
            outer = outer[3]
        _ACTIVE.set([self, admission, self._monotonic() if self._timed else 0.0, outer, False])
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._exit(exc)

    def _exit(self, exc: BaseException | None) -> None:
        block = _ACTIVE.get()
        # The innermost unexited block of this breaker: blocks of others above it were
        # exited out of order (``b1.__enter__``, ``b2.__enter__``, ``b1.__exit__``).
        while block is not None and (block[4] or block[0] is not self):
            block = block[3]
        if block is None:
            raise RuntimeError(f"breaker {self.name!r}: a block exited that never entered")
        block[4] = True
        _, admission, start, _, _ = block
        if exc is None:
            self._succeeded(admission, start)
        else:
            outcome = self._classify(exc)
            self._record(admission, outcome, self._monotonic() - start if self._timed else 0.0)

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.name!r}, state={self.state.value})"


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


class BreakerRegistry:
    """Breakers by name, created on first use; thread-safe.

    ``policy`` is every breaker's policy unless ``policy_factory(name)``
    gives one; ``backend_factory(name, policy)`` builds each backend
    (default: :class:`LocalBreaker` on ``clock``). Listeners added here are
    attached to every breaker, present and future.
    """

    def __init__(
        self,
        policy: BreakerPolicy | None = None,
        *,
        policy_factory: Callable[[str], BreakerPolicy] | None = None,
        backend_factory: BackendFactory | None = None,
        classifier: FailureClassifier | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._policy = policy or BreakerPolicy()
        self._policy_factory = policy_factory
        self._backend_factory = backend_factory
        self._classifier = classifier
        self._clock = clock
        self._breakers: dict[str, CircuitBreaker] = {}
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    @property
    def clock(self) -> Clock:
        return self._clock

    def get(self, name: str) -> CircuitBreaker:
        breaker = self._breakers.get(name)
        if breaker is not None:
            return breaker
        with self._lock:
            breaker = self._breakers.get(name)
            if breaker is None:
                breaker = self._create(name)
                self._breakers[name] = breaker
        return breaker

    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)
            breakers = list(self._breakers.values())
        for breaker in breakers:
            breaker.add_listener(listener)

    def breakers(self) -> list[CircuitBreaker]:
        return list(self._breakers.values())

    def __iter__(self) -> Iterator[CircuitBreaker]:
        return iter(self.breakers())

    def __len__(self) -> int:
        return len(self._breakers)

    def __contains__(self, name: object) -> bool:
        return name in self._breakers

    def _create(self, name: str) -> CircuitBreaker:
        policy = self._policy_factory(name) if self._policy_factory else self._policy
        backend = (
            self._backend_factory(name, policy)
            if self._backend_factory is not None
            else LocalBreaker(name, policy, clock=self._clock)
        )
        breaker = CircuitBreaker(
            name, classifier=self._classifier, backend=backend, clock=self._clock
        )
        for listener in self._listeners:
            breaker.add_listener(listener)
        return breaker
