"""Serving the guarded shop in-process: a loopback socket and a quiet uvicorn.

The socket is bound before uvicorn starts so ``--port 0`` can report the port
the kernel chose, and a port in use fails with a clear message instead of a
uvicorn log line. uvicorn's own signal capture is turned off: the demo owns
Ctrl-C, because it must stop the load before the server.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterator

import uvicorn

__all__ = ["DemoError", "QuietServer", "bind", "is_loopback", "url_host"]


class DemoError(Exception):
    """The demo cannot start as asked (bad option, port taken); the CLI exits 2."""


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (port 0: one the kernel picks); uvicorn listens."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise DemoError(f"cannot use host {host!r}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise DemoError(f"cannot listen on {host}:{port}: {exc} (try --port 0)") from None
    return sock


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the demo owns Ctrl-C."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
