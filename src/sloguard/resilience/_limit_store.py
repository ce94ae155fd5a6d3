"""Where limit state lives: this process's memory, or Redis shared by every instance.

:class:`MemoryLimiterStore` keeps one entry per (limit, key): a float TAT for
GCRA, a :class:`~sloguard.resilience._sliding.SlidingState` for the sliding
window. Every entry knows when it stops mattering (a GCRA key whose TAT is
past is a full bucket; a sliding key two windows old counts nothing), so
memory does not grow with key cardinality: past ``max_keys`` entries, the
expired ones are swept, and if that is not enough the least recently used
go (their keys start afresh: the store forgets, it never refuses). One
``threading.Lock`` guards the dicts; it is held for microseconds and never
across an ``await``, so the async API calls the sync one directly.

:class:`RedisLimiterStore` (below the memory store) shares the state.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import random
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sloguard.resilience._clock import SYSTEM_CLOCK, Clock
from sloguard.resilience._gcra import Gcra
from sloguard.resilience._ratelimit import (
    LimitDecision,
    LimitRequest,
    Model,
    RateLimit,
    storage_key,
)
from sloguard.resilience._sliding import EMPTY_STATE, SlidingState

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["LIMIT_SCRIPT", "MemoryLimiterStore", "RedisLimiterStore", "uncharged"]

logger = logging.getLogger("sloguard.resilience.ratelimit")

#: (storage key, GCRA TAT or sliding expiry, sliding state or None for GCRA)
_Write = tuple[str, float, SlidingState | None]


def uncharged(decision: LimitDecision, cost: int) -> LimitDecision:
    """An admitting decision that was not charged because another limit refused."""
    if not decision.allowed or decision.degraded:
        return decision
    return LimitDecision(
        True,
        decision.limit,
        min(decision.limit, decision.remaining + cost),
        decision.reset_s,
        0.0,
        decision.policy,
        decision.window_s,
    )


class MemoryLimiterStore:
    """Limit state in a dict; exact and fast, but per process."""

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK, max_keys: int = 100_000) -> None:
        if max_keys < 1:
            raise ValueError("memory limiter store field 'max_keys': must be at least 1")
        self._clock = clock
        self.max_keys = max_keys
        self._tats: dict[str, float] = {}
        self._windows: dict[str, tuple[float, SlidingState]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tats) + len(self._windows)

    async def decide(self, limit: RateLimit, key: str, cost: int = 1) -> LimitDecision:
        return self.decide_sync(limit, key, cost)

    async def decide_all(self, requests: Sequence[LimitRequest]) -> list[LimitDecision]:
        return self.decide_all_sync(requests)

    def decide_sync(self, limit: RateLimit, key: str, cost: int = 1) -> LimitDecision:
        now = self._clock.monotonic()
        skey = storage_key(limit, key)
        with self._lock:
            decision, write = self._evaluate(limit, key, skey, cost, now)
            if write is not None:
                self._write(write, now)
        return decision

    def decide_all_sync(self, requests: Sequence[LimitRequest]) -> list[LimitDecision]:
        now = self._clock.monotonic()
        keys = [storage_key(limit, key) for limit, key, _ in requests]
        with self._lock:
            evaluated = [
                self._evaluate(limit, key, skey, cost, now)
                for (limit, key, cost), skey in zip(requests, keys, strict=True)
            ]
            writes = [write for _, write in evaluated if write is not None]
            if len(writes) == len(evaluated):
                for write in writes:
                    self._write(write, now)
                return [decision for decision, _ in evaluated]
        return [
            uncharged(decision, cost)
            for (decision, _), (_, _, cost) in zip(evaluated, requests, strict=True)
        ]

    def _evaluate(
        self, limit: RateLimit, key: str, skey: str, cost: int, now: float
    ) -> tuple[LimitDecision, _Write | None]:
        """The decision, and the write that charges it (None when refused)."""
        model = limit.model_for(key)
        if isinstance(model, Gcra):
            g = model.decide(self._tats.get(skey, 0.0), now, cost)
            decision = LimitDecision(
                g.allowed,
                model.limit,
                g.remaining,
                g.reset_after_s,
                g.retry_after_s,
                limit.name,
                limit.window_s,
            )
            return decision, ((skey, g.new_tat, None) if g.allowed else None)
        entry = self._windows.get(skey)
        s = model.decide(entry[1] if entry is not None else EMPTY_STATE, now, cost)
        decision = LimitDecision(
            s.allowed,
            model.limit,
            s.remaining,
            s.reset_after_s,
            s.retry_after_s,
            limit.name,
            limit.window_s,
        )
        if not s.allowed:
            return decision, None
        return decision, (skey, (s.state.window + 2) * model.period_s, s.state)

    def _write(self, write: _Write, now: float) -> None:
        skey, expires, state = write
        if state is None:
            if self._tats.pop(skey, None) is None and len(self) >= self.max_keys:
                self._make_room(now)
            self._tats[skey] = expires
        else:
            if self._windows.pop(skey, None) is None and len(self) >= self.max_keys:
                self._make_room(now)
            self._windows[skey] = (expires, state)

    def _make_room(self, now: float) -> None:
        """Drop expired entries; if still at 90 % or more, the least recently used."""
        for skey in [k for k, tat in self._tats.items() if tat <= now]:
            del self._tats[skey]
        for skey in [k for k, (expires, _) in self._windows.items() if expires <= now]:
            del self._windows[skey]
        target = int(self.max_keys * 0.9)
        excess = len(self) - target
        if excess <= 0:
            return
        # each dict is in least-recently-written order; trim both in proportion
        total = len(self)
        tables: tuple[dict[str, Any], ...] = (self._tats, self._windows)
        shares = [excess * len(table) // total + 1 for table in tables]
        for table, share in zip(tables, shares, strict=True):
            for skey in list(itertools.islice(table, share)):
                del table[skey]


# --------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------

#: Decides groups of limits; each group is all-or-nothing (charged only when
#: every limit in it admits). KEYS: one per decision. ARGV[1]: now in
#: microseconds, or "" to use Redis TIME; ARGV[2]: the group sizes, space
#: separated; ARGV[3]: 5 numbers per decision, space separated: algorithm
#: (1 GCRA, 2 sliding window), limit, period (us), burst, cost. Returns one
#: string of 4 integers per decision: allowed (0/1), remaining, reset (us,
#: floor), retry after (us, ceil). Packing the numbers into two strings (not
#: one argument each) and the answer into one keeps redis-py's per-argument
#: encoding and per-element parsing (most of the client's time) off the path.
#: Same arithmetic as _gcra.py and _sliding.py, in microseconds.
LIMIT_SCRIPT = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local params = {}
for number in string.gmatch(ARGV[3], '%S+') do params[#params + 1] = tonumber(number) end
local out = {}
local k = 1
local a = 1
for size in string.gmatch(ARGV[2], '%d+') do
  local writes = {}
  local all = true
  for i = 1, tonumber(size) do
    local key = KEYS[k]
    local algo, limit, period = params[a], params[a + 1], params[a + 2]
    local burst, cost = params[a + 3], params[a + 4]
    a = a + 5
    k = k + 1
    local allowed, remaining, reset, retry = 0, 0, 0, 0
    if algo == 1 then
      local emission = period / limit
      local tol = burst * emission
      local tat = tonumber(redis.call('GET', key) or '0') or 0
      local base = tat
      if now > base then base = now end
      local new_tat = base + cost * emission
      if new_tat - now <= tol + 1 then
        allowed = 1
        remaining = math.floor((tol - (new_tat - now) + 1) / emission)
        reset = new_tat - now
        writes[#writes + 1] = {key, string.format('%.17g', new_tat), math.ceil(reset / 1000) + 1}
      else
        remaining = math.floor((tol - (base - now) + 1) / emission)
        retry = new_tat - tol - now
        if cost > burst and retry < tol then retry = tol end
        reset = base - now
      end
    else
      local w = math.floor(now / period)
      local pw, pp, pc = -1, 0, 0
      local raw = redis.call('GET', key)
      if raw then
        local x, y, z = string.match(raw, '^(%-?%d+):(%d+):(%d+)$')
        if x then pw, pp, pc = tonumber(x), tonumber(y), tonumber(z) end
      end
      local prev, cur = 0, 0
      if w == pw then prev, cur = pp, pc elseif w == pw + 1 then prev = pc end
      local elapsed = now - w * period
      local used = prev * (1 - elapsed / period) + cur
      if used + cost <= limit + 1e-6 then
        allowed = 1
        remaining = math.floor(limit - used - cost + 1e-6)
        reset = (w + 2) * period - now
        writes[#writes + 1] = {
          key, string.format('%d:%d:%d', w, prev, cur + cost), math.ceil(reset / 1000) + 1}
      else
        remaining = math.floor(limit - used + 1e-6)
        local room = limit - cost
        if room < 0 then
          retry = period
        elseif cur <= room and prev > 0 then
          retry = period * (1 - (room - cur) / prev) - elapsed
          if retry < 0 then retry = 0 end
        elseif cur <= room then
          retry = period - elapsed
        else
          retry = period - elapsed + period * (1 - room / cur)
        end
        reset = retry
      end
    end
    if allowed == 0 then all = false end
    if remaining < 0 then remaining = 0 end
    out[#out + 1] = string.format(
      '%d %d %d %d', allowed, remaining, math.floor(reset), math.ceil(retry))
  end
  if all then
    for _, w in ipairs(writes) do
      redis.call('SET', w[1], w[2], 'PX', w[3])
    end
  end
end
return table.concat(out, ' ')
"""

LIMIT_SCRIPT_SHA = hashlib.sha1(LIMIT_SCRIPT.encode(), usedforsecurity=False).hexdigest()
_REDIS_EXTRA = "the Redis rate limit store needs redis-py: pip install 'sloguard[redis]'"
_Pending = tuple[Sequence[LimitRequest], "asyncio.Future[list[LimitDecision]]"]


class RedisLimiterStore:
    """Limit state in Redis: one script call per decision, never blocking, never raising.

    * Time comes from Redis ``TIME`` inside the script, so instances with
      skewed clocks agree; ``clock`` (its ``wall()``) replaces it, for tests.
    * Every decision is one round trip. Concurrent async decisions made in
      the same event-loop turn are coalesced into one script call (at most
      ``max_batch`` decisions), so 64 concurrent callers cost one round trip
      each in latency but one call in Redis and in the client.
    * A call that fails or takes longer than ``timeout_s`` (default 50 ms)
      gives degraded decisions: admitted (fail-open), or refused with
      ``RATE_503`` for limits with ``fail_closed``. The store then stays
      "down" (no network at all) for a backoff of ``backoff_s`` doubling up
      to ``max_backoff_s``, jittered, before the next call tries again.
    * ``NOSCRIPT`` (a restarted or flushed Redis) is answered by sending the
      script body with ``EVAL``, which loads it again.
    * The sync API (WSGI) uses redis-py's blocking client with the same
      timeout: a WSGI worker thread may block, and a loop thread would add two
      thread hand-offs to every decision for no gain at WSGI concurrency.

    Redis Cluster is not supported: a script call's keys must share a slot.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "sloguard:rl:",
        timeout_s: float = 0.05,
        backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
        max_batch: int = 256,
        clock: Clock | None = None,
    ) -> None:
        if not (timeout_s > 0 and backoff_s > 0 and max_backoff_s >= backoff_s):
            raise ValueError(
                "redis limiter store fields 'timeout_s', 'backoff_s', 'max_backoff_s': "
                "must be positive, max_backoff_s >= backoff_s"
            )
        if max_batch < 1:
            raise ValueError("redis limiter store field 'max_batch': must be at least 1")
        try:
            from redis.exceptions import NoScriptError, RedisError
        except ImportError:
            raise ImportError(_REDIS_EXTRA) from None
        self._errors: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)
        self._noscript: type[BaseException] = NoScriptError
        self.url = url
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.max_batch = max_batch
        self._clock = clock
        self._down_until = 0.0
        self._failures = 0
        self._args: dict[Model, str] = {}
        self._sync_client: redis.Redis | None = None
        self._sync_lock = threading.Lock()
        self._async_client: redis.asyncio.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[_Pending] = []
        self._pending_keys = 0
        self._scheduled = False
        self._flushes: set[asyncio.Task[None]] = set()
        #: decisions answered without Redis (counters for metrics and tests)
        self.degraded_decisions = 0
        self.calls = 0

    # -- health ---------------------------------------------------------

    @property
    def healthy(self) -> bool:
        """False while the store is backing off after a failed call."""
        return self._failures == 0

    def _is_down(self) -> bool:
        return self._failures > 0 and time.monotonic() < self._down_until

    def _mark_down(self, exc: BaseException) -> None:
        self._failures += 1
        delay = min(self.max_backoff_s, self.backoff_s * 2 ** (self._failures - 1))
        self._down_until = time.monotonic() + delay * random.uniform(0.8, 1.2)
        if self._failures == 1:
            logger.warning(
                "rate limit store %s unreachable (%s: %s); deciding without it",
                _safe_url(self.url),
                type(exc).__name__,
                exc,
            )

    def _mark_up(self) -> None:
        if self._failures:
            logger.info("rate limit store %s reachable again", _safe_url(self.url))
        self._failures = 0

    def _degraded(self, requests: Sequence[LimitRequest]) -> list[LimitDecision]:
        self.degraded_decisions += len(requests)
        wait = max(1.0, self._down_until - time.monotonic())
        decisions = []
        for limit, key, _ in requests:
            model = limit.model_for(key)
            if limit.fail_closed:
                decision = LimitDecision(
                    False, model.limit, 0, wait, wait, limit.name, limit.window_s, degraded=True
                )
            else:
                decision = LimitDecision(
                    True, model.limit, model.limit, 0.0, 0.0, limit.name, limit.window_s, True
                )
            decisions.append(decision)
        return decisions

    # -- encoding -------------------------------------------------------

    def _encode(self, groups: Sequence[Sequence[LimitRequest]]) -> tuple[list[str], list[str]]:
        now = "" if self._clock is None else f"{self._clock.wall() * 1e6:.3f}"
        keys: list[str] = []
        params: list[str] = []
        prefix = self.prefix
        cache = self._args
        for requests in groups:
            for limit, key, cost in requests:
                keys.append(prefix + storage_key(limit, key))
                model = limit.model_for(key)
                static = cache.get(model)
                if static is None:
                    static = cache[model] = _static_args(model)
                params.append(f"{static} {cost}")
        sizes = " ".join([str(len(requests)) for requests in groups])
        return keys, [now, sizes, " ".join(params)]

    @staticmethod
    def _decode(
        groups: Sequence[Sequence[LimitRequest]], reply: bytes | str
    ) -> list[list[LimitDecision]]:
        numbers = [int(n) for n in reply.split()]
        answers: list[list[LimitDecision]] = []
        at = 0
        for requests in groups:
            decisions = []
            for limit, key, _ in requests:
                allowed, remaining, reset_us, retry_us = numbers[at : at + 4]
                at += 4
                decisions.append(
                    LimitDecision(
                        bool(allowed),
                        limit.model_for(key).limit,
                        int(remaining),
                        reset_us / 1e6,
                        retry_us / 1e6,
                        limit.name,
                        limit.window_s,
                    )
                )
            if not all(d.allowed for d in decisions):
                decisions = [
                    uncharged(d, cost) for d, (_, _, cost) in zip(decisions, requests, strict=True)
                ]
            answers.append(decisions)
        return answers

    # -- sync -----------------------------------------------------------

    def decide_sync(self, limit: RateLimit, key: str, cost: int = 1) -> LimitDecision:
        return self.decide_all_sync([(limit, key, cost)])[0]

    def decide_all_sync(self, requests: Sequence[LimitRequest]) -> list[LimitDecision]:
        if not requests:
            return []
        if self._is_down():
            return self._degraded(requests)
        keys, argv = self._encode([requests])
        try:
            client = self._sync()
            try:
                reply = client.evalsha(LIMIT_SCRIPT_SHA, len(keys), *keys, *argv)
            except self._noscript:
                reply = client.eval(LIMIT_SCRIPT, len(keys), *keys, *argv)
        except self._errors as exc:
            self._mark_down(exc)
            return self._degraded(requests)
        self.calls += 1
        self._mark_up()
        return self._decode([requests], reply)[0]

    def _sync(self) -> redis.Redis:
        if self._sync_client is None:
            from redis import Redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            with self._sync_lock:
                if self._sync_client is None:
                    # no retries inside redis-py: the store owns backoff
                    self._sync_client = Redis.from_url(
                        self.url,
                        socket_timeout=self.timeout_s,
                        socket_connect_timeout=self.timeout_s,
                        retry=Retry(NoBackoff(), 0),
                    )
        return self._sync_client

    # -- async ----------------------------------------------------------

    async def decide(self, limit: RateLimit, key: str, cost: int = 1) -> LimitDecision:
        return (await self.decide_all([(limit, key, cost)]))[0]

    async def decide_all(self, requests: Sequence[LimitRequest]) -> list[LimitDecision]:
        if not requests:
            return []
        if self._is_down():
            return self._degraded(requests)
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._bind(loop)
        future: asyncio.Future[list[LimitDecision]] = loop.create_future()
        self._pending.append((requests, future))
        self._pending_keys += len(requests)
        if self._pending_keys >= self.max_batch:
            self._launch()
        elif not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._launch)
        return await future

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """A redis.asyncio client belongs to one loop: start afresh on a new one."""
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self._loop = loop
        self._async_client = Redis.from_url(
            self.url,
            socket_timeout=self.timeout_s,
            socket_connect_timeout=self.timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._pending = []
        self._pending_keys = 0
        self._scheduled = False

    def _launch(self) -> None:
        self._scheduled = False
        batch, self._pending, self._pending_keys = self._pending, [], 0
        if not batch:
            return
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._flush(batch))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush(self, batch: list[_Pending]) -> None:
        groups = [requests for requests, _ in batch]
        try:
            keys, argv = self._encode(groups)
            client = self._async_client
            assert client is not None
            async with asyncio.timeout(self.timeout_s):
                try:
                    reply = await client.evalsha(LIMIT_SCRIPT_SHA, len(keys), *keys, *argv)
                except self._noscript:
                    reply = await client.eval(LIMIT_SCRIPT, len(keys), *keys, *argv)
            answers = self._decode(groups, reply)
        except Exception as exc:
            if not isinstance(exc, self._errors):
                logger.exception("rate limit store call failed unexpectedly")
            self._mark_down(exc)
            answers = [self._degraded(requests) for requests in groups]
        else:
            self.calls += 1
            self._mark_up()
        for (_, future), decisions in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(decisions)

    async def aclose(self) -> None:
        """Close the connections (the store can be used again afterwards)."""
        if self._flushes:
            await asyncio.gather(*self._flushes, return_exceptions=True)
        if self._async_client is not None:
            await self._async_client.aclose()
            self._async_client = None
            self._loop = None
        self.close_sync()

    def close_sync(self) -> None:
        if self._sync_client is not None:
            self._sync_client.close()
            self._sync_client = None


def _static_args(model: Model) -> str:
    """Algorithm, limit, period (us) and burst, as the script reads them."""
    period_us = repr(model.period_s * 1e6)
    if isinstance(model, Gcra):
        return f"1 {model.limit} {period_us} {model.burst}"
    return f"2 {model.limit} {period_us} 0"


def _safe_url(url: str) -> str:
    """The URL without a password (never log secrets)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()
