"""The Redis policy source against a real Redis (the session's ``redis_server``)."""

import asyncio
import time
from collections.abc import Callable

import pytest
from redis.asyncio import Redis

from sloguard.auth._errors import PolicyError
from sloguard.auth._principal import Principal
from sloguard.auth._sources import PolicyHolder, RedisPolicySource, publish_policy
from tests.harness.processes import free_port
from tests.harness.servers import RedisServer

KEY, CHANNEL = "sloguard:test:policy", "sloguard:test:policy:changed"
GRANTS_X = "version: 1\nroles:\n  r: {permissions: ['GET /x']}\n"
GRANTS_Y = "version: 1\nroles:\n  r: {permissions: ['GET /y']}\n"
BROKEN = "version: 1\nroles:\n  r: {inherits: [nobody]}\n"
R = Principal("p", frozenset({"r"}))


def allows(holder: PolicyHolder, route: str) -> bool:
    return holder.decide(R, "GET", route, route, tenant=None).allowed


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.005)


class GatedSleep:
    """The source's backoff sleep, held until the test opens the gate."""

    def __init__(self) -> None:
        self.waiting = asyncio.Event()
        self.gate = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.waiting.set()
        await self.gate.wait()


def test_two_instances_reload_within_a_second_of_a_publish(redis_server: RedisServer) -> None:
    async def scenario() -> tuple[int, float]:
        await publish_policy(redis_server.url, KEY, CHANNEL, GRANTS_X)
        holders = [PolicyHolder(), PolicyHolder()]
        sources = [RedisPolicySource(redis_server.url, KEY, CHANNEL, h) for h in holders]
        for source in sources:
            await source.start()
        try:
            assert all(allows(h, "/x") and s.connected for h, s in zip(holders, sources))
            began = time.monotonic()
            receivers = await publish_policy(redis_server.url, KEY, CHANNEL, GRANTS_Y)
            await wait_until(lambda: all(allows(h, "/y") for h in holders), timeout=1.0)
            return receivers, time.monotonic() - began
        finally:
            for source in sources:
                await source.stop()

    receivers, elapsed = asyncio.run(scenario())
    assert receivers == 2
    assert elapsed < 1.0


def test_publish_refuses_an_invalid_policy_and_leaves_the_key_alone(
    redis_server: RedisServer,
) -> None:
    with pytest.raises(PolicyError, match="unknown role 'nobody'"):
        asyncio.run(publish_policy(redis_server.url, KEY, CHANNEL, BROKEN))
    assert redis_server.command("EXISTS", KEY) == ":0"


def test_an_invalid_document_written_behind_publish_is_rejected(redis_server: RedisServer) -> None:
    async def scenario() -> PolicyHolder:
        await publish_policy(redis_server.url, KEY, CHANNEL, GRANTS_X)
        holder = PolicyHolder()
        source = RedisPolicySource(redis_server.url, KEY, CHANNEL, holder)
        await source.start()
        client = Redis.from_url(redis_server.url)
        try:
            await client.set(KEY, BROKEN)
            await client.publish(CHANNEL, "changed")
            await wait_until(lambda: holder.reloads_failed == 1)
        finally:
            await client.aclose()
            await source.stop()
        return holder

    holder = asyncio.run(scenario())
    assert allows(holder, "/x")
    assert holder.last_error is not None
    assert holder.last_error.problems[0][0] == f"{redis_server.url} [{KEY}]:3"


def test_a_missing_key_is_reported_and_a_later_publish_loads(redis_server: RedisServer) -> None:
    async def scenario() -> tuple[bool, str, bool]:
        holder = PolicyHolder()
        source = RedisPolicySource(redis_server.url, KEY, CHANNEL, holder)
        await source.start()
        try:
            assert holder.last_error is not None
            before = (holder.loaded, holder.last_error.problems[0][2])
            await publish_policy(redis_server.url, KEY, CHANNEL, GRANTS_X)
            await wait_until(lambda: holder.loaded)
            return (*before, allows(holder, "/x"))
        finally:
            await source.stop()

    assert asyncio.run(scenario()) == (False, "the key does not exist", True)


def test_redis_down_keeps_the_last_policy_and_a_restart_picks_up_missed_changes(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        await publish_policy(redis_server.url, KEY, CHANNEL, GRANTS_X)
        holder, sleep = PolicyHolder(), GatedSleep()
        source = RedisPolicySource(redis_server.url, KEY, CHANNEL, holder, sleep=sleep)
        await source.start()
        try:
            await asyncio.to_thread(redis_server.stop)
            await asyncio.wait_for(sleep.waiting.wait(), 5.0)  # the source saw it go
            assert (source.connected, allows(holder, "/x")) == (False, True)
            await asyncio.to_thread(redis_server.restart)
            redis_server.command("SET", KEY, GRANTS_Y)  # changed while away, no publish
            sleep.gate.set()
            await wait_until(lambda: source.connected and allows(holder, "/y"))
        finally:
            await source.stop()

    asyncio.run(scenario())


def test_a_hung_redis_is_detected_by_the_health_check(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        await publish_policy(redis_server.url, KEY, CHANNEL, GRANTS_X)
        holder = PolicyHolder()
        source = RedisPolicySource(
            redis_server.url,
            KEY,
            CHANNEL,
            holder,
            timeout_s=0.3,
            health_interval_s=0.05,
            backoff_max_s=0.2,
        )
        await source.start()
        try:
            redis_server.pause()
            await wait_until(lambda: not source.connected)
            assert allows(holder, "/x")
            redis_server.resume()
            await wait_until(lambda: source.connected)
        finally:
            redis_server.resume()
            await source.stop()

    asyncio.run(scenario())


def test_start_returns_when_redis_is_unreachable() -> None:
    async def scenario() -> tuple[bool, bool, int]:
        holder = PolicyHolder()
        url = f"redis://127.0.0.1:{free_port()}/0"
        source = RedisPolicySource(url, KEY, CHANNEL, holder, timeout_s=0.5)
        await source.start()
        try:
            return source.connected, holder.loaded, source.disconnects
        finally:
            await source.stop()

    connected, loaded, disconnects = asyncio.run(scenario())
    assert (connected, loaded) == (False, False)
    assert disconnects >= 1
