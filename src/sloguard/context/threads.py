"""Carry the request context into worker threads.

asyncio tasks and :func:`asyncio.to_thread` copy contextvars by themselves.
:class:`concurrent.futures.ThreadPoolExecutor` and ``loop.run_in_executor``
do not: a function submitted there runs with the worker thread's empty
context, so its log lines lose their trace and request ids.

Two ways to fix that, pick one:

* the helpers here: :class:`ContextThreadPoolExecutor` (a drop-in executor)
  and :func:`run_in_executor`;
* :func:`propagate_context_to_threads`, which patches
  ``ThreadPoolExecutor.submit`` once per process so every executor — and so
  ``loop.run_in_executor``, whose default executor is one — copies the caller's
  context. ``sloguard.guard`` calls it unless ``context.patch_executors`` is
  false.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = ["ContextThreadPoolExecutor", "propagate_context_to_threads", "run_in_executor"]

P = ParamSpec("P")
T = TypeVar("T")

_PATCH_LOCK = threading.Lock()
_ORIGINAL_SUBMIT = ThreadPoolExecutor.submit
_MARK = "__sloguard_context__"


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks run in a copy of the submitter's context."""

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        ctx = contextvars.copy_context()
        return _ORIGINAL_SUBMIT(self, ctx.run, fn, *args, **kwargs)  # type: ignore[arg-type]


async def run_in_executor(executor: Executor | None, fn: Callable[..., T], *args: Any) -> T:
    """``loop.run_in_executor`` that keeps the caller's context."""
    loop = asyncio.get_running_loop()
    ctx = contextvars.copy_context()
    return await loop.run_in_executor(executor, functools.partial(ctx.run, fn, *args))


def _submit_with_context(
    self: ThreadPoolExecutor, fn: Callable[..., T], /, *args: Any, **kwargs: Any
) -> Future[T]:
    if getattr(fn, _MARK, False):
        return _ORIGINAL_SUBMIT(self, fn, *args, **kwargs)
    ctx = contextvars.copy_context()
    return _ORIGINAL_SUBMIT(self, ctx.run, fn, *args, **kwargs)


def propagate_context_to_threads() -> bool:
    """Patch ``ThreadPoolExecutor.submit`` to copy context. Idempotent.

    Returns True if this call installed the patch, False if it was in place.
    """
    with _PATCH_LOCK:
        if ThreadPoolExecutor.submit is _submit_with_context:
            return False
        ThreadPoolExecutor.submit = _submit_with_context  # type: ignore[assignment,method-assign]
        return True
