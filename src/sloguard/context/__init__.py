"""The per-request context, carried in contextvars.

Everything a request touches (logs, spans, metrics, SLI records, the auth and
protection layers) reads who and what the request is from here, so the value
survives ``await``, asyncio tasks and — through :mod:`sloguard.context.threads`
— worker threads.
"""

from sloguard.context._request import (
    RequestContext,
    bind_request,
    current_request,
    reset_request,
)
from sloguard.context._request_id import new_request_id, valid_request_id
from sloguard.context.threads import (
    ContextThreadPoolExecutor,
    propagate_context_to_threads,
    run_in_executor,
)

__all__ = [
    "ContextThreadPoolExecutor",
    "RequestContext",
    "bind_request",
    "current_request",
    "new_request_id",
    "propagate_context_to_threads",
    "reset_request",
    "run_in_executor",
    "valid_request_id",
]
