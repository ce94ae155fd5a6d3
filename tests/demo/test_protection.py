"""The demo's protection: a failing checkout trips its breaker, the view says so."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from sloguard.asgi import guard
from sloguard.demo.protection import ProtectionSnapshot, read_protection
from sloguard.demo.settings import demo_settings
from sloguard.demo.shop import ShopConfig, build_shop


async def no_delay(seconds: float) -> None:
    return None


def test_a_failing_checkout_opens_the_demo_breaker_and_refusals_are_counted(
    tmp_path: Path,
) -> None:
    settings = demo_settings(tmp_path / "demo.db")
    app = guard(build_shop(ShopConfig(error_rate=1.0), sleep=no_delay), settings)

    async def checkouts() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            return [(await client.post("/checkout")).status_code for _ in range(8)]

    statuses = asyncio.run(checkouts())
    snapshot = read_protection(app.registry)
    app.close()
    assert statuses == [503] * 8
    assert snapshot.breakers == {"checkout": "open"}
    assert snapshot.refused == {"BRK_503": 2}
    assert snapshot.describe() == "protection | breaker checkout: open | refused: BRK_503 2"


def test_a_guard_without_protection_says_so() -> None:
    assert ProtectionSnapshot().describe() == "protection: off"
