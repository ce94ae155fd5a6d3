"""Decorators stacked on traced defs; overload stubs."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, overload


def shout(func: Callable[..., str]) -> Callable[..., str]:
    @functools.wraps(func)
    def loud(*args: Any, **kwargs: Any) -> str:
        return func(*args, **kwargs).upper()

    return loud


@shout
def hello(name: str) -> str:
    return f"hello {name}"


@functools.cache
def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


@contextlib.contextmanager
def tagged(log: list[str]) -> Iterator[str]:
    log.append("enter")
    try:
        yield "inside"
    except KeyError:
        log.append("swallowed")
    finally:
        log.append("exit")


@overload
def pick(x: int) -> int: ...
@overload
def pick(x: str) -> str: ...
def pick(x: int | str) -> int | str:
    return x
