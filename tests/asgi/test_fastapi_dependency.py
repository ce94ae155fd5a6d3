"""Auth as a FastAPI dependency on its own, without the guard middleware."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import jwt
from fastapi import Depends, FastAPI

from sloguard.asgi.fastapi import Authenticated, add_problem_handlers
from sloguard.auth import Principal
from sloguard.settings import AuthSettings

SECRET = "d" * 48


def build(tmp_path: Path) -> FastAPI:
    (tmp_path / "policy.yaml").write_text(
        "version: 1\nroles:\n  viewer: {permissions: ['GET /orders/*']}\n"
        "  analyst: {permissions: ['reports:read']}\n"
    )
    (tmp_path / "secret").write_text(SECRET)
    settings = AuthSettings.model_validate(
        {
            "enabled": True,
            "static_keys": [{"file": str(tmp_path / "secret"), "algorithms": ["HS256"]}],
            "policy": {"file": str(tmp_path / "policy.yaml")},
        }
    )
    auth = Authenticated.from_settings(settings)
    app = FastAPI()
    add_problem_handlers(app)

    @app.get("/orders/{order_id}")
    async def order(order_id: str, principal: Principal = Depends(auth)) -> dict[str, str]:
        return {"for": principal.subject}

    @app.get("/reports")
    async def reports(
        principal: Principal = Depends(auth.requiring("reports:read")),
    ) -> dict[str, str]:
        return {"for": principal.subject}

    return app


def call(app: FastAPI, path: str, roles: list[str] | None) -> httpx.Response:
    headers = {}
    if roles is not None:
        claims = {"sub": "carol", "roles": roles, "exp": int(time.time()) + 60}
        headers["authorization"] = "Bearer " + jwt.encode(claims, SECRET, algorithm="HS256")

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(go())


def test_dependency_returns_the_verified_principal(tmp_path: Path) -> None:
    assert call(build(tmp_path), "/orders/1", ["viewer"]).json() == {"for": "carol"}


def test_dependency_refusals_are_problem_documents(tmp_path: Path) -> None:
    app = build(tmp_path)
    missing = call(app, "/orders/1", None)
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert call(app, "/orders/1", ["analyst"]).json()["code"] == "AUTH_201"


def test_requiring_a_named_permission(tmp_path: Path) -> None:
    app = build(tmp_path)
    assert call(app, "/reports", ["viewer"]).status_code == 403
    assert call(app, "/reports", ["analyst"]).json() == {"for": "carol"}
