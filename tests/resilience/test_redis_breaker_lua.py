"""The shared breaker's Lua scripts, run on a real Redis: strategies and transitions."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis

from sloguard.resilience._breaker_lua import (
    ACQUIRE_PROBE,
    COMMAND,
    FOREVER_MS,
    PROBE_RESULT,
    SCRIPTS,
    SYNC,
    Script,
    ScriptReply,
    policy_argv,
    state_keys,
)
from sloguard.resilience._types import BreakerPolicy

PREFIX = "test:lua"
CHANNEL = PREFIX + ":events"


@dataclass
class Shared:
    """One breaker's scripts, called the way the agent calls them."""

    client: redis.Redis
    policy: BreakerPolicy
    name: str = "db"
    jitter: float = 1.0
    lease_s: float = 30.0

    def run(self, script: Script, *args: object) -> ScriptReply:
        argv = policy_argv(
            self.policy,
            jitter=self.jitter,
            ttl_s=60.0,
            channel=CHANNEL,
            name=self.name,
            lease_s=self.lease_s,
            origin="test",
        )
        keys = state_keys(PREFIX, self.name)
        return ScriptReply.decode(self.client.evalsha(script.sha, 2, *keys, *argv, *args))

    def batch(
        self, calls: int, failures: int = 0, slow: int = 0, *, success: bool = False, episode=-1
    ) -> ScriptReply:
        trailing = failures if not success else 0
        return self.run(SYNC, episode, calls, failures, slow, int(success), trailing, -1, "", 0)

    def push_open(self, open_ms: int, level: int = 0) -> ScriptReply:
        return self.run(SYNC, -1, 0, 0, 0, 0, 0, open_ms, "consecutive_failures", level)

    def probe(self) -> ScriptReply:
        return self.run(ACQUIRE_PROBE)

    def probe_result(self, episode: int, outcome: str) -> ScriptReply:
        return self.run(PROBE_RESULT, episode, outcome)


@pytest.fixture
def client(redis_server) -> Iterator[redis.Redis]:
    with redis.Redis.from_url(redis_server.url) as connection:
        for script in SCRIPTS:
            assert connection.script_load(script.source) == script.sha
        yield connection


def shared(client: redis.Redis, **policy: object) -> Shared:
    return Shared(client, BreakerPolicy(**policy))  # type: ignore[arg-type]


def test_consecutive_failures_trip_across_batches(client) -> None:
    breaker = shared(client, consecutive_failures=5, open_s=10.0)
    assert breaker.batch(3, 3).state == "closed"
    reply = breaker.batch(2, 2)
    assert (reply.state, reply.reason, reply.old_state) == (
        "open",
        "consecutive_failures",
        "closed",
    )
    assert (reply.episode, reply.level, reply.until_ms - reply.now_ms) == (1, 0, 10_000)


def test_a_success_in_a_batch_restarts_the_consecutive_count(client) -> None:
    breaker = shared(client, consecutive_failures=3)
    breaker.batch(2, 2)
    breaker.run(SYNC, -1, 3, 2, 0, 1, 1, -1, "", 0)  # fail, success, fail
    assert breaker.batch(1, 1).state == "closed"
    assert breaker.batch(1, 1).reason == "consecutive_failures"


@pytest.mark.parametrize(
    ("policy", "batches", "reason"),
    [
        pytest.param(
            {"consecutive_failures": None, "failure_ratio": 0.5, "min_calls": 10},
            [(8, 8), (2, 0)],
            "failure_ratio",
            id="failure-ratio-once-min-calls",
        ),
        pytest.param(
            {"consecutive_failures": None, "failure_count": 4, "min_calls": 100},
            [(2, 2), (5, 2)],
            "failure_count",
            id="failure-count-ignores-min-calls",
        ),
        pytest.param(
            {"consecutive_failures": None, "slow_call_ratio": 0.5, "min_calls": 4},
            [(4, 0, 2)],
            "slow_call_ratio",
            id="slow-call-ratio",
        ),
    ],
)
def test_window_strategies_trip_on_shared_counts(client, policy, batches, reason) -> None:
    breaker = shared(client, **policy)
    replies = [breaker.batch(*batch, success=True) for batch in batches]
    assert [r.state for r in replies] == ["closed"] * (len(batches) - 1) + ["open"]
    assert replies[-1].reason == reason


def test_ratio_waits_for_min_calls(client) -> None:
    breaker = shared(client, consecutive_failures=None, failure_ratio=0.5, min_calls=10)
    assert breaker.batch(9, 9).state == "closed"


def test_window_forgets_buckets_that_left_it(client) -> None:
    breaker = shared(
        client, consecutive_failures=None, failure_count=3, window_s=0.1, bucket_s=0.05
    )
    breaker.batch(2, 2)
    time.sleep(0.12)  # Redis' own clock: the two failures leave the window
    assert breaker.batch(1, 1).state == "closed"
    assert client.hlen(state_keys(PREFIX, "db")[1]) <= 3


def test_a_batch_from_an_older_episode_is_dropped(client) -> None:
    breaker = shared(client, consecutive_failures=2)
    breaker.push_open(0)
    breaker.probe()
    closed = breaker.probe_result(1, "success")
    assert (closed.state, closed.episode) == ("closed", 1)
    assert breaker.batch(5, 5, episode=0).state == "closed"
    assert breaker.batch(2, 2, episode=1).state == "open"


def test_open_rejects_probes_until_the_period_ends(client) -> None:
    breaker = shared(client, open_s=5.0)
    breaker.push_open(5_000)
    reply = breaker.probe()
    assert (reply.admitted, reply.state) == (False, "open")
    assert 4.9 <= reply.open_left_s <= 5.0


@pytest.mark.parametrize("probes", [1, 3])
def test_half_open_admits_exactly_n_probes(client, probes) -> None:
    breaker = shared(client, half_open_probes=probes, half_open_successes=1)
    breaker.push_open(0)
    replies = [breaker.probe() for _ in range(probes + 5)]
    assert [r.admitted for r in replies] == [True] * probes + [False] * 5
    assert (replies[0].reason, replies[0].state) == ("open_elapsed", "half_open")


def test_half_open_closes_after_m_successes(client) -> None:
    breaker = shared(client, half_open_probes=3, half_open_successes=2)
    episode = breaker.push_open(0).episode
    for _ in range(3):
        breaker.probe()
    assert breaker.probe_result(episode, "success").state == "half_open"
    closed = breaker.probe_result(episode, "success")
    assert (closed.state, closed.reason, closed.level) == ("closed", "probes_succeeded", 0)


def test_a_probe_failure_reopens_with_backoff(client) -> None:
    breaker = shared(client, open_s=1.0, backoff=3.0, max_open_s=100.0)
    episode = breaker.push_open(0).episode
    breaker.probe()
    reopened = breaker.probe_result(episode, "failure")
    assert (reopened.state, reopened.reason) == ("open", "probe_failed")
    assert (reopened.episode, reopened.level) == (episode + 1, 1)
    assert reopened.until_ms - reopened.now_ms == 3_000


def test_open_period_is_capped_then_scaled_by_the_drawn_jitter(client) -> None:
    breaker = shared(client, open_s=1.0, backoff=10.0, max_open_s=5.0, jitter=0.5)
    breaker.jitter = 1.25
    episode = breaker.push_open(0, level=1).episode
    breaker.probe()
    reopened = breaker.probe_result(episode, "failure")
    assert reopened.until_ms - reopened.now_ms == 6_250


def test_an_ignored_probe_gives_its_slot_back(client) -> None:
    breaker = shared(client, half_open_probes=1)
    episode = breaker.push_open(0).episode
    breaker.probe()
    assert not breaker.probe().admitted
    breaker.probe_result(episode, "ignored")
    assert breaker.probe().admitted


def test_a_stale_probe_result_changes_nothing(client) -> None:
    breaker = shared(client, half_open_probes=1)
    episode = breaker.push_open(0).episode
    breaker.probe()
    reply = breaker.probe_result(episode - 1, "failure")
    assert (reply.state, reply.reason) == ("half_open", "")


def test_a_probe_that_never_reports_fails_after_its_lease(client) -> None:
    breaker = shared(client, half_open_probes=1)
    breaker.lease_s = 0.001
    breaker.push_open(0)
    breaker.probe()
    time.sleep(0.005)  # Redis' clock must pass the 1 ms lease
    reply = breaker.probe()
    assert (reply.admitted, reply.state, reply.reason, reply.level) == (
        False,
        "open",
        "probe_failed",
        1,
    )


def test_force_open_holds_until_reset(client) -> None:
    breaker = shared(client)
    forced = breaker.run(COMMAND, "open")
    assert (forced.state, forced.reason, forced.until_ms) == ("open", "forced", FOREVER_MS)
    assert not breaker.probe().admitted
    reset = breaker.run(COMMAND, "reset")
    assert (reset.state, reset.reason, reset.episode) == ("closed", "reset", 2)


def test_reset_of_a_closed_breaker_drops_its_counts_without_a_transition(client) -> None:
    breaker = shared(client, consecutive_failures=3)
    breaker.batch(2, 2)
    reply = breaker.run(COMMAND, "reset")
    assert (reply.state, reply.reason, reply.episode) == ("closed", "", 1)
    assert breaker.batch(2, 2, episode=1).state == "closed"


def test_a_push_opens_a_closed_breaker_but_not_an_open_one(client) -> None:
    breaker = shared(client)
    first = breaker.push_open(7_000, level=2)
    assert (first.state, first.level, first.until_ms - first.now_ms) == ("open", 2, 7_000)
    assert breaker.push_open(1_000).until_ms == first.until_ms


def test_transitions_are_published_and_keys_expire(client) -> None:
    breaker = shared(client, consecutive_failures=1)
    with client.pubsub(ignore_subscribe_messages=True) as pubsub:
        pubsub.subscribe(CHANNEL)
        pubsub.get_message(timeout=1.0)
        breaker.batch(1, 1)
        message = json.loads(pubsub.get_message(timeout=1.0)["data"])
    assert (message["n"], message["st"], message["r"], message["o"]) == (
        "db",
        "open",
        "consecutive_failures",
        "test",
    )
    assert 0 < client.pttl(state_keys(PREFIX, "db")[0]) <= 60_000
