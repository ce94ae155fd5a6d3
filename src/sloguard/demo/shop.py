"""The sample shop service that ``sloguard demo`` guards and loads.

A small Starlette app with the shapes a real service has: a fast catalog, a
cart that validates its input, a checkout that waits on a (simulated)
payment provider and sometimes fails with 503, a search that is sometimes
slow, and a health check. Delays and failure rates come from
:class:`ShopConfig`, so the demo can show an SLO burning and the tests can
run the same app without sleeping.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["CATALOG", "Product", "ShopConfig", "build_shop"]

_MAX_CARTS = 10_000
_MAX_QUANTITY = 99


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    name: str
    price_cents: int

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "price_cents": self.price_cents}


_NAMES = (
    "espresso beans", "french press", "milk frother", "travel mug", "pour-over kettle",
    "burr grinder", "paper filters", "ceramic dripper", "cold brew jar", "tamper",
    "green tea", "matcha whisk", "oolong tin", "teapot", "honey jar",
    "oat milk", "cocoa powder", "biscotti", "stroopwafels", "gift card",
)  # fmt: skip
CATALOG: tuple[Product, ...] = tuple(
    Product(id=index + 1, name=name, price_cents=250 + 175 * index)
    for index, name in enumerate(_NAMES)
)


@dataclass(frozen=True, slots=True)
class ShopConfig:
    """How the shop misbehaves.

    ``error_rate`` is the share of checkouts answered 503; ``slow_rate`` the
    share of searches that take ``slow_search_s``. Delays are (low, high)
    ranges in seconds, drawn uniformly; ``(0, 0)`` turns a delay off.
    """

    error_rate: float = 0.02
    slow_rate: float = 0.05
    checkout_s: tuple[float, float] = (0.05, 0.4)
    search_s: tuple[float, float] = (0.001, 0.01)
    slow_search_s: tuple[float, float] = (0.15, 0.6)
    seed: int | None = None

    def __post_init__(self) -> None:
        for name in ("error_rate", "slow_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        for name in ("checkout_s", "search_s", "slow_search_s"):
            low, high = getattr(self, name)
            if not 0.0 <= low <= high:
                raise ValueError(f"{name} must be a range 0 <= low <= high, got {(low, high)}")


@dataclass(slots=True)
class _ShopState:
    config: ShopConfig
    rng: random.Random
    sleep: Callable[[float], Awaitable[None]]
    carts: dict[str, list[dict[str, int]]] = field(default_factory=dict)
    order_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def pause(self, bounds: tuple[float, float]) -> None:
        low, high = bounds
        if high > 0:
            await self.sleep(self.rng.uniform(low, high))


def build_shop(
    config: ShopConfig | None = None,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Starlette:
    """The shop as an ASGI app. ``sleep`` is the awaitable delay (a seam for tests)."""
    state = _ShopState(
        config or ShopConfig(), random.Random(config.seed if config else None), sleep
    )

    async def list_products(request: Request) -> JSONResponse:
        limit = _int_param(request.query_params.get("limit"), default=len(CATALOG))
        if limit is None or limit < 0:
            return _problem(400, "limit must be a non-negative integer")
        return JSONResponse({"products": [p.as_json() for p in CATALOG[:limit]]})

    async def get_product(request: Request) -> JSONResponse:
        product_id = _int_param(request.path_params["product_id"], default=None)
        if product_id is None or not 1 <= product_id <= len(CATALOG):
            return _problem(404, "no such product")
        return JSONResponse(CATALOG[product_id - 1].as_json())

    async def add_cart_item(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _problem(400, "body must be JSON")
        if not isinstance(body, dict):
            return _problem(422, "body must be an object")
        cart_id, product_id, quantity = (
            body.get("cart_id"),
            body.get("product_id"),
            body.get("quantity", 1),
        )
        if not isinstance(cart_id, str) or not cart_id:
            return _problem(422, "cart_id must be a non-empty string")
        if not isinstance(product_id, int) or not 1 <= product_id <= len(CATALOG):
            return _problem(422, "product_id must name a product")
        if not isinstance(quantity, int) or not 1 <= quantity <= _MAX_QUANTITY:
            return _problem(422, f"quantity must be an integer from 1 to {_MAX_QUANTITY}")
        if cart_id not in state.carts and len(state.carts) >= _MAX_CARTS:
            state.carts.pop(next(iter(state.carts)))  # forget the oldest cart
        items = state.carts.setdefault(cart_id, [])
        items.append({"product_id": product_id, "quantity": quantity})
        return JSONResponse({"cart_id": cart_id, "items": items}, status_code=201)

    async def checkout(request: Request) -> JSONResponse:
        await state.pause(state.config.checkout_s)  # the payment provider
        if state.rng.random() < state.config.error_rate:
            return _problem(503, "payment provider unavailable")
        try:
            body = await request.json()
        except ValueError:
            body = {}
        cart_id = body.get("cart_id") if isinstance(body, dict) else None
        items = state.carts.pop(cart_id, []) if isinstance(cart_id, str) else []
        total = sum(CATALOG[i["product_id"] - 1].price_cents * i["quantity"] for i in items)
        return JSONResponse({"order_id": next(state.order_ids), "total_cents": total})

    async def search(request: Request) -> JSONResponse:
        slow = state.rng.random() < state.config.slow_rate
        await state.pause(state.config.slow_search_s if slow else state.config.search_s)
        query = request.query_params.get("q", "").strip().lower()
        hits = [p.as_json() for p in CATALOG if query and query in p.name]
        return JSONResponse({"query": query, "results": hits})

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/products", list_products, methods=["GET"]),
            Route("/products/{product_id}", get_product, methods=["GET"]),
            Route("/cart/items", add_cart_item, methods=["POST"]),
            Route("/checkout", checkout, methods=["POST"]),
            Route("/search", search, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


def _int_param(raw: str | None, *, default: int | None) -> int | None:
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        return None


def _problem(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"error": detail}, status_code=status)
