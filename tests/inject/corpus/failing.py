"""Functions that raise, with the raising line marked: tracebacks must point at it."""

from __future__ import annotations

from collections.abc import Generator


def fails(x: int) -> int:
    if x:
        raise ValueError(f"bad {x}")  # raises-here: fails
    return x


def calls_fails() -> int:
    return fails(1)  # raises-here: calls_fails


def fails_in_generator() -> Generator[int, None, None]:
    yield 1
    raise KeyError("gen")  # raises-here: fails_in_generator


async def fails_async() -> None:
    raise RuntimeError("async")  # raises-here: fails_async
