import asyncio
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from sloguard.demo.shop import CATALOG, ShopConfig, build_shop


class ShopClient:
    """Synchronous calls into the app over httpx's in-process ASGI transport."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(call())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)


def shop(delays: list[float] | None = None, **config: Any) -> ShopClient:
    recorded = delays if delays is not None else []

    async def sleep(seconds: float) -> None:
        recorded.append(seconds)

    return ShopClient(build_shop(ShopConfig(seed=7, **config), sleep=sleep))


def test_products_lists_the_whole_catalog() -> None:
    response = shop().get("/products")
    assert response.status_code == 200
    assert [p["id"] for p in response.json()["products"]] == [p.id for p in CATALOG]


@pytest.mark.parametrize(
    ("query", "status", "count"),
    [
        pytest.param("?limit=3", 200, 3, id="limit"),
        pytest.param("?limit=0", 200, 0, id="zero"),
        pytest.param("?limit=-1", 400, None, id="negative"),
        pytest.param("?limit=many", 400, None, id="not-a-number"),
    ],
)
def test_products_limit_is_checked(query: str, status: int, count: int | None) -> None:
    response = shop().get(f"/products{query}")
    assert response.status_code == status
    if count is not None:
        assert len(response.json()["products"]) == count


@pytest.mark.parametrize(
    ("product_id", "status"),
    [
        pytest.param("1", 200, id="first"),
        pytest.param(str(len(CATALOG)), 200, id="last"),
        pytest.param("0", 404, id="zero"),
        pytest.param(str(len(CATALOG) + 1), 404, id="past-the-end"),
        pytest.param("tea", 404, id="not-a-number"),
    ],
)
def test_product_by_id_answers_404_for_unknown_ids(product_id: str, status: int) -> None:
    response = shop().get(f"/products/{product_id}")
    assert response.status_code == status
    if status == 200:
        assert response.json()["id"] == int(product_id)


def test_cart_items_accumulate_per_cart() -> None:
    client = shop()
    client.post("/cart/items", json={"cart_id": "c1", "product_id": 2, "quantity": 1})
    response = client.post("/cart/items", json={"cart_id": "c1", "product_id": 5, "quantity": 3})
    assert response.status_code == 201
    assert response.json()["items"] == [
        {"product_id": 2, "quantity": 1},
        {"product_id": 5, "quantity": 3},
    ]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param(b"not json", 400, id="not-json"),
        pytest.param(b"[1, 2]", 422, id="not-an-object"),
        pytest.param(b'{"product_id": 1}', 422, id="no-cart"),
        pytest.param(b'{"cart_id": "c", "product_id": 999}', 422, id="unknown-product"),
        pytest.param(b'{"cart_id": "c", "product_id": 1, "quantity": 0}', 422, id="zero-qty"),
        pytest.param(b'{"cart_id": "c", "product_id": "1"}', 422, id="string-product"),
    ],
)
def test_cart_rejects_bad_bodies(body: bytes, status: int) -> None:
    response = shop().post("/cart/items", content=body)
    assert response.status_code == status
    assert "error" in response.json()


def test_checkout_totals_the_cart_and_empties_it() -> None:
    client = shop(error_rate=0.0)
    client.post("/cart/items", json={"cart_id": "c1", "product_id": 1, "quantity": 2})
    first = client.post("/checkout", json={"cart_id": "c1"})
    again = client.post("/checkout", json={"cart_id": "c1"})
    assert first.status_code == 200
    assert first.json()["total_cents"] == 2 * CATALOG[0].price_cents
    assert again.json()["total_cents"] == 0


def test_checkout_fails_with_503_at_error_rate_one() -> None:
    response = shop(error_rate=1.0).post("/checkout", json={"cart_id": "c1"})
    assert response.status_code == 503


def test_checkout_waits_for_the_payment_provider_within_its_range() -> None:
    delays: list[float] = []
    client = shop(delays, checkout_s=(0.05, 0.4))
    for _ in range(20):
        client.post("/checkout", json={})
    assert len(delays) == 20
    assert all(0.05 <= d <= 0.4 for d in delays)


@pytest.mark.parametrize(
    ("slow_rate", "low", "high"),
    [pytest.param(1.0, 0.15, 0.6, id="always-slow"), pytest.param(0.0, 0.001, 0.01, id="fast")],
)
def test_search_is_slow_at_the_slow_rate(slow_rate: float, low: float, high: float) -> None:
    delays: list[float] = []
    client = shop(delays, slow_rate=slow_rate)
    response = client.get("/search", params={"q": "Tea"})
    assert response.json()["results"] == [p.as_json() for p in CATALOG if "tea" in p.name]
    assert len(delays) == 1
    assert low <= delays[0] <= high


def test_healthz_says_ok() -> None:
    assert shop().get("/healthz").json() == {"status": "ok"}


@pytest.mark.parametrize(
    "config",
    [
        pytest.param({"error_rate": 1.5}, id="error-rate"),
        pytest.param({"slow_rate": -0.1}, id="slow-rate"),
        pytest.param({"checkout_s": (0.4, 0.05)}, id="reversed-range"),
    ],
)
def test_shop_config_rejects_impossible_values(config: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ShopConfig(**config)  # type: ignore[arg-type]
