"""Package attributes imported on first use.

``sloguard`` and its ``inject``, ``resilience`` and ``telemetry`` packages
export names whose modules pull in heavy or optional libraries (httpx, the
web stack, redis); the ``sloguard run`` bootstrap imports these packages in
every process, so what the application does not use must not be loaded.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, modules: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``name`` comes from ``modules[name]``
    (absolute, or relative to the package when it starts with a dot), imported
    once and then cached in the package's namespace."""

    def load(name: str) -> Any:
        module = modules.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    return load
