"""The mark a guard leaves on the application it wraps.

Zero-code hooks (``sloguard run``) patch framework classes; when they meet an
application object that a guard already wraps (the app called ``guard()``
itself), the mark tells them to leave it alone, so nothing is instrumented
twice.
"""

from __future__ import annotations

import contextlib

__all__ = ["GUARDED_MARKER", "is_guarded", "mark_guarded"]

GUARDED_MARKER = "__sloguard_guarded__"


def mark_guarded(app: object) -> None:
    # objects without a __dict__ (builtins, slots) cannot carry the mark
    with contextlib.suppress(AttributeError, TypeError):
        setattr(app, GUARDED_MARKER, True)


def is_guarded(app: object) -> bool:
    return getattr(app, GUARDED_MARKER, False) is True
