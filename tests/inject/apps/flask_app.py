"""A Flask app with no sloguard in its code, for gunicorn's sync workers."""

import os

from flask import Flask
from opentelemetry import trace

app = Flask(__name__)


@app.get("/whoami")
def whoami() -> dict[str, int]:
    trace.get_current_span().set_attribute("worker.pid", os.getpid())
    return {"pid": os.getpid()}
