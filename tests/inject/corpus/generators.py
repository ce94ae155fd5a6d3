"""Generators driven with send, throw, close and yield from."""

from __future__ import annotations

from collections.abc import Generator


def averager() -> Generator[float, float, int]:
    total, count, average = 0.0, 0, 0.0
    while True:
        value = yield average
        if value is None:
            return count
        total += value
        count += 1
        average = total / count


def delegator() -> Generator[float, float, str]:
    count = yield from averager()
    return f"{count} values"


def catcher(log: list[str]) -> Generator[int, None, None]:
    try:
        yield 1
    except ValueError as exc:
        log.append(f"caught {exc}")
        yield 2
    finally:
        log.append("finally")


def countdown(n: int) -> Generator[int, None, None]:
    while n:
        yield n
        n -= 1


def stubborn() -> Generator[int, None, None]:
    try:
        yield 1
    finally:
        yield 2  # yields while being closed: close() raises RuntimeError
