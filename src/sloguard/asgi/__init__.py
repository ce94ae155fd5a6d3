"""Thin wiring of sloguard's parts into ASGI and WSGI middleware.

``guard(app, settings)`` builds the stack for an ASGI app; ``guard_wsgi`` for
a WSGI app (Flask). Both share one observation core.
"""

from sloguard.asgi.guard import Guard, guard
from sloguard.asgi.observe import ObserveMiddleware
from sloguard.asgi.wsgi import WSGIGuard, guard_wsgi

__all__ = ["Guard", "ObserveMiddleware", "WSGIGuard", "guard", "guard_wsgi"]
