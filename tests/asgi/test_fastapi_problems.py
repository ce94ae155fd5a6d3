"""sloguard errors raised in FastAPI endpoints are answered as problem+json."""

from __future__ import annotations

import json

from fastapi import FastAPI
from fastapi.testclient import TestClient

from sloguard.asgi.fastapi import add_problem_handlers
from sloguard.resilience import BreakerPolicy, CircuitBreaker, ManualClock

clock = ManualClock()
payments = CircuitBreaker("payments", BreakerPolicy(consecutive_failures=1, open_s=12), clock=clock)


def failing_call() -> None:
    raise ConnectionError("payments backend down")


def app() -> FastAPI:
    api = FastAPI()
    add_problem_handlers(api)

    @api.get("/pay")
    def pay() -> dict[str, str]:
        payments.call(failing_call)
        return {"paid": "yes"}

    return api


def test_an_open_breaker_in_an_endpoint_is_answered_brk_503_with_retry_after() -> None:
    with TestClient(app(), raise_server_exceptions=False) as client:
        failed = client.get("/pay")
        clock.advance(2)
        refused = client.get("/pay")
    assert failed.status_code == 500
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "10"
    assert json.loads(refused.content)["code"] == "BRK_503"
