"""The mark a guard leaves on the application it wraps.

Zero-code hooks (``sloguard run``) patch framework classes; when they meet an
application object that a guard already wraps (the app called ``guard()``
itself), the mark tells them to leave it alone, so nothing is instrumented
twice.
"""

from __future__ import annotations

import contextlib

__all__ = ["GUARDED_MARKER", "mark_guarded"]

GUARDED_MARKER = "__sloguard_guarded__"


def mark_guarded(app: object) -> None:
    """Mark ``app`` and the layers under it (``.app`` chains of middleware, and
    the owner of a bound ``wsgi_app``), so a hook meeting any of them again,
    say the inner Starlette app at lifespan, leaves it alone."""
    layer: object | None = app
    for _ in range(32):
        if layer is None:
            return
        owner = getattr(layer, "__self__", None)
        for target in (layer, owner):
            # objects without a __dict__ (builtins, slots) cannot carry the mark
            if target is not None:
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(target, GUARDED_MARKER, True)
        layer = getattr(layer, "app", None)
