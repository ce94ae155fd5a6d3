"""Functions of every shape for the probe tests to attach to."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any


def add(a: int, b: int = 1) -> int:
    return a + b


def fail(message: str) -> None:
    raise ValueError(message)


def shaped(a: int, /, b: int, *rest: int, c: int, d: int = 4, **extra: int) -> tuple[Any, ...]:
    return (a, b, rest, c, d, extra)


def recurse(n: int) -> int:
    return 0 if n == 0 else 1 + recurse(n - 1)


def countdown(n: int) -> Iterator[int]:
    yield from range(n, 0, -1)


def echo() -> Iterator[object]:
    got = yield "ready"
    while True:
        try:
            got = yield got
        except KeyError as exc:
            got = yield f"caught {exc.args[0]}"


async def double(x: int) -> int:
    await asyncio.sleep(0)
    return 2 * x


async def ticks(n: int) -> AsyncIterator[object]:
    for i in range(n):
        got = yield i
        if got is not None:
            yield f"got {got}"


def make_counter() -> Callable[..., int]:
    count = 0

    def bump(step: int = 1) -> int:
        nonlocal count
        count += step
        return count

    return bump


counter = make_counter()


def _logged(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


@_logged
def decorated(x: int) -> int:
    return x + 100


class Base:
    def hello(self) -> str:
        return "base"


class Repo(Base):
    def get(self, key: str, password: str = "") -> str:
        return key.upper()

    def hello(self) -> str:
        return "repo+" + super().hello()

    @staticmethod
    def norm(key: str) -> str:
        return key.strip()

    @classmethod
    def build(cls) -> Repo:
        return cls()

    @property
    def size(self) -> int:
        return 3
