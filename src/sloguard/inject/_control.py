"""The probe control channel: a Unix socket that only the process's owner can use.

``sloguard probe add/list/remove --pid P`` talks to process P through
``<socket_dir>/probe-<P>.sock``. The directory (``inject.probes.socket_dir``,
else ``$XDG_RUNTIME_DIR/sloguard``, else ``/tmp/sloguard-<uid>``) is created
0700 and refused if it is anyone else's or open to group/others; the socket is
0600; and on Linux each connection's peer uid (``SO_PEERCRED``) must be the
process's own uid. Whoever can attach a probe can read function arguments, so
it is the same trust as ``ptrace``: the same user.

Wire format: one JSON object per line each way. Requests carry ``op``:
``ping``, ``add`` (a probe spec's fields), ``list``, ``remove`` (``key``: a
probe id or a target). Answers are ``{"ok": true, ...}`` or ``{"ok": false,
"error": {"code": "bad_request" | "not_found" | "failed", "message": ...}}``.

The server is a daemon thread; a forked child (gunicorn workers) closes the
inherited listener and starts its own socket under its own pid; the socket is
removed at exit. A process not started under sloguard has no socket:
:class:`ProbeClient` then starts one inside it with ``sys.remote_exec`` (PEP
768), which exists from Python 3.14 on; older Pythons get an error saying so.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import json
import os
import socket
import socketserver
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Protocol

from sloguard.inject._probes import (
    BadTargetError,
    ProbeError,
    ProbeManager,
    ProbeNotFound,
    ProbeSpec,
    default_manager,
)
from sloguard.settings import Settings
from sloguard.settings._inject_probes import ProbeSettings

__all__ = [
    "ControlServer",
    "ProbeClient",
    "ProbeConnectError",
    "ProbeControlError",
    "ProbeRequestError",
    "handle_request",
    "socket_path",
    "start_control_server",
]

MAX_LINE = 65_536
_SRC = str(Path(__file__).resolve().parents[2])


class ProbeControlError(Exception):
    """The control channel could not be used."""


class ProbeConnectError(ProbeControlError):
    """No control socket for that process, or it cannot be reached."""


class ProbeRequestError(ProbeControlError):
    """The process answered with an error; ``code`` says which kind."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class _Reporter(Protocol):
    def instrumented(self, target: str, how: str) -> None: ...

    def skipped(self, target: str, why: str) -> None: ...

    def failed(self, target: str, error: str) -> None: ...


def socket_dir(configured: Path | None = None) -> Path:
    if configured is not None:
        return configured
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "sloguard"
    return Path(tempfile.gettempdir()) / f"sloguard-{os.getuid()}"


def socket_path(pid: int, configured: Path | None = None) -> Path:
    return socket_dir(configured) / f"probe-{pid}.sock"


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` 0700, or check an existing one is ours and private."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not path.is_dir() or path.is_symlink():
        raise ProbeControlError(
            f"{path} is not a directory; refusing to put the probe socket there"
        )
    if info.st_uid != os.getuid():
        raise ProbeControlError(f"{path} belongs to uid {info.st_uid}, not {os.getuid()}; refusing")
    if info.st_mode & 0o077:
        raise ProbeControlError(
            f"{path} is open to group/others (mode {info.st_mode & 0o777:o}); refusing (chmod 700)"
        )
    return path


def peer_uid(sock: socket.socket) -> int | None:
    """The connecting process's uid (Linux ``SO_PEERCRED``), or None where unknown."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


def handle_request(manager: ProbeManager, line: bytes) -> dict[str, Any]:
    """One request line in, one answer out (sans-I/O: the server only moves bytes)."""
    try:
        request = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return _error("bad_request", f"request is not JSON: {exc}")
    if not isinstance(request, dict):
        return _error("bad_request", "request must be a JSON object with an 'op' field")
    op = request.pop("op", None)
    try:
        if op == "ping":
            return {"ok": True, "pid": os.getpid(), "python": sys.version.split()[0]}
        if op == "list":
            return {"ok": True, "probes": [info.as_dict() for info in manager.list()]}
        if op == "add":
            return {"ok": True, "probe": manager.add(ProbeSpec.from_dict(request)).as_dict()}
        if op == "remove":
            key = request.get("key")
            if not isinstance(key, str):
                return _error("bad_request", "field 'key' must be a probe id or a target")
            return {"ok": True, "removed": [info.as_dict() for info in manager.remove(key)]}
    except ProbeNotFound as exc:
        return _error("not_found", str(exc))
    except BadTargetError as exc:
        return _error("not_found" if "not found" in str(exc) else "bad_request", str(exc))
    except ProbeError as exc:
        return _error("bad_request", str(exc))
    except Exception as exc:  # the service must outlive a bad probe
        return _error("failed", f"{type(exc).__name__}: {exc}")
    return _error("bad_request", f"field 'op' must be ping, add, list or remove, not {op!r}")


class _Handler(socketserver.StreamRequestHandler):
    server: _UnixServer

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(MAX_LINE + 1)
            if not line:
                return
            if len(line) > MAX_LINE:
                answer = _error("bad_request", f"request longer than {MAX_LINE} bytes")
            else:
                answer = handle_request(self.server.manager, line)
            self.wfile.write(json.dumps(answer).encode() + b"\n")
            if len(line) > MAX_LINE:
                return


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path, manager: ProbeManager) -> None:
        self.manager = manager
        self.refused = 0
        self.path = path
        super().__init__(str(path), _Handler)

    def server_bind(self) -> None:
        super().server_bind()
        os.chmod(self.path, 0o600)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        uid = peer_uid(request)
        if uid is None or uid == os.getuid():
            return True
        self.refused += 1
        return False


class ControlServer:
    """The socket server of one process (``pid``), serving on a daemon thread."""

    def __init__(self, manager: ProbeManager, directory: Path | None = None) -> None:
        self.manager = manager
        self.pid = os.getpid()
        self.path = ensure_private_dir(socket_dir(directory)) / f"probe-{self.pid}.sock"
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket of a dead process that had our pid
        self._server = _UnixServer(self.path, manager)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sloguard-probe-control-{self.pid}",
            daemon=True,
        )
        self._thread.start()

    @property
    def refused(self) -> int:
        return self._server.refused

    def close(self) -> None:
        """Stop serving and remove the socket (only the process that made it does)."""
        if os.getpid() != self.pid:
            return
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def abandon(self) -> None:
        """In a forked child: drop the parent's listener without touching its socket file."""
        self._server.socket.close()


_server: ControlServer | None = None
_server_lock = threading.Lock()


def _settings(settings: Settings | ProbeSettings) -> ProbeSettings:
    return settings.inject.probes if isinstance(settings, Settings) else settings


def start_control_server(
    settings: Settings | ProbeSettings, report: _Reporter | None = None
) -> ControlServer | None:
    """Serve this process's probes on its control socket (idempotent); None when disabled."""
    global _server
    probes = _settings(settings)
    with _server_lock:
        if _server is not None and _server.pid == os.getpid():
            return _server
        if not probes.enabled:
            if report:
                report.skipped("probe control server", "inject.probes.enabled is false")
            return None
        try:
            _server = ControlServer(default_manager(probes), probes.socket_dir)
        except (OSError, ProbeControlError) as exc:
            if report:
                report.failed("probe control server", f"control socket: {exc}")
            return None
        if report:
            report.instrumented("probe control server", f"control socket {_server.path}")
        return _server


def _stop_at_exit() -> None:
    if _server is not None:
        with contextlib.suppress(OSError):
            _server.close()


def _restart_in_child() -> None:
    global _server, _server_lock
    _server_lock = threading.Lock()
    parent, _server = _server, None
    if parent is not None:
        parent.abandon()
        start_control_server(parent.manager.settings)


atexit.register(_stop_at_exit)
os.register_at_fork(after_in_child=_restart_in_child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ProbeClient:
    """Talks to process ``pid``'s control socket: ``add``, ``list``, ``remove``, ``ping``."""

    def __init__(self, pid: int, *, directory: Path | None = None, timeout: float = 5.0) -> None:
        self.pid = pid
        self.path = socket_path(pid, directory)
        self.timeout = timeout
        self._directory = directory

    def connect(self) -> None:
        """Make sure the process has a control socket, starting one remotely if possible."""
        if self.path.exists():
            return
        if not _alive(self.pid):
            raise ProbeConnectError(f"no process with pid {self.pid}")
        remote_exec = sys.__dict__.get("remote_exec")
        if remote_exec is None:
            raise ProbeConnectError(
                f"process {self.pid} has no probe control socket at {self.path}. Start it under "
                "`sloguard run` (or with inject.probes enabled) to use live probes; attaching to "
                "a process started without sloguard needs Python 3.14+ (PEP 768 sys.remote_exec) "
                f"on both sides, and this is Python {sys.version.split()[0]}"
            )
        self._remote_start(remote_exec)

    def _remote_start(self, remote_exec: Any) -> None:
        directory = ensure_private_dir(socket_dir(self._directory))
        script = directory / f"bootstrap-{self.pid}.py"
        script.write_text(
            "import sys\n"
            f"sys.path.append({_SRC!r})\n"
            "from sloguard.inject._control import start_control_server\n"
            "from sloguard.settings._inject_probes import ProbeSettings\n"
            f"start_control_server(ProbeSettings(socket_dir={str(directory)!r}))\n"
        )
        try:
            remote_exec(self.pid, str(script))
        except (OSError, RuntimeError) as exc:
            raise ProbeConnectError(f"sys.remote_exec into pid {self.pid} failed: {exc}") from exc
        deadline = time.monotonic() + self.timeout
        while not self.path.exists():  # the target runs the script at its next eval breaker
            if time.monotonic() > deadline:
                raise ProbeConnectError(
                    f"process {self.pid} did not start its control socket within {self.timeout}s "
                    "(it runs the script only while executing Python code)"
                )
            time.sleep(0.05)

    def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.connect()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            try:
                sock.connect(str(self.path))
                sock.sendall(json.dumps(payload).encode() + b"\n")
                with sock.makefile("rb") as reader:
                    line = reader.readline(MAX_LINE * 64)
            except OSError as exc:
                raise ProbeConnectError(f"control socket {self.path}: {exc}") from exc
        if not line:
            raise ProbeConnectError(
                f"process {self.pid} closed the control socket without answering"
            )
        answer: dict[str, Any] = json.loads(line)
        if not answer.get("ok"):
            error = answer.get("error", {})
            raise ProbeRequestError(error.get("code", "failed"), error.get("message", str(answer)))
        return answer

    def ping(self) -> dict[str, Any]:
        return self.request({"op": "ping"})

    def add(self, target: str, kind: str, **options: Any) -> dict[str, Any]:
        fields = {key: value for key, value in options.items() if value is not None}
        probe: dict[str, Any] = self.request(
            {"op": "add", "target": target, "kind": kind, **fields}
        )["probe"]
        return probe

    def list(self) -> list[dict[str, Any]]:
        probes: list[dict[str, Any]] = self.request({"op": "list"})["probes"]
        return probes

    def remove(self, key: str) -> builtins.list[dict[str, Any]]:
        removed: builtins.list[dict[str, Any]] = self.request({"op": "remove", "key": key})[
            "removed"
        ]
        return removed
