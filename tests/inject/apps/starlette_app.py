"""A Starlette app with no sloguard in its code: ``sloguard run`` has to instrument it.

``/whoami`` answers with the worker's pid and puts it on the current span (as
an application using the OpenTelemetry API would), so a test can tell which
worker served a request and which worker exported a span.
"""

import os

from opentelemetry import trace
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def whoami(request: Request) -> JSONResponse:
    trace.get_current_span().set_attribute("worker.pid", os.getpid())
    return JSONResponse({"pid": os.getpid()})


app = Starlette(routes=[Route("/whoami", whoami)])


def main() -> None:
    """Serve on 127.0.0.1:$PORT in this process (the script and ``python -m`` modes)."""
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_level="warning")
