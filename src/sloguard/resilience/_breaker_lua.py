"""The shared breaker's state machine in Lua, so every change is atomic in Redis.

Each script reads the breaker's hash, applies one step of the same state
machine as :class:`~sloguard.resilience._core.BreakerCore`, writes the hash
back, refreshes the keys' TTL and, when the state changed, PUBLISHes the new
state on the prefix's channel. Time is Redis' ``TIME``, so the hosts' clocks
never have to agree; open periods travel as "milliseconds left".

Keys, per breaker (one hash tag, so Redis Cluster keeps them on one slot):

* ``{prefix}:{{name}}`` -- hash: ``st`` state, ``ep`` episode, ``lv`` backoff
  level, ``until`` end of the open period (ms, Redis time), ``cf``
  consecutive failures, ``pa``/``po`` probes admitted/succeeded, ``pt`` when
  the last probe was admitted, ``g`` the generation (Redis time the hash was
  created: a breaker whose keys were lost, by a restart without persistence or
  by expiry, starts a new generation, and instances accept its lower episode).
* ``{prefix}:{{name}}:w`` -- hash of the sliding window: ``c:<bucket>``,
  ``f:<bucket>``, ``s:<bucket>`` (calls, failures, slow calls per bucket).

Every script returns the same reply: ``[admitted, state, episode, level,
until_ms, now_ms, reason, old_state, generation]``; ``reason`` is empty unless
this call changed the state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sloguard.resilience._types import BreakerPolicy

__all__ = [
    "ACQUIRE_PROBE",
    "FOREVER_MS",
    "COMMAND",
    "PROBE_RESULT",
    "SCRIPTS",
    "SYNC",
    "Script",
    "ScriptReply",
    "policy_argv",
    "state_keys",
]

#: ``until`` of a forced-open breaker: open until reset.
FOREVER_MS = 10**15

# ARGV[1..18], shared by every script; script arguments start at ARGV[19].
_PRELUDE = """
local P = {
  consec = tonumber(ARGV[1]), ratio = tonumber(ARGV[2]), count = tonumber(ARGV[3]),
  slow = tonumber(ARGV[4]), bucket_ms = tonumber(ARGV[5]), buckets = tonumber(ARGV[6]),
  min_calls = tonumber(ARGV[7]), probes = tonumber(ARGV[8]), successes = tonumber(ARGV[9]),
  open_ms = tonumber(ARGV[10]), backoff = tonumber(ARGV[11]), max_open_ms = tonumber(ARGV[12]),
  jitter = tonumber(ARGV[13]), ttl_ms = tonumber(ARGV[14]), channel = ARGV[15],
  name = ARGV[16], lease_ms = tonumber(ARGV[17]), origin = ARGV[18]
}
local S, W = KEYS[1], KEYS[2]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local raw = redis.call('HMGET', S, 'st', 'ep', 'lv', 'until', 'cf', 'pa', 'po', 'pt', 'g')
local s = {
  st = raw[1] or 'closed', ep = tonumber(raw[2] or '0'), lv = tonumber(raw[3] or '0'),
  ['until'] = tonumber(raw[4] or '0'), cf = tonumber(raw[5] or '0'),
  pa = tonumber(raw[6] or '0'), po = tonumber(raw[7] or '0'), pt = tonumber(raw[8] or '0'),
  g = raw[9] or tostring(now)
}
local old = s.st
local FOREVER = 1e15
local reason = ''
local admitted = 0

local function open_for(level)
  local ms = P.open_ms * (P.backoff ^ level)
  if ms > P.max_open_ms then ms = P.max_open_ms end
  return math.floor(ms * P.jitter)
end

local function open(why, level, for_ms)
  s.st = 'open'; s.ep = s.ep + 1; s.lv = level
  s['until'] = now + (for_ms or open_for(level))
  s.cf = 0; s.pa = 0; s.po = 0
  redis.call('DEL', W)
  reason = why
end

local function close(why)
  s.st = 'closed'; s.lv = 0; s.cf = 0; s.pa = 0; s.po = 0; s['until'] = 0
  redis.call('DEL', W)
  reason = why
end

-- A probe that neither succeeded nor failed within the lease (its caller
-- died, or its result was lost with the connection) counts as failed, so a
-- half-open breaker never waits forever and never admits more than N.
local function expire_probes()
  if s.st == 'half_open' and s.pa > s.po and now - s.pt > P.lease_ms then
    open('probe_failed', s.lv + 1)
  end
end

local function count(calls, failures, slow, had_success, trailing)
  local bucket = math.floor(now / P.bucket_ms)
  redis.call('HINCRBY', W, 'c:' .. bucket, calls)
  if failures > 0 then redis.call('HINCRBY', W, 'f:' .. bucket, failures) end
  if slow > 0 then redis.call('HINCRBY', W, 's:' .. bucket, slow) end
  if had_success == 1 then s.cf = trailing else s.cf = s.cf + trailing end
  if P.consec > 0 and s.cf >= P.consec then return 'consecutive_failures' end
  local total = {c = 0, f = 0, s = 0}
  local stale = {}
  local first = bucket - P.buckets + 1
  local fields = redis.call('HGETALL', W)
  for i = 1, #fields, 2 do
    local kind, at = string.match(fields[i], '^(%a):(%-?%d+)$')
    if tonumber(at) < first then
      stale[#stale + 1] = fields[i]
    else
      total[kind] = total[kind] + tonumber(fields[i + 1])
    end
  end
  for i = 1, #stale, 1000 do
    redis.call('HDEL', W, unpack(stale, i, math.min(i + 999, #stale)))
  end
  if P.count > 0 and total.f >= P.count then return 'failure_count' end
  if total.c >= P.min_calls then
    if P.ratio > 0 and total.f >= P.ratio * total.c then return 'failure_ratio' end
    if P.slow > 0 and total.s >= P.slow * total.c then return 'slow_call_ratio' end
  end
  return nil
end

local function finish()
  redis.call('HSET', S, 'st', s.st, 'ep', s.ep, 'lv', s.lv, 'until', s['until'], 'cf', s.cf,
    'pa', s.pa, 'po', s.po, 'pt', s.pt, 'g', s.g)
  redis.call('PEXPIRE', S, P.ttl_ms)
  redis.call('PEXPIRE', W, P.ttl_ms)
  if reason ~= '' then
    redis.call('PUBLISH', P.channel, cjson.encode({
      n = P.name, st = s.st, ep = s.ep, lv = s.lv, ['until'] = s['until'], now = now,
      r = reason, o = P.origin, old = old, g = s.g
    }))
  end
  return {admitted, s.st, s.ep, s.lv, s['until'], now, reason, old, s.g}
end
"""

#: Add a batch of closed-state outcomes, trip if a strategy is met, and return
#: the shared state (with an empty batch: a poll that refreshes the TTL).
#: ARGV[19..]: episode the batch was counted in (-1: any), calls, failures,
#: slow calls, had a success (0/1), failures after the batch's last success,
#: then the resync push: open for this many ms (-1: no push), reason, level.
SYNC_SOURCE = (
    _PRELUDE
    + """
local seen, calls = tonumber(ARGV[19]), tonumber(ARGV[20])
local push_ms = tonumber(ARGV[25])
expire_probes()
if s.st == 'closed' then
  if push_ms >= 0 then
    open(ARGV[26], tonumber(ARGV[27]), push_ms)
  elseif calls > 0 and (seen < 0 or seen == s.ep) then
    local why = count(calls, tonumber(ARGV[21]), tonumber(ARGV[22]), tonumber(ARGV[23]),
      tonumber(ARGV[24]))
    if why then open(why, 0) end
  end
end
return finish()
"""
)

#: Ask for a half-open probe slot: OPEN moves to HALF_OPEN once the open
#: period is over; HALF_OPEN admits while fewer than N probes were admitted
#: this episode; CLOSED admits (not as a probe).
ACQUIRE_PROBE_SOURCE = (
    _PRELUDE
    + """
expire_probes()
if s.st == 'open' and now >= s['until'] then
  s.st = 'half_open'; s.pa = 0; s.po = 0; reason = 'open_elapsed'
end
if s.st == 'half_open' and s.pa < P.probes then
  s.pa = s.pa + 1; s.pt = now; admitted = 1
elseif s.st == 'closed' then
  admitted = 1
end
return finish()
"""
)

#: A probe's outcome. ARGV[19]: its episode (a stale one changes nothing),
#: ARGV[20]: 'success', 'failure' or 'ignored' (gives the slot back).
PROBE_RESULT_SOURCE = (
    _PRELUDE
    + """
local episode, outcome = tonumber(ARGV[19]), ARGV[20]
if s.st == 'half_open' and s.ep == episode then
  if outcome == 'success' then
    s.po = s.po + 1
    if s.po >= P.successes then close('probes_succeeded') end
  elseif outcome == 'failure' then
    open('probe_failed', s.lv + 1)
  elseif s.pa > s.po then
    s.pa = s.pa - 1
  end
end
expire_probes()
return finish()
"""
)

#: An operator's command. ARGV[19]: 'open' (hold open until a reset: ``until``
#: is FOREVER) or 'reset' (closed, level 0, window emptied; the episode moves
#: on, so batches counted before the reset are dropped when they arrive).
COMMAND_SOURCE = (
    _PRELUDE
    + """
if ARGV[19] == 'open' then
  if not (s.st == 'open' and s['until'] >= FOREVER) then
    open('forced', s.lv, FOREVER - now)
    s['until'] = FOREVER
  end
else
  s.ep = s.ep + 1
  if s.st == 'closed' then
    s.cf = 0
    redis.call('DEL', W)
  else
    close('reset')
  end
end
return finish()
"""
)


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()


SYNC = Script("sync", SYNC_SOURCE)
ACQUIRE_PROBE = Script("acquire_probe", ACQUIRE_PROBE_SOURCE)
PROBE_RESULT = Script("probe_result", PROBE_RESULT_SOURCE)
COMMAND = Script("command", COMMAND_SOURCE)
SCRIPTS = (SYNC, ACQUIRE_PROBE, PROBE_RESULT, COMMAND)


@dataclass(frozen=True, slots=True)
class ScriptReply:
    """A script's reply, decoded; times in Redis' clock (ms)."""

    admitted: bool
    state: str
    episode: int
    level: int
    until_ms: int
    now_ms: int
    reason: str
    old_state: str
    generation: str

    @classmethod
    def decode(cls, raw: list[object]) -> ScriptReply:
        def text(value: object) -> str:
            return value.decode() if isinstance(value, bytes) else str(value)

        def number(value: object) -> int:
            return int(text(value))

        return cls(
            admitted=number(raw[0]) == 1,
            state=text(raw[1]),
            episode=number(raw[2]),
            level=number(raw[3]),
            until_ms=number(raw[4]),
            now_ms=number(raw[5]),
            reason=text(raw[6]),
            old_state=text(raw[7]),
            generation=text(raw[8]),
        )

    @property
    def open_left_s(self) -> float:
        return max(0.0, (self.until_ms - self.now_ms) / 1000.0)


def state_keys(prefix: str, name: str) -> tuple[str, str]:
    """The breaker's state and window keys (``{name}`` is the Cluster hash tag)."""
    base = f"{prefix}:{{{name}}}"
    return base, base + ":w"


def policy_argv(
    policy: BreakerPolicy,
    *,
    jitter: float,
    ttl_s: float,
    channel: str,
    name: str,
    lease_s: float,
    origin: str,
) -> list[str | int | float]:
    """ARGV[1..18]: the policy (0 disables a strategy) and the call's context.

    ``jitter`` is the open-time multiplier drawn by the caller (``1 ± u *
    policy.jitter``), so the script stays deterministic.
    """
    return [
        policy.consecutive_failures or 0,
        policy.failure_ratio or 0,
        policy.failure_count or 0,
        policy.slow_call_ratio or 0,
        _ms(policy.bucket_s),
        policy.buckets,
        policy.min_calls,
        policy.half_open_probes,
        policy.half_open_successes,
        _ms(policy.open_s),
        policy.backoff,
        _ms(policy.max_open_s),
        jitter,
        _ms(ttl_s),
        channel,
        name,
        _ms(lease_s),
        origin,
    ]


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
