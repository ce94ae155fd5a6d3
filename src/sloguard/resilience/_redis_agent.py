"""The one background thread that talks to Redis for every shared breaker of a process.

A protected call must never wait on Redis, and a sync caller has no event
loop to wait on. So every Redis exchange happens on this thread's own asyncio
loop with ``redis.asyncio``: the breakers hand it work and read back plain
attributes. Per Redis target (a :class:`RedisLink`):

* one command connection: every script call waiting when the previous
  round trip ends goes out in the next pipeline (closed-state batches of all
  breakers, cluster-wide probe requests, probe results), so a thousand
  half-open callers cost a few round trips, not a thousand connections;
* one pub/sub connection: transitions other instances publish are applied as
  they arrive;
* a tick every ``sync_interval_s``: breakers with outcomes to push (or not
  synced for ``poll_interval_s``) send one script call each, in one pipeline;
* when a call fails or takes longer than ``timeout_s``, the link is *down*:
  breakers decide locally, the link reconnects with exponential backoff and
  jitter, and once back it re-syncs every breaker before saying it is *up*.

``redis-py``'s own retries are off (``Retry(NoBackoff(), 0)``): a retry would
only stretch a timeout the caller already decided it cannot afford.

Processes that fork (gunicorn, multiprocessing) get a fresh agent in the
child (``os.register_at_fork``): the parent's thread and sockets do not
survive a fork, so the child starts its own on first use. ``atexit`` pushes
what is left and closes the connections.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import logging
import os
import random
import threading
import weakref
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

from sloguard.resilience._breaker_lua import SCRIPTS, Script, ScriptReply

__all__ = [
    "LinkDownError",
    "Participant",
    "RedisAgent",
    "RedisLink",
    "ScriptCall",
    "on_fork",
    "redacted",
    "shared_agent",
]

logger = logging.getLogger("sloguard.resilience")


class LinkDownError(ConnectionError):
    """Redis is not reachable right now; the caller decides locally."""


@dataclass(frozen=True, slots=True)
class ScriptCall:
    script: Script
    keys: Sequence[str]
    argv: Sequence[str | int | float]


class Participant(Protocol):
    """What a link needs from a shared breaker; every method runs on the agent's thread."""

    @property
    def channel(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def sync_interval_s(self) -> float: ...

    @property
    def poll_interval_s(self) -> float: ...

    def has_outcomes(self) -> bool: ...

    def sync_request(self, *, resync: bool) -> tuple[ScriptCall, object]:
        """The sync call and a token (the batch it carries), handed back below."""
        ...

    def sync_done(self, reply: ScriptReply, token: object, *, resync: bool) -> None: ...

    def sync_failed(self, token: object) -> None: ...

    def remote_event(self, event: Mapping[str, Any]) -> None: ...


def redacted(url: str) -> str:
    """The URL without its credentials, for logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path}"


def connect_url(url: str, timeout_s: float) -> Callable[[], aioredis.Redis]:
    def connect() -> aioredis.Redis:
        return aioredis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )

    return connect


class RedisLink:
    """One Redis target shared by the process' breakers; see the module docstring."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        connect: Callable[[], aioredis.Redis],
        *,
        label: str,
        timeout_s: float,
        reconnect_min_s: float = 0.05,
        reconnect_max_s: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.label = label
        self.timeout_s = timeout_s
        #: read without a lock by the breakers' hot path: True while Redis answers
        self.up = False
        self._loop = loop
        self._connect = connect
        self._reconnect = (reconnect_min_s, reconnect_max_s)
        self._rng = rng or random.Random()
        self._participants: dict[int, Participant] = {}
        self._last_sync: dict[int, float] = {}
        self._urgent: set[int] = set()
        self._client: aioredis.Redis | None = None
        self._queue: list[tuple[ScriptCall, asyncio.Future[ScriptReply]]] = []
        self._draining = False
        self._wake = asyncio.Event()
        self._resubscribe = False
        self._closing = False
        self._broken: BaseException | None = None
        self._task = loop.create_task(self._run(), name=f"sloguard-redis-link {label}")

    # --- any thread --------------------------------------------------------------------------

    def _is_closing(self) -> bool:
        return self._closing

    def attach(self, participant: Participant) -> None:
        self._loop.call_soon_threadsafe(self._attach, participant)

    def detach(self, participant: Participant) -> None:
        self._loop.call_soon_threadsafe(self._detach, participant)

    def hurry(self, participant: Participant) -> None:
        """Push this breaker's outcomes soon (a failure may trip it), not at the next tick."""
        self._loop.call_soon_threadsafe(self._hurry, id(participant))

    def submit(self, call: ScriptCall) -> concurrent.futures.Future[ScriptReply]:
        """Run one script call on the agent's loop; fails at once with LinkDownError when down."""
        return asyncio.run_coroutine_threadsafe(self.execute(call), self._loop)

    # --- the agent's loop --------------------------------------------------------------------

    def _attach(self, participant: Participant) -> None:
        key = id(participant)
        known_channels = {p.channel for p in self._participants.values()}
        self._participants[key] = participant
        self._last_sync[key] = float("-inf")
        if participant.channel not in known_channels and self._client is not None:
            self._resubscribe = True
        self._wake.set()

    def _detach(self, participant: Participant) -> None:
        key = id(participant)
        if self._participants.pop(key, None) is not None and self.up:
            # one last push of what it counted, best effort
            self._loop.create_task(self._sync([participant], resync=False))
        self._last_sync.pop(key, None)
        self._urgent.discard(key)

    def _hurry(self, key: int) -> None:
        if key in self._participants:
            self._urgent.add(key)
            self._wake.set()

    async def execute(self, call: ScriptCall) -> ScriptReply:
        if self._client is None:
            raise LinkDownError(f"redis {self.label} is not connected")
        future: asyncio.Future[ScriptReply] = self._loop.create_future()
        self._queue.append((call, future))
        if not self._draining:
            self._draining = True
            self._loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue and self._client is not None:
                batch, self._queue = self._queue, []
                await self._send(self._client, batch)
        finally:
            self._draining = False
            for _, future in self._queue:
                if not future.done():
                    future.set_exception(LinkDownError(f"redis {self.label} is not connected"))
            if self._client is None:
                self._queue = []

    async def _send(
        self, client: aioredis.Redis, batch: list[tuple[ScriptCall, asyncio.Future[ScriptReply]]]
    ) -> None:
        try:
            replies = await self._pipeline(client, [call for call, _ in batch])
            if any(isinstance(reply, NoScriptError) for reply in replies):
                # Redis restarted or SCRIPT FLUSH: load them again, resend what missed
                await self._bounded(self._load_scripts(client), 1)
                missed = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
                again = await self._pipeline(client, [batch[i][0] for i in missed])
                for i, reply in zip(missed, again, strict=True):
                    replies[i] = reply
        except Exception as exc:
            self._fail(exc)
            for _, future in batch:
                if not future.done():
                    future.set_exception(LinkDownError(f"redis {self.label}: {exc!r}"))
            return
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():
                continue
            if isinstance(reply, BaseException):
                future.set_exception(reply)
            else:
                future.set_result(ScriptReply.decode(reply))

    async def _pipeline(self, client: aioredis.Redis, calls: Sequence[ScriptCall]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for call in calls:
            pipe.evalsha(call.script.sha, len(call.keys), *call.keys, *call.argv)
        replies: list[Any] = await self._bounded(pipe.execute(raise_on_error=False), len(calls))
        return replies

    async def _bounded(self, awaitable: Any, size: int) -> Any:
        # a big pipeline (many breakers at a resync) gets a little more time
        async with asyncio.timeout(self.timeout_s * (1 + size / 200)):
            return await awaitable

    @staticmethod
    async def _load_scripts(client: aioredis.Redis) -> None:
        for script in SCRIPTS:
            await client.script_load(script.source)

    def _fail(self, exc: BaseException) -> None:
        if self._broken is None:
            self._broken = exc
        self._wake.set()

    async def _run(self) -> None:
        low, high = self._reconnect
        delay = low
        while not self._closing:
            while not self._participants and not self._is_closing():
                # nobody to serve: no reconnect attempts until a breaker attaches
                self._wake.clear()
                await self._wake.wait()
            if self._is_closing():
                return
            client = self._connect()
            listener: asyncio.Task[None] | None = None
            try:
                await self._bounded(client.ping(), 1)
                await self._bounded(self._load_scripts(client), 1)
                self._client = client
                listener = await self._subscribe(client)
                await self._sync(list(self._participants.values()), resync=True)
                self._raise_if_broken()
                self.up = True
                if delay > low:
                    logger.info("redis %s is back; breakers share state again", self.label)
                delay = low
                await self._serve(client, listener)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self._participants and (self.up or delay == low):
                    logger.warning(
                        "redis %s unavailable (%r); breakers decide locally until it is back",
                        self.label,
                        exc,
                    )
            finally:
                self.up = False
                self._client = None
                self._broken = None
                if listener is not None:
                    listener.cancel()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.aclose(), self.timeout_s)
            if self._is_closing():
                return
            await asyncio.sleep(delay * self._rng.uniform(0.5, 1.5))
            delay = min(delay * 2, high)

    async def _subscribe(self, client: aioredis.Redis) -> asyncio.Task[None]:
        self._resubscribe = False
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        channels = sorted({p.channel for p in self._participants.values()} or {"sloguard:idle"})
        await self._bounded(pubsub.subscribe(*channels), 1)
        return self._loop.create_task(self._listen(pubsub))

    async def _listen(self, pubsub: aioredis.client.PubSub) -> None:
        import json

        try:
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is None or message.get("type") != "message":
                    continue
                event = json.loads(message["data"])
                name = event.get("n")
                channel = message["channel"].decode()
                for participant in list(self._participants.values()):
                    if participant.name == name and participant.channel == channel:
                        participant.remote_event(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), self.timeout_s)  # type: ignore[no-untyped-call]

    def _raise_if_broken(self) -> None:
        if self._broken is not None:
            raise LinkDownError(f"redis {self.label}: {self._broken!r}")

    async def _serve(self, client: aioredis.Redis, listener: asyncio.Task[None]) -> None:
        while not self._closing:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._tick()):
                    await self._wake.wait()
            self._raise_if_broken()
            if listener.done():
                raise LinkDownError(f"redis {self.label}: pub/sub connection ended")
            if self._resubscribe:
                listener.cancel()
                listener = await self._subscribe(client)
                await self._sync(list(self._participants.values()), resync=True)
            else:
                await self._sync(self._due(), resync=False)
            self._raise_if_broken()

    def _next_due(self, key: int, participant: Participant) -> float:
        """When this breaker syncs next (loop time): its outcomes every sync interval, a
        failure sooner (a fifth of it), and a poll when it has been quiet that long."""
        last = self._last_sync.get(key, float("-inf"))
        if key in self._urgent:
            return last + participant.sync_interval_s / 5
        if participant.has_outcomes():
            return last + participant.sync_interval_s
        return last + participant.poll_interval_s

    def _tick(self) -> float:
        due = [self._next_due(k, p) for k, p in self._participants.items()]
        return min(max(0.001, min(due, default=self._loop.time() + 1.0) - self._loop.time()), 1.0)

    def _due(self) -> list[Participant]:
        # a little early rather than a whole tick late
        now = self._loop.time() + 0.002
        return [p for k, p in self._participants.items() if self._next_due(k, p) <= now]

    async def _sync(self, participants: Sequence[Participant], *, resync: bool) -> None:
        if not participants:
            return
        now = self._loop.time()
        requests = []
        for participant in participants:
            if id(participant) in self._participants:
                self._last_sync[id(participant)] = now
                self._urgent.discard(id(participant))
            requests.append((participant, *participant.sync_request(resync=resync)))
        results = await asyncio.gather(
            *(self.execute(call) for _, call, _ in requests), return_exceptions=True
        )
        for (participant, _, token), result in zip(requests, results, strict=True):
            if isinstance(result, BaseException):
                participant.sync_failed(token)
                self._fail(result)
            else:
                participant.sync_done(result, token, resync=resync)

    async def close(self) -> None:
        """Push what the breakers counted, then disconnect."""
        if self.up:
            with contextlib.suppress(Exception):
                await self._sync(list(self._participants.values()), resync=False)
        self._closing = True
        self._wake.set()
        self._task.cancel()
        with contextlib.suppress(BaseException):
            await self._task


class RedisAgent:
    """The process' Redis thread and its links; :func:`shared_agent` gives the one in use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._links: dict[Hashable, RedisLink] = {}

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def link(
        self,
        key: Hashable,
        connect: Callable[[], aioredis.Redis],
        *,
        label: str,
        timeout_s: float,
        reconnect_min_s: float = 0.05,
        reconnect_max_s: float = 5.0,
    ) -> RedisLink:
        """The link for ``key``, created (and connecting) on first use."""
        with self._lock:
            link = self._links.get(key)
            if link is not None:
                return link
            loop = self._started()

            async def create() -> RedisLink:
                return RedisLink(
                    loop,
                    connect,
                    label=label,
                    timeout_s=timeout_s,
                    reconnect_min_s=reconnect_min_s,
                    reconnect_max_s=reconnect_max_s,
                )

            if threading.current_thread() is self._thread:
                link = RedisLink(
                    loop,
                    connect,
                    label=label,
                    timeout_s=timeout_s,
                    reconnect_min_s=reconnect_min_s,
                    reconnect_max_s=reconnect_max_s,
                )
            else:
                link = asyncio.run_coroutine_threadsafe(create(), loop).result()
            self._links[key] = link
            return link

    def _started(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="sloguard-redis-agent", daemon=True
            )
            thread.start()
            self._loop, self._thread = loop, thread
        return self._loop

    def close(self, timeout_s: float = 1.0) -> None:
        """Push what is left, close the connections and stop the thread (idempotent)."""
        with self._lock:
            loop, thread, links = self._loop, self._thread, list(self._links.values())
            self._loop, self._thread, self._links = None, None, {}
        if loop is None or thread is None:
            return

        async def close_all() -> None:
            await asyncio.gather(*(link.close() for link in links), return_exceptions=True)

        if thread.is_alive() and thread is not threading.current_thread():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close_all(), loop).result(timeout_s)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout_s)
        if not thread.is_alive():
            loop.close()


_agent: RedisAgent | None = None
_agent_lock = threading.Lock()
_fork_callbacks: weakref.WeakSet[Any] = weakref.WeakSet()


def shared_agent() -> RedisAgent:
    """This process' agent (a new one after a fork)."""
    global _agent
    with _agent_lock:
        if _agent is None:
            _agent = RedisAgent()
        return _agent


def on_fork(owner: Any) -> None:
    """Call ``owner._after_fork()`` in a forked child (weakly held)."""
    _fork_callbacks.add(owner)


def _after_fork_in_child() -> None:
    global _agent, _agent_lock
    # The parent's thread does not exist here and its locks may be held: start over.
    _agent = None
    _agent_lock = threading.Lock()
    for owner in list(_fork_callbacks):
        owner._after_fork()


def _close_at_exit() -> None:
    agent = _agent
    if agent is not None:
        agent.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_at_exit)
