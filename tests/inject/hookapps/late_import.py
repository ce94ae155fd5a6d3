"""Run in a fresh interpreter: hooks first, as ``sloguard run`` installs them, frameworks after.

Prints one JSON object: which frameworks were imported by the hooks
themselves (none should be), and whether applications built from classes
imported after the hooks were guarded.
"""

from __future__ import annotations

import asyncio
import json
import sys

from sloguard.inject import _hooks
from sloguard.inject._explain import REPORT
from sloguard.inject._frameworks import install_framework_hooks
from sloguard.settings import Settings

LIBRARIES = ("starlette", "fastapi", "flask", "werkzeug", "django", "requests", "aiohttp")


def main(store: str) -> None:
    settings = Settings.model_validate(
        {"logging": {"configure_root": False}, "sli": {"store_path": store}}
    )
    _hooks.install()
    install_framework_hooks(settings, REPORT)
    eager = [name for name in LIBRARIES if name in sys.modules]

    import httpx
    from flask import Flask
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    async def item(request: object) -> PlainTextResponse:
        return PlainTextResponse("item")

    asgi_app = Starlette(routes=[Route("/items/{item_id}", item)])
    wsgi_app = Flask("late")
    wsgi_app.add_url_rule("/orders/<int:order_id>", view_func=lambda order_id: "order")

    async def asgi_metrics() -> str:
        transport = httpx.ASGITransport(app=asgi_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://late.test") as client:
            await client.get("/items/1")
            return (await client.get("/metrics")).text

    client = wsgi_app.test_client()
    client.get("/orders/2", buffered=True)  # the body is closed, the request ends
    result = {
        "eager": eager,
        "starlette": 'route="/items/{item_id}"' in asyncio.run(asgi_metrics()),
        "flask": 'route="/orders/{order_id:int}"' in client.get("/metrics").get_data(as_text=True),
        "report": [entry.as_dict() for entry in REPORT.entries()],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1])
