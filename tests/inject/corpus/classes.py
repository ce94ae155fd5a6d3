"""Argument-less super(), the __class__ cell, descriptors and class bodies."""

from __future__ import annotations

import dataclasses


class Base:
    def greet(self) -> str:
        return "base"

    @classmethod
    def make(cls) -> Base:
        return cls()

    @staticmethod
    def twice(x: int) -> int:
        return 2 * x

    @property
    def label(self) -> str:
        return type(self).__name__

    def __init_subclass__(cls, tag: str = "", **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.tag = tag


class Child(Base, tag="child"):
    KINDS = [kind for kind in ("a", "b")]  # noqa: C416 - a class-body comprehension
    SIZE = len(KINDS)

    def greet(self) -> str:
        return "child+" + super().greet()

    def own_class(self) -> type:
        return __class__

    def __new__(cls) -> Child:
        return super().__new__(cls)

    class Inner:
        def where(self) -> str:
            return type(self).__qualname__


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int

    def norm1(self) -> int:
        return abs(self.x) + abs(self.y)
