"""Log records carry the request's ids; thread pools carry the request context."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from sloguard.context import RequestContext, bind_request, current_request, reset_request, threads
from sloguard.inject._explain import Outcome
from tests.inject.hookapps.starlette_apps import starlette_app
from tests.inject.hookapps.support import hooks_installed

THREADS = "concurrent.futures.ThreadPoolExecutor"


@pytest.fixture
def plain_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start from the stdlib record factory (an earlier guard may have left sloguard's)."""
    monkeypatch.setattr(logging, "_logRecordFactory", logging.LogRecord)


@pytest.fixture
def plain_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ThreadPoolExecutor, "submit", threads._ORIGINAL_SUBMIT)


def in_request(fn):  # type: ignore[no-untyped-def]
    token = bind_request(RequestContext("req-1", trace_id="ab" * 16))
    try:
        return fn()
    finally:
        reset_request(token)


@pytest.mark.usefixtures("plain_logging")
def test_record_factory_adds_request_ids_until_undone(tmp_path: Path) -> None:
    with hooks_installed(tmp_path):
        factory = logging.getLogRecordFactory()
        record = in_request(lambda: factory("app", logging.INFO, __file__, 1, "hi", (), None))
        assert (record.request_id, record.trace_id) == ("req-1", "ab" * 16)
    assert logging.getLogRecordFactory() is logging.LogRecord


@pytest.mark.usefixtures("plain_logging")
def test_app_log_lines_in_a_hooked_request_carry_its_ids(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=starlette_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
            return await client.get("/items/5")

    with hooks_installed(tmp_path), caplog.at_level(logging.INFO, "hookapps.starlette"):
        response = asyncio.run(go())
    (record,) = [r for r in caplog.records if r.name == "hookapps.starlette"]
    assert record.request_id == response.headers["x-request-id"]  # type: ignore[attr-defined]
    assert len(record.trace_id) == 32  # type: ignore[attr-defined]


@pytest.mark.usefixtures("plain_executor")
def test_executor_tasks_run_in_the_submitters_context_until_undone(tmp_path: Path) -> None:
    with hooks_installed(tmp_path, context={"patch_executors": True}) as hooked:
        with ThreadPoolExecutor(1) as pool:
            seen = in_request(lambda: pool.submit(current_request).result())
        assert seen is not None
        assert seen.request_id == "req-1"
        assert hooked.outcome(THREADS)[0] is Outcome.INSTRUMENTED  # type: ignore[index]
    assert ThreadPoolExecutor.submit is threads._ORIGINAL_SUBMIT


def test_executor_hook_says_when_the_patch_is_in_place_already(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ThreadPoolExecutor, "submit", threads._submit_with_context)
    with hooks_installed(tmp_path, context={"patch_executors": True}) as hooked:
        assert hooked.outcome(THREADS) == (
            Outcome.SKIPPED,
            "ThreadPoolExecutor.submit copies the context already",
        )
    assert ThreadPoolExecutor.submit is threads._submit_with_context


@pytest.mark.usefixtures("plain_executor")
def test_executor_hook_is_off_when_the_settings_say_so(tmp_path: Path) -> None:
    with hooks_installed(tmp_path, context={"patch_executors": False}) as hooked:
        assert ThreadPoolExecutor.submit is threads._ORIGINAL_SUBMIT
        assert hooked.outcome(THREADS) == (Outcome.SKIPPED, "context.patch_executors is false")
