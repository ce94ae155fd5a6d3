import asyncio
import random
import re
from collections import Counter

import httpx
import pytest

from sloguard.demo.load import DEFAULT_MIX, LoadCounts, LoadDriver, MixEntry, RouteMix


def test_default_mix_matches_the_shop_routes_and_sums_to_one() -> None:
    shares = DEFAULT_MIX.shares()
    assert sum(shares.values()) == pytest.approx(1.0)
    assert set(shares) == {
        ("GET", "/products"),
        ("GET", "/products/{product_id}"),
        ("GET", "/search"),
        ("POST", "/cart/items"),
        ("POST", "/checkout"),
        ("GET", "/healthz"),
    }


def test_route_mix_draws_routes_in_proportion_to_their_weights() -> None:
    rng = random.Random(1)
    draws = Counter((p.method, p.route) for p in (DEFAULT_MIX.choose(rng) for _ in range(20_000)))
    for key, share in DEFAULT_MIX.shares().items():
        assert draws[key] / 20_000 == pytest.approx(share, abs=0.015), key


def test_planned_paths_fit_their_route_templates() -> None:
    rng = random.Random(2)
    for _ in range(2_000):
        plan = DEFAULT_MIX.choose(rng)
        pattern = re.sub(r"\{[^}]+\}", "[^/]+", plan.route)
        assert re.fullmatch(pattern, plan.path.split("?")[0]), plan
        assert (plan.json is not None) == (plan.method == "POST")


@pytest.mark.parametrize(
    "entries",
    [
        pytest.param([], id="empty"),
        pytest.param([MixEntry("GET", "/a", 0, lambda rng: None)], id="zero-weight"),  # type: ignore[arg-type,return-value]
    ],
)
def test_route_mix_rejects_empty_or_weightless_entries(entries: list[MixEntry]) -> None:
    with pytest.raises(ValueError):
        RouteMix(entries)


def drive(
    handler: httpx.AsyncBaseTransport, *, max_requests: int, max_in_flight: int = 512
) -> LoadCounts:
    async def main() -> LoadCounts:
        async with httpx.AsyncClient(transport=handler, base_url="http://shop") as client:
            driver = LoadDriver(
                client, rps=5_000, rng=random.Random(3), max_in_flight=max_in_flight
            )
            return await driver.run(asyncio.Event(), max_requests=max_requests)

    return asyncio.run(main())


def test_driver_sends_the_requests_due_and_counts_answers_by_class() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503 if request.url.path == "/checkout" else 200)

    counts = drive(httpx.MockTransport(handler), max_requests=200)
    assert (counts.sent, counts.answered, counts.failed, counts.skipped) == (200, 200, 0, 0)
    assert sum(r.sent for r in counts.routes.values()) == 200
    checkout = counts.routes["POST", "/checkout"]
    assert checkout.by_class == Counter({"5xx": checkout.answered})


def test_driver_counts_requests_without_a_response_as_failed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    counts = drive(httpx.MockTransport(handler), max_requests=20)
    assert (counts.sent, counts.answered, counts.failed, counts.in_flight) == (20, 0, 20, 0)


def test_driver_waits_for_requests_in_flight_after_stop() -> None:
    async def main() -> tuple[LoadCounts, int]:
        gate = asyncio.Event()

        async def handler(request: httpx.Request) -> httpx.Response:
            await gate.wait()
            return httpx.Response(200)

        stop = asyncio.Event()
        async with httpx.AsyncClient(
            transport=httpx.MockTransport(handler), base_url="http://s"
        ) as c:
            driver = LoadDriver(c, rps=1_000, rng=random.Random(4))
            running = asyncio.create_task(driver.run(stop))
            while driver.counts.sent < 10:
                await asyncio.sleep(0.001)
            stop.set()
            await asyncio.sleep(0.01)
            in_flight_at_stop = driver.counts.in_flight
            gate.set()
            return await running, in_flight_at_stop

    counts, in_flight_at_stop = asyncio.run(main())
    assert in_flight_at_stop >= 10
    assert counts.answered == counts.sent
    assert counts.in_flight == 0


def test_driver_skips_requests_past_the_in_flight_limit() -> None:
    async def main() -> LoadCounts:
        gate = asyncio.Event()

        async def handler(request: httpx.Request) -> httpx.Response:
            await gate.wait()
            return httpx.Response(200)

        async with httpx.AsyncClient(
            transport=httpx.MockTransport(handler), base_url="http://s"
        ) as c:
            driver = LoadDriver(c, rps=5_000, rng=random.Random(5), max_in_flight=2)
            running = asyncio.create_task(driver.run(asyncio.Event(), max_requests=6))
            while driver.counts.sent + driver.counts.skipped < 6:
                await asyncio.sleep(0.001)
            gate.set()
            return await running

    counts = asyncio.run(main())
    assert (counts.sent, counts.skipped, counts.answered) == (2, 4, 2)


def test_driver_rejects_a_rate_that_is_not_positive() -> None:
    with pytest.raises(ValueError):
        LoadDriver(httpx.AsyncClient(), rps=0)
