"""Child processes the tests start and must never leak.

Every server a test starts (Redis, Prometheus, an app under uvicorn or
gunicorn) runs as a :class:`ManagedProcess`: in its own process group, its
output in log files whose tail goes into every startup error, and stopped by a
signal to the process, then SIGKILL to the whole group. On Linux the child also
gets SIGKILL/SIGTERM should pytest itself die without running finalizers.

``run_server`` is the one-call form for an HTTP app: launch, wait until it
answers on 127.0.0.1, yield, stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from signal import SIGCONT, SIGKILL, SIGTERM, Signals

import httpx

__all__ = [
    "LOOPBACK",
    "ManagedProcess",
    "RunningServer",
    "ServerStartError",
    "child_env",
    "free_port",
    "run_server",
    "wait_until",
]

LOOPBACK = "127.0.0.1"
_PR_SET_PDEATHSIG = 1


class ServerStartError(RuntimeError):
    """A server did not become ready; the message carries its log tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (callers retry on a clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def _death_signal(sig: Signals) -> Callable[[], None] | None:
    """A preexec hook asking Linux to signal the child when pytest dies.

    The kernel ties this to the thread that forked, so it is only safe from
    the main thread (a worker thread ending would take the server with it).
    """
    if not sys.platform.startswith("linux"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def _set() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)

    return _set


class ManagedProcess:
    """One child in its own process group, output in ``<name>.out``/``<name>.err``."""

    def __init__(
        self,
        cmd: Sequence[str],
        *,
        log_dir: Path,
        name: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        death_signal: Signals = SIGKILL,
    ) -> None:
        self.cmd = list(cmd)
        self.stdout_path = log_dir / f"{name}.out"
        self.stderr_path = log_dir / f"{name}.err"
        with self.stdout_path.open("ab") as out, self.stderr_path.open("ab") as err:
            self.proc = subprocess.Popen(
                self.cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=_death_signal(death_signal),  # noqa: PLW1509 - main thread only
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of stdout and stderr, for error messages."""
        parts = []
        for path in (self.stdout_path, self.stderr_path):
            text = path.read_text(errors="replace") if path.exists() else ""
            tail = "\n".join(text.splitlines()[-lines:])
            parts.append(f"--- {path.name} (last {lines} lines) ---\n{tail}")
        return "\n".join(parts)

    def output(self) -> str:
        """Everything the process wrote so far, stdout then stderr."""
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(
            errors="replace"
        )

    def stop(self, sig: Signals = SIGTERM, timeout: float = 10.0) -> int:
        """Send ``sig`` to the process, wait, then SIGKILL the group; the exit code.

        The graceful signal goes to the leader only (as Kubernetes and systemd
        do), so a supervisor such as gunicorn shuts its workers down itself.
        Whatever is left of the group afterwards is killed.
        """
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)
                self.proc.send_signal(SIGCONT)  # a paused (SIGSTOP) child must see it too
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_group()
                self.proc.wait()
        self._kill_group()
        return self.proc.returncode

    def kill(self) -> int:
        """SIGKILL the group at once (a crash, from the clients' point of view)."""
        self._kill_group()
        return self.proc.wait()

    def _kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, SIGKILL)


class RunningServer:
    """What ``run_server`` yields: the process and where it listens."""

    def __init__(self, process: ManagedProcess, port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://{LOOPBACK}:{port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        return self.process.proc

    def log_tail(self, lines: int = 30) -> str:
        return self.process.log_tail(lines)

    def output(self) -> str:
        return self.process.output()

    def stop(self, signal: Signals = SIGTERM, timeout: float = 10.0) -> int:
        return self.process.stop(signal, timeout)


def child_env(overrides: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """``os.environ`` plus ``overrides`` (None removes), with this venv first on PATH."""
    env = dict(os.environ)
    for key, value in (overrides or {}).items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", os.defpath)])
    return env


def wait_until(
    ready: Callable[[], bool],
    process: ManagedProcess,
    *,
    what: str,
    timeout: float,
    interval: float = 0.02,
) -> None:
    """Poll ``ready`` until true; fail with the log tail on exit or timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if ready():
            return
        if process.exited():
            code = process.proc.returncode
            raise ServerStartError(f"{what} exited with {code}\n{process.log_tail()}")
        if time.monotonic() > deadline:
            raise ServerStartError(f"{what} not ready after {timeout}s\n{process.log_tail()}")
        time.sleep(interval)


def _http_ready(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(url).status_code < 500
    except httpx.TransportError:
        return False


@contextlib.contextmanager
def run_server(
    cmd: Sequence[str],
    *,
    port: int,
    env: Mapping[str, str | None] | None = None,
    ready_path: str = "/",
    timeout: float = 20.0,
    cwd: Path | None = None,
    log_dir: Path | None = None,
) -> Iterator[RunningServer]:
    """Run an HTTP server command until the block ends.

    ``cmd`` must listen on 127.0.0.1:``port`` (e.g. ``["uvicorn", "app:app",
    "--port", str(port)]``; ``uvicorn`` resolves to this venv). Ready means
    ``GET ready_path`` answered below 500. ``env`` is merged over
    ``os.environ``; a None value removes a variable. Output goes to files in
    ``log_dir`` (a temporary directory by default) and its tail into the
    error if the server never gets ready.
    """
    with contextlib.ExitStack() as stack:
        if log_dir is None:
            log_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="server-")))
        name = Path(cmd[0]).name
        process = ManagedProcess(
            cmd,
            log_dir=log_dir,
            name=name,
            env=child_env(env),
            cwd=cwd,
            death_signal=SIGTERM,
        )
        stack.callback(process.stop)
        client = stack.enter_context(httpx.Client(timeout=1.0, trust_env=False))
        ready_url = f"http://{LOOPBACK}:{port}{ready_path}"
        wait_until(
            lambda: _http_ready(client, ready_url),
            process,
            what=f"{' '.join(cmd)} ({ready_url})",
            timeout=timeout,
        )
        yield RunningServer(process, port)
