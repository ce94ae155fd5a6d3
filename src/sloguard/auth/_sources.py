"""Where the policy in force comes from, and how it changes without a restart.

:class:`PolicyHolder` is the one reference requests read: a new snapshot is
compiled completely before a single attribute assignment swaps it in, so a
request sees the old policy or the new one, never a mixture. A document that
fails validation is rejected: the holder logs the precise :class:`PolicyError`
(logger ``sloguard.auth``), counts it in ``reloads_failed``, keeps it in
``last_error``, and the previous snapshot stays in force.

Two sources feed a holder:

* :class:`FilePolicySource` polls a YAML file (stat, then read and hash only
  when the stat changed, or might have changed unseen within the file system's
  timestamp granularity) from a daemon thread; :meth:`~FilePolicySource.check_now`
  is the same check on demand, which is how tests drive it.
* :class:`RedisPolicySource` reads the document from a Redis key and re-reads
  it whenever a message arrives on a pub/sub channel (:func:`publish_policy`
  sets the key and publishes in one transaction). It subscribes before it
  reads, so no change falls between the two; it re-reads after every
  reconnect, so changes made while it was away are picked up; while Redis is
  unreachable it keeps the last good snapshot, reports ``connected = False``
  and retries with exponential backoff and jitter (capped at ``backoff_max_s``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sloguard.auth._decision import Decision, DecisionCache, PolicySnapshot
from sloguard.auth._errors import PolicyError
from sloguard.auth._policy import empty_policy, load_policy
from sloguard.auth._principal import Principal

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "FilePolicySource",
    "PolicyHolder",
    "RedisPolicySource",
    "backoff_delay",
    "publish_policy",
]

logger = logging.getLogger("sloguard.auth")

# A file modified this recently may change again without its mtime changing.
RACY_WINDOW_S: Final = 2.0
_REDIS_EXTRA: Final = "the Redis policy source needs redis-py: pip install 'sloguard[redis]'"


class PolicyHolder:
    """The policy in force, swapped whole; the reload counters a metric can export."""

    def __init__(self, snapshot: PolicySnapshot | None = None, *, cache_size: int = 10_000) -> None:
        self._snapshot = empty_policy() if snapshot is None else snapshot
        #: False until a policy has loaded: until then nothing is public or granted.
        self.loaded = snapshot is not None
        self.cache = DecisionCache(cache_size)
        self.reloads_ok = 0
        self.reloads_failed = 0
        #: The last rejected document's error; None once a later document loads.
        self.last_error: PolicyError | None = None
        self._lock = threading.Lock()

    @property
    def snapshot(self) -> PolicySnapshot:
        return self._snapshot

    def decide(
        self,
        principal: Principal | None,
        method: str,
        route: str,
        path: str | bytes,
        *,
        tenant: str | None,
        required_permission: str | None = None,
    ) -> Decision:
        """Decide against the snapshot in force, through the decision cache."""
        return self.cache.decide(
            self._snapshot,
            principal,
            method,
            route,
            path,
            tenant=tenant,
            required_permission=required_permission,
        )

    def load(self, text: str | bytes, *, source: str) -> bool:
        """Validate, compile and install ``text``; True when a different policy took force.

        An invalid document is rejected (logged, counted, kept in ``last_error``) and
        the current snapshot stays; a document equal to the current one changes nothing.
        """
        try:
            snapshot = load_policy(text, source=source)
        except PolicyError as error:
            self.reject(error)
            return False
        with self._lock:
            self.last_error = None
            if self.loaded and snapshot.content_hash == self._snapshot.content_hash:
                return False
            previous, self._snapshot, self.loaded = self._snapshot, snapshot, True
            self.reloads_ok += 1
        logger.info(
            "policy loaded from %s: version %d, hash %s (was %s)",
            source,
            snapshot.version,
            snapshot.content_hash[:12],
            previous.content_hash[:12],
        )
        return True

    def reject(self, error: PolicyError) -> None:
        """Count and log a document that cannot take force; the current one stays."""
        with self._lock:
            self.reloads_failed += 1
            self.last_error = error
        logger.error(
            "policy rejected, keeping version %d (hash %s):\n%s",
            self._snapshot.version,
            self._snapshot.content_hash[:12],
            error,
        )


class FilePolicySource:
    """Reloads a policy file when it changes; ``check_now()`` checks once, on demand."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        holder: PolicyHolder,
        *,
        poll_interval_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if poll_interval_s <= 0:
            raise ValueError(f"poll_interval_s must be > 0, not {poll_interval_s}")
        self.path = Path(path)
        self.holder = holder
        self.poll_interval_s = poll_interval_s
        self._clock = clock
        self._stat: tuple[int, int, int] | None = None
        self._racy = False
        self._digest: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check_now(self) -> bool:
        """Stat the file, read it if it may have changed; True when a new policy took force."""
        try:
            stat = os.stat(self.path)
            if (stat.st_mtime_ns, stat.st_size, stat.st_ino) == self._stat and not self._racy:
                return False
            data = self.path.read_bytes()
        except OSError as exc:
            return self._unreadable(exc)
        self._stat = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        self._racy = self._clock() - stat.st_mtime < RACY_WINDOW_S
        digest = hashlib.sha256(data).hexdigest()
        if digest == self._digest:
            return False
        self._digest = digest  # an invalid document is reported once, not at every poll
        return self.holder.load(data, source=str(self.path))

    def _unreadable(self, exc: OSError) -> bool:
        if self._digest != "unreadable":
            self._digest, self._stat = "unreadable", None
            reason = exc.strerror or type(exc).__name__
            self.holder.reject(PolicyError([(str(self.path), "-", f"cannot read: {reason}")]))
        return False

    def start(self) -> None:
        """Load the file now, then poll from a daemon thread.

        Raises the :class:`PolicyError` when the holder has no policy after the first
        load: a service should not start on a broken policy.
        """
        self.check_now()
        if not self.holder.loaded and self.holder.last_error is not None:
            raise self.holder.last_error
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._poll, name="sloguard-policy-file", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                self.check_now()
            except Exception:  # the watcher must outlive any one bad read
                logger.exception("policy file check failed: %s", self.path)


def backoff_delay(
    attempt: int, *, initial_s: float, max_s: float, rand: Callable[[], float]
) -> float:
    """Exponential backoff with "equal jitter": between half and all of
    ``min(max_s, initial_s * 2**attempt)``, so instances spread out but never spin."""
    ceiling = min(max_s, initial_s * 2.0 ** min(attempt, 32))
    return ceiling / 2 + ceiling / 2 * rand()


class RedisPolicySource:
    """The policy at a Redis key, re-read on every message on ``channel``."""

    def __init__(
        self,
        url: str,
        key: str,
        channel: str,
        holder: PolicyHolder,
        *,
        timeout_s: float = 2.0,
        health_interval_s: float = 1.0,
        resync_interval_s: float = 30.0,
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        rand: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        self.url, self.key, self.channel, self.holder = url, key, channel, holder
        self.timeout_s = timeout_s
        self.health_interval_s = health_interval_s
        self.resync_interval_s = resync_interval_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._rand = rand
        self._sleep = sleep
        #: Whether the source is subscribed and has read the key (export it as a gauge).
        self.connected = False
        #: Connection attempts that failed or sessions that broke (a counter).
        self.disconnects = 0
        self._digest: str | None = None
        self._established = False
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._attempted = asyncio.Event()

    @property
    def source(self) -> str:
        return f"{_without_password(self.url)} [{self.key}]"

    async def start(self) -> None:
        """Start watching; waits up to ``timeout_s`` for the first read (Redis may be down)."""
        _require_redis()
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="sloguard-policy-redis")
        try:
            await asyncio.wait_for(self._attempted.wait(), self.timeout_s)
        except TimeoutError:
            logger.warning("policy source %s: no answer yet, still trying", self.source)

    async def stop(self) -> None:
        """Stop watching and close the connections."""
        self._stopping = True
        task, self._task = self._task, None
        while task is not None and not task.done():
            # Cancel again if need be: a cancellation landing while redis-py handles its
            # own read timeout has been seen to vanish (redis-py 8.1, Python 3.11); the
            # loops also check _stopping, at least once per health interval.
            task.cancel()
            await asyncio.wait({task}, timeout=self.health_interval_s + self.timeout_s)
        if task is not None and not task.cancelled() and task.exception() is not None:
            logger.error("policy source %s ended with an error", self.source)
        self.connected = False

    def _stopped(self) -> bool:
        return self._stopping

    async def _run(self) -> None:
        from redis.exceptions import RedisError

        attempt = 0
        while not self._stopped():
            self._established = False
            try:
                await self._session()
            except (RedisError, OSError, TimeoutError) as exc:
                if self._established or attempt == 0:
                    logger.warning("policy source %s unavailable: %s", self.source, exc)
            except Exception:  # a bug must not end the watch: log it and reconnect
                logger.exception("policy source %s failed", self.source)
            if self._stopped():
                break
            self.disconnects += 1
            self._attempted.set()
            attempt = 0 if self._established else attempt
            delay = backoff_delay(
                attempt, initial_s=self.backoff_initial_s, max_s=self.backoff_max_s, rand=self._rand
            )
            attempt += 1
            await self._sleep(delay)

    async def _session(self) -> None:
        """Subscribe, read, then follow the channel until the connection fails."""
        client = _client(self.url, self.timeout_s)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            await self._read(client)
            self.connected = self._established = True
            self._attempted.set()
            synced = time.monotonic()
            while not self._stopped():
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=self.health_interval_s
                )
                if message is not None or time.monotonic() - synced >= self.resync_interval_s:
                    await self._read(client)
                    synced = time.monotonic()
                else:
                    await client.ping()  # a hung server answers nothing: socket timeout
        finally:
            self.connected = False
            # One after the other, each bounded: closing the pool while the pub/sub
            # connection is being released into it can wait forever on a dead socket.
            await _close_quietly(pubsub.aclose(), self.timeout_s)  # type: ignore[no-untyped-call]
            await _close_quietly(client.aclose(), self.timeout_s)

    async def _read(self, client: Redis) -> None:
        raw = await client.get(self.key)
        if raw is None:
            if self._digest != "missing":
                self._digest = "missing"
                self.holder.reject(PolicyError([(self.source, "-", "the key does not exist")]))
            return
        data = raw if isinstance(raw, bytes) else str(raw).encode()
        digest = hashlib.sha256(data).hexdigest()
        if digest != self._digest:
            self._digest = digest
            await asyncio.to_thread(self.holder.load, data, source=self.source)


async def publish_policy(url: str, key: str, channel: str, document_text: str | bytes) -> int:
    """Validate ``document_text``, then set ``key`` and publish on ``channel`` atomically.

    Raises :class:`PolicyError` (and touches nothing) when the document is invalid.
    Returns how many subscribers received the notification.
    """
    snapshot = load_policy(document_text, source=key)
    _require_redis()
    client = _client(url, 5.0)
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.set(key, document_text)
            pipe.publish(channel, snapshot.content_hash)
            _, receivers = await pipe.execute()
        return int(receivers)
    finally:
        await client.aclose()


async def _close_quietly(closing: Awaitable[object], timeout_s: float) -> None:
    try:
        await asyncio.wait_for(closing, timeout_s)
    except Exception:  # the connection is already broken; nothing left to release
        logger.debug("closing a Redis connection failed", exc_info=True)


def _require_redis() -> None:
    try:
        import redis.asyncio  # noqa: F401
    except ImportError:
        raise ImportError(_REDIS_EXTRA) from None


def _client(url: str, timeout_s: float) -> Redis:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    # No retries inside redis-py: the source's own loop owns backoff and reconnection.
    return Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
    )


def _without_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    return f"{scheme}{sep}{userinfo.partition(':')[0]}:***@{host}"
