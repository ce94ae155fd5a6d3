"""A Flask application with no sloguard in its code."""

from __future__ import annotations

import logging

from flask import Flask

from sloguard.context import current_request

log = logging.getLogger("hookapps.flask")


def flask_app() -> Flask:
    app = Flask("hooked")

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> str:
        ctx = current_request()
        log.info("serving item %s", item_id)
        return f"item {item_id} {ctx.request_id if ctx else '-'}"

    return app
