"""The request context survives tasks, to_thread, executors and run_in_executor."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from sloguard.context import (
    ContextThreadPoolExecutor,
    RequestContext,
    bind_request,
    current_request,
    propagate_context_to_threads,
    reset_request,
    run_in_executor,
)


def seen_id() -> str | None:
    ctx = current_request()
    return ctx.request_id if ctx else None


def in_request(body):  # type: ignore[no-untyped-def]
    async def main() -> object:
        token = bind_request(RequestContext(request_id="r-1"))
        try:
            return await body()
        finally:
            reset_request(token)

    return asyncio.run(main())


def test_asyncio_tasks_see_the_request() -> None:
    async def body() -> object:
        return await asyncio.create_task(asyncio.sleep(0, result=seen_id()))

    assert in_request(body) == "r-1"


def test_to_thread_sees_the_request() -> None:
    assert in_request(lambda: asyncio.to_thread(seen_id)) == "r-1"


def test_context_executor_carries_the_request() -> None:
    async def body() -> object:
        with ContextThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(seen_id).result()

    assert in_request(body) == "r-1"


def test_run_in_executor_helper_carries_the_request() -> None:
    async def body() -> object:
        with ThreadPoolExecutor(max_workers=1) as pool:
            return await run_in_executor(pool, seen_id)

    assert in_request(body) == "r-1"


def test_patched_executor_and_loop_default_executor_carry_the_request() -> None:
    propagate_context_to_threads()

    async def body() -> object:
        with ThreadPoolExecutor(max_workers=1) as pool:
            direct = pool.submit(seen_id).result()
        loop = asyncio.get_running_loop()
        return direct, await loop.run_in_executor(None, seen_id)

    assert in_request(body) == ("r-1", "r-1")


def test_patch_is_idempotent() -> None:
    propagate_context_to_threads()
    assert propagate_context_to_threads() is False


def test_outside_a_request_there_is_no_context() -> None:
    assert current_request() is None
