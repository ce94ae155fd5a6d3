"""The rate limit store shared by every instance: Redis, one script call per decision.

Split from :mod:`sloguard.resilience._limit_store` (which re-exports
:class:`RedisLimiterStore`): the memory store needs none of this.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sloguard.resilience._clock import Clock
from sloguard.resilience._gcra import Gcra
from sloguard.resilience._ratelimit import (
    LimitDecision,
    LimitRequest,
    Model,
    RateLimit,
    storage_key,
    uncharged,
)

if TYPE_CHECKING:
    import redis
    import redis.asyncio

__all__ = ["LIMIT_SCRIPT", "LIMIT_SCRIPT_SHA", "RedisLimiterStore"]

logger = logging.getLogger("sloguard.resilience.ratelimit")

#: Decides groups of limits; each group is all-or-nothing (charged only when
#: every limit in it admits). KEYS: one per decision. ARGV[1]: now in
#: microseconds, or "" to use Redis TIME; ARGV[2]: the group sizes, space
#: separated; ARGV[3]: 5 numbers per decision, space separated: algorithm
#: (1 GCRA, 2 sliding window), limit, period (us), burst, cost. Returns one
#: string of 4 integers per decision: allowed (0/1), remaining, reset (us,
#: floor), retry after (us, ceil). Packing the numbers into two strings (not
#: one argument each) and the answer into one keeps redis-py's per-argument
#: encoding and per-element parsing (most of the client's time) off the path.
#: Same arithmetic as _gcra.py and _sliding.py, in microseconds. A single
#: decision (the usual call) skips the group bookkeeping: 5.8 us of Redis
#: time per call instead of 7.4 us (Redis 7.0, ``INFO commandstats``).
LIMIT_SCRIPT = """
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end
local floor, ceil, format = math.floor, math.ceil, string.format

-- one decision: allowed (0/1), remaining, reset, retry, and when allowed the
-- value to store and its time to live (ms)
local function decide(key, algo, limit, period, burst, cost)
  if algo == 1 then
    local emission = period / limit
    local tol = burst * emission
    local tat = tonumber(redis.call('GET', key) or '0') or 0
    local base = tat
    if now > base then base = now end
    local new_tat = base + cost * emission
    if new_tat - now <= tol + 1 then
      local reset = new_tat - now
      local remaining = floor((tol - (new_tat - now) + 1) / emission)
      return 1, remaining, reset, 0, format('%.17g', new_tat), ceil(reset / 1000) + 1
    end
    local retry = new_tat - tol - now
    if cost > burst and retry < tol then retry = tol end
    return 0, floor((tol - (base - now) + 1) / emission), base - now, retry
  end
  local w = floor(now / period)
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
    local reset = (w + 2) * period - now
    return 1, floor(limit - used - cost + 1e-6), reset, 0,
      format('%d:%d:%d', w, prev, cur + cost), ceil(reset / 1000) + 1
  end
  local room = limit - cost
  local retry
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
  return 0, floor(limit - used + 1e-6), retry, retry
end

local function answer(allowed, remaining, reset, retry)
  if remaining < 0 then remaining = 0 end
  return format('%d %d %d %d', allowed, remaining, floor(reset), ceil(retry))
end

if #KEYS == 1 then
  -- the common case, without the tables the groups need
  local algo, limit, period, burst, cost = string.match(
    ARGV[3], '^(%S+) (%S+) (%S+) (%S+) (%S+)$')
  local allowed, remaining, reset, retry, value, ttl = decide(
    KEYS[1], tonumber(algo), tonumber(limit), tonumber(period), tonumber(burst), tonumber(cost))
  if allowed == 1 then redis.call('SET', KEYS[1], value, 'PX', ttl) end
  return answer(allowed, remaining, reset, retry)
end

local params = {}
for number in string.gmatch(ARGV[3], '%S+') do params[#params + 1] = tonumber(number) end
local out = {}
local k = 1
for size in string.gmatch(ARGV[2], '%d+') do
  local wkeys, wvalues, wttls = {}, {}, {}
  local all = true
  for _ = 1, tonumber(size) do
    local a = 5 * k - 4
    local allowed, remaining, reset, retry, value, ttl = decide(
      KEYS[k], params[a], params[a + 1], params[a + 2], params[a + 3], params[a + 4])
    if allowed == 1 then
      wkeys[#wkeys + 1], wvalues[#wvalues + 1], wttls[#wttls + 1] = KEYS[k], value, ttl
    else
      all = false
    end
    out[k] = answer(allowed, remaining, reset, retry)
    k = k + 1
  end
  if all then
    for i = 1, #wkeys do redis.call('SET', wkeys[i], wvalues[i], 'PX', wttls[i]) end
  end
end
return table.concat(out, ' ')
"""

LIMIT_SCRIPT_SHA = hashlib.sha1(LIMIT_SCRIPT.encode(), usedforsecurity=False).hexdigest()
_REDIS_EXTRA = "the Redis rate limit store needs redis-py: pip install 'sloguard[redis]'"
#: builds a LimitDecision from all eight fields, skipping the named tuple's __new__
_decision = tuple.__new__
_Pending = tuple[Sequence[LimitRequest], "asyncio.Future[list[LimitDecision]]"]


class _Waiter:
    """A thread's decisions in the sync group commit, and how it is woken."""

    __slots__ = ("answer", "ready", "requests")

    def __init__(self, requests: Sequence[LimitRequest]) -> None:
        self.requests = requests
        self.answer: list[LimitDecision] | None = None
        #: held until the leader has the answer (or hands this thread the lead)
        self.ready = threading.Lock()
        self.ready.acquire()


class RedisLimiterStore:
    """Limit state in Redis: one script call per decision, never blocking, never raising.

    * Time comes from Redis ``TIME`` inside the script, so instances with
      skewed clocks agree; ``clock`` (its ``wall()``) replaces it, for tests.
    * Every decision is one round trip. An async decision made while no
      other call is waiting on Redis awaits its script call directly (no
      task, no extra loop turn); decisions made while one is are queued and
      coalesced, per event-loop turn, into one script call (at most
      ``max_batch`` decisions), so 64 concurrent callers cost one round trip
      each in latency but one call in Redis and in the client.
    * The sync API batches across threads the same way (a group commit): a
      thread that finds no call in flight calls Redis for itself and for
      every thread that queued meanwhile, then hands the lead to the next
      waiting thread. A lone thread pays nothing for it; eight threads share
      calls instead of queueing on the GIL and Redis one by one. A thread
      may wait for the call in flight before its own: at most two
      ``timeout_s`` in all.
    * A call that fails or takes longer than ``timeout_s`` (default 50 ms)
      gives degraded decisions: admitted (fail-open), or refused with
      ``RATE_503`` for limits with ``fail_closed``. The store then stays
      "down" (no network at all) for a backoff of ``backoff_s`` doubling up
      to ``max_backoff_s``, jittered, before the next call tries again.
    * ``NOSCRIPT`` (a restarted or flushed Redis) is answered by sending the
      script body with ``EVAL``, which loads it again.
    * The sync API (WSGI) uses redis-py's blocking client with the same
      timeout: a WSGI worker thread may block, and a loop thread would add two
      thread hand-offs to every decision.

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
        #: the sync group commit: threads queue; one at a time (the leader) calls
        self._sync_mutex = threading.Lock()
        self._sync_queue: list[_Waiter] = []
        self._sync_leading = False
        self._async_client: redis.asyncio.Redis | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[_Pending] = []
        self._pending_keys = 0
        self._scheduled = False
        #: script calls awaiting Redis on the loop (inline or flush)
        self._in_flight = 0
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
        if len(groups) == 1 and len(groups[0]) == 1:
            ((limit, key, cost),) = groups[0]
            model = limit.model_for(key)
            static = self._args.get(model)
            if static is None:
                static = self._args[model] = _static_args(model)
            return [self.prefix + storage_key(limit, key)], [now, "1", f"{static} {cost}"]
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
        if len(groups) == 1 and len(groups[0]) == 1:
            # one decision (the usual call): no group bookkeeping
            ((limit, key, _),) = groups[0]
            words = reply.split()
            decision = (
                int(words[0]) == 1,
                limit.model_for(key).limit,
                int(words[1]),
                int(words[2]) / 1e6,
                int(words[3]) / 1e6,
                limit.name,
                limit.window_s,
                False,
            )
            return [[_decision(LimitDecision, decision)]]
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
        """Group commit: one thread calls Redis for every thread that asked meanwhile."""
        if not requests:
            return []
        if self._is_down():
            return self._degraded(requests)
        waiter = _Waiter(requests)
        with self._sync_mutex:
            self._sync_queue.append(waiter)
            lead = not self._sync_leading
            self._sync_leading = True
        if not lead:
            waiter.ready.acquire()
            if waiter.answer is not None:
                return waiter.answer
            # handed the lead: nobody has called for us yet
        with self._sync_mutex:
            queue = self._sync_queue
            batch, self._sync_queue = queue[: self.max_batch], queue[self.max_batch :]
        answers: list[list[LimitDecision]] | None = None
        try:
            answers = self._call_sync([w.requests for w in batch])
        finally:
            if answers is None:  # interrupted: the others must not wait forever
                answers = [self._degraded(w.requests) for w in batch]
            with self._sync_mutex:
                following = self._sync_queue[0] if self._sync_queue else None
                self._sync_leading = following is not None
            if following is not None:
                following.ready.release()
            for other, answer in zip(batch, answers, strict=True):
                other.answer = answer
                if other is not waiter:
                    other.ready.release()
        assert waiter.answer is not None
        return waiter.answer

    def _call_sync(self, groups: list[Sequence[LimitRequest]]) -> list[list[LimitDecision]]:
        """One script call for ``groups``; degraded answers when it fails."""
        try:
            keys, argv = self._encode(groups)
            client = self._sync()
            try:
                reply = client.evalsha(LIMIT_SCRIPT_SHA, len(keys), *keys, *argv)
            except self._noscript:
                reply = client.eval(LIMIT_SCRIPT, len(keys), *keys, *argv)
            answers = self._decode(groups, reply)
        except Exception as exc:
            return self._failed(groups, exc)
        self.calls += 1
        self._mark_up()
        return answers

    def _failed(
        self, groups: list[Sequence[LimitRequest]], exc: Exception
    ) -> list[list[LimitDecision]]:
        if not isinstance(exc, self._errors):
            logger.error("rate limit store call failed unexpectedly", exc_info=exc)
        self._mark_down(exc)
        return [self._degraded(requests) for requests in groups]

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
        if not self._in_flight:
            # nothing else is waiting on Redis: call it now, with no hand-off
            # to a flush task (three loop turns); callers arriving meanwhile
            # queue and are coalesced into the next flush
            self._in_flight += 1
            try:
                return (await self._call([requests]))[0]
            finally:
                self._in_flight -= 1
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
            # no socket_timeout: _call's asyncio.timeout bounds the whole call
            # (connect, write, read), and redis-py's would wrap every write in
            # asyncio.wait_for, a task and two more loop turns on Python 3.11;
            # a cancelled read or write disconnects, so no reply is left behind
            socket_timeout=None,
            socket_connect_timeout=self.timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
        self._pending = []
        self._pending_keys = 0
        self._scheduled = False
        self._in_flight = 0

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
        self._in_flight += 1
        try:
            answers = await self._call([requests for requests, _ in batch])
        finally:
            self._in_flight -= 1
        for (_, future), decisions in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(decisions)

    async def _call(self, groups: list[Sequence[LimitRequest]]) -> list[list[LimitDecision]]:
        """One script call for ``groups``; degraded answers when it fails or times out."""
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
            return self._failed(groups, exc)
        self.calls += 1
        self._mark_up()
        return answers

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
