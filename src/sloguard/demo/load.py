"""The demo's load generator: a steady request rate over a realistic route mix.

The driver is open-loop: it starts requests on a fixed schedule (``rps`` per
second) whether or not earlier ones have finished, the way real users
arrive, so a slow checkout shows up as latency rather than as a lower rate.
It keeps its own counts (sent, answered, by route and status class) so the
demo can set them beside what sloguard measured; a mismatch would show.
Stopping stops the schedule and then waits for the requests in flight.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import random
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from sloguard.demo.shop import CATALOG

__all__ = [
    "DEFAULT_MIX",
    "LoadCounts",
    "LoadDriver",
    "MixEntry",
    "PlannedRequest",
    "RouteLoad",
    "RouteMix",
]

_SEARCH_TERMS = ("tea", "coffee", "mug", "grinder", "milk", "cocoa", "filters", "gift")
_CARTS = 50
_MISSING_PRODUCT_SHARE = 0.03  # some product links are stale: a 404 now and then


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One request to send. ``route`` is the template sloguard should label it with."""

    method: str
    route: str
    path: str
    json: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class MixEntry:
    method: str
    route: str
    weight: float
    plan: Callable[[random.Random], PlannedRequest]


class RouteMix:
    """A weighted choice among routes."""

    __slots__ = ("_cumulative", "entries")

    def __init__(self, entries: Iterable[MixEntry]) -> None:
        self.entries = tuple(entries)
        if not self.entries:
            raise ValueError("a route mix needs at least one entry")
        if any(e.weight <= 0 for e in self.entries):
            raise ValueError("route weights must be positive")
        self._cumulative = list(itertools.accumulate(e.weight for e in self.entries))

    def choose(self, rng: random.Random) -> PlannedRequest:
        point = rng.random() * self._cumulative[-1]
        index = bisect.bisect_right(self._cumulative, point)
        return self.entries[min(index, len(self.entries) - 1)].plan(rng)

    def shares(self) -> dict[tuple[str, str], float]:
        """Each route's expected share of requests, keyed by (method, route)."""
        total = self._cumulative[-1]
        return {(e.method, e.route): e.weight / total for e in self.entries}


def _product(rng: random.Random) -> PlannedRequest:
    missing = rng.random() < _MISSING_PRODUCT_SHARE
    product_id = len(CATALOG) + rng.randint(1, 1000) if missing else rng.randint(1, len(CATALOG))
    return PlannedRequest("GET", "/products/{product_id}", f"/products/{product_id}")


def _products(rng: random.Random) -> PlannedRequest:
    path = "/products" if rng.random() < 0.5 else f"/products?limit={rng.randint(1, len(CATALOG))}"
    return PlannedRequest("GET", "/products", path)


def _search(rng: random.Random) -> PlannedRequest:
    return PlannedRequest("GET", "/search", f"/search?q={rng.choice(_SEARCH_TERMS)}")


def _cart(rng: random.Random) -> PlannedRequest:
    body = {
        "cart_id": f"cart-{rng.randint(1, _CARTS)}",
        "product_id": rng.randint(1, len(CATALOG)),
        "quantity": rng.randint(1, 3),
    }
    return PlannedRequest("POST", "/cart/items", "/cart/items", body)


def _checkout(rng: random.Random) -> PlannedRequest:
    body = {"cart_id": f"cart-{rng.randint(1, _CARTS)}"}
    return PlannedRequest("POST", "/checkout", "/checkout", body)


def _healthz(rng: random.Random) -> PlannedRequest:
    return PlannedRequest("GET", "/healthz", "/healthz")


DEFAULT_MIX = RouteMix(
    [
        MixEntry("GET", "/products", 30, _products),
        MixEntry("GET", "/products/{product_id}", 30, _product),
        MixEntry("GET", "/search", 15, _search),
        MixEntry("POST", "/cart/items", 12, _cart),
        MixEntry("POST", "/checkout", 8, _checkout),
        MixEntry("GET", "/healthz", 5, _healthz),
    ]
)


@dataclass(slots=True)
class RouteLoad:
    """The generator's own view of one route."""

    sent: int = 0
    answered: int = 0
    failed: int = 0  # no response at all (connection error, timeout)
    by_class: Counter[str] = field(default_factory=Counter)


@dataclass(slots=True)
class LoadCounts:
    sent: int = 0
    answered: int = 0
    failed: int = 0
    skipped: int = 0  # due but not sent: too many requests already in flight
    routes: dict[tuple[str, str], RouteLoad] = field(default_factory=dict)

    @property
    def in_flight(self) -> int:
        return self.sent - self.answered - self.failed

    def route(self, method: str, route: str) -> RouteLoad:
        load = self.routes.get((method, route))
        if load is None:
            load = self.routes[method, route] = RouteLoad()
        return load


class LoadDriver:
    """Sends ``rps`` requests per second through ``client`` until stopped."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        rps: float,
        mix: RouteMix = DEFAULT_MIX,
        rng: random.Random | None = None,
        max_in_flight: int = 512,
    ) -> None:
        if rps <= 0:
            raise ValueError(f"rps must be positive, got {rps}")
        self._client = client
        self._rps = rps
        self._mix = mix
        self._rng = rng or random.Random()
        self._max_in_flight = max_in_flight
        self._tasks: set[asyncio.Task[None]] = set()
        self.counts = LoadCounts()

    async def run(self, stop: asyncio.Event, *, max_requests: int | None = None) -> LoadCounts:
        """Send on schedule until ``stop`` is set (or ``max_requests`` are due).

        Returns once every request started has been answered or has failed.
        """
        loop = asyncio.get_running_loop()
        start = loop.time()
        due = 0
        while not stop.is_set() and (max_requests is None or due < max_requests):
            now_due = int((loop.time() - start) * self._rps) + 1
            if max_requests is not None:
                now_due = min(now_due, max_requests)
            for _ in range(now_due - due):
                self._launch()
            due = now_due
            wait = start + due / self._rps - loop.time()
            if wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=max(wait, 0.002))
        await self.drain()
        return self.counts

    async def drain(self) -> None:
        """Wait for the requests in flight."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))

    def _launch(self) -> None:
        if len(self._tasks) >= self._max_in_flight:
            self.counts.skipped += 1
            return
        plan = self._mix.choose(self._rng)
        self.counts.sent += 1
        self.counts.route(plan.method, plan.route).sent += 1
        task = asyncio.create_task(self._send(plan))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, plan: PlannedRequest) -> None:
        load = self.counts.route(plan.method, plan.route)
        try:
            response = await self._client.request(plan.method, plan.path, json=plan.json)
        except httpx.HTTPError:
            self.counts.failed += 1
            load.failed += 1
            return
        self.counts.answered += 1
        load.answered += 1
        load.by_class[f"{response.status_code // 100}xx"] += 1
