"""One error format for the whole project: RFC 9457 problem details.

Every error sloguard returns to a client is an ``application/problem+json``
document with a stable ``code`` (``AUTH_101``, ``BRK_503`` …) from the one
registry in :mod:`sloguard.errors.registry`, the ``request_id``, and a
``detail`` that is safe to show (never a key, token or stack).

Exceptions::

    SloguardHTTPError          an error with a registered code, rendered as a problem
"""

from sloguard.errors.problem import SloguardHTTPError, problem_body, problem_response_headers
from sloguard.errors.registry import REGISTRY, ErrorCode, lookup

__all__ = [
    "REGISTRY",
    "ErrorCode",
    "SloguardHTTPError",
    "lookup",
    "problem_body",
    "problem_response_headers",
]
