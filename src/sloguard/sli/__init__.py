"""Service level indicators: classify each finished request, count it, flush the counts.

The pieces, in the order a request meets them:

* :class:`SLIClassifier` -- which SLOs (by route-template glob and method)
  count a request; cached per (route, method).
* :class:`SLIRecorder` -- ``record()`` on the request path: no I/O, one tuple
  key and one dict increment under a lock, well under a microsecond; counts
  stay exact under any number of threads.
* :class:`SLIFlusher` -- a daemon thread that drains the recorder into the
  embedded store (:class:`sloguard.store.SQLiteStore`) every interval. A
  failing store never reaches the request path: the rows are kept and retried.

Durability: counts live in memory between flushes. A graceful exit (SIGTERM
handled by the server, ``sys.exit``, end of ``main``) flushes them through
:mod:`atexit`; a hard kill (SIGKILL, OOM killer, power loss) loses at most one
flush interval of counts (``sli.flush_interval_s``, 5 s by default) -- plus,
if the store was failing at that moment, the rows kept for retry.

Processes: every worker process counts and flushes its own requests into the
same store file. After ``fork()`` the child forgets the counts it inherited
(the parent flushes them) and restarts its flusher thread, so ``gunicorn
--preload`` and ``uvicorn --workers`` count every request exactly once.

This package raises no exceptions of its own on the request path; store
errors are :class:`sloguard.store.StoreError` and are logged by the flusher
(logger ``sloguard.sli``), never raised to callers of ``record()``.
"""

from sloguard.sli._classifier import SLIClassifier
from sloguard.sli._flusher import BucketSink, SLIFlusher, StoreFactory, merge_rows
from sloguard.sli._recorder import STATUS_CLASSES, SLIRecorder, status_class

__all__ = [
    "STATUS_CLASSES",
    "BucketSink",
    "SLIClassifier",
    "SLIFlusher",
    "SLIRecorder",
    "StoreFactory",
    "merge_rows",
    "status_class",
]
