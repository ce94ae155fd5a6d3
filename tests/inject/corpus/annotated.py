"""``from __future__ import annotations`` with names defined after the def."""

from __future__ import annotations


def convert(value: Later) -> Later:
    return value


class Later:
    def clone(self: Later) -> Later:
        return Later()
