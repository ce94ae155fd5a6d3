"""Coroutines, async generators and async context managers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator


async def add(a: int, b: int) -> int:
    await asyncio.sleep(0)
    return a + b


async def ticker(n: int) -> AsyncGenerator[int, int | None]:
    for i in range(n):
        got = yield i
        if got is not None:
            yield got * 10


async def guarded(log: list[str]) -> AsyncGenerator[int, None]:
    try:
        yield 1
    except ValueError:
        log.append("caught")
        yield 2
    finally:
        log.append("finally")


@contextlib.asynccontextmanager
async def opened(log: list[str]) -> AsyncIterator[str]:
    log.append("open")
    try:
        yield "resource"
    finally:
        log.append("close")
