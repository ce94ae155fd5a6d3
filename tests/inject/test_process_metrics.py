"""A hook-built guard's /metrics also serves the process's task and probe families."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from sloguard.inject._explain import Report
from sloguard.inject._tasks import install_task_tracking, uninstall_task_tracking
from sloguard.settings import Settings
from tests.inject.hookapps.starlette_apps import starlette_app
from tests.inject.hookapps.support import hooks_installed


def test_task_tracking_families_are_on_the_guards_metrics(tmp_path: Path) -> None:
    install_task_tracking(Settings(inject={"tasks": {"enabled": True}}), Report())
    try:
        with hooks_installed(tmp_path):

            async def go() -> str:
                await asyncio.create_task(asyncio.sleep(0))
                transport = httpx.ASGITransport(app=starlette_app())
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                    return (await client.get("/metrics")).text

            text = asyncio.run(go())
    finally:
        uninstall_task_tracking()
    assert "sloguard_asyncio_tasks_created_total" in text
    assert "sloguard_http_requests_total" in text or "sloguard_http_request" in text
