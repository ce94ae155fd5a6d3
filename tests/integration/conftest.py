"""Helpers for tests that run real servers in subprocesses."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.harness.processes import RunningServer, free_port, run_server

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def uvicorn_app(
    module: str, env: Mapping[str, str], *, workers: int = 1, ready_path: str = "/metrics"
) -> Iterator[RunningServer]:
    port = free_port()
    cmd = [
        "uvicorn",
        f"tests.integration.{module}:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--app-dir",
        str(REPO),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    with run_server(
        cmd, port=port, env=dict(env), ready_path=ready_path, cwd=REPO, timeout=30
    ) as server:
        yield server
