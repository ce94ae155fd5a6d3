"""End to end: requests/s of uvicorn serving the bare, guarded and peer apps, driven by wrk.

Each run starts a fresh single-worker uvicorn (``--no-access-log --log-level
warning``) on a free 127.0.0.1 port, warms it up with a short wrk run, then
measures ``wrk -t2 -c32 -d10s`` against ``GET /items/42``, and stops the
server with SIGTERM (the guard flushes on lifespan shutdown). The variants
alternate (bare, guarded, peer, then rotated) for ``RUNS`` runs each; the
median requests/s per variant is reported, and the goal is guarded >= 75% of
bare.

The box has 2 cores and wrk's 2 threads compete with the server process (and
its span-export and SLI-flush threads) for them, so absolute numbers are low
and load from anything else running moves them; the server's CPU time per
request (from /proc) is reported as well, since it depends less on that
contention than requests/s does.

uvicorn picks its event loop and HTTP parser itself ("auto": uvloop and
httptools when installed, else asyncio and h11); which ones it had is
recorded, as the pure-Python h11 parser makes every server slower and so
shrinks the guard's relative cost.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from benchmarks.apps import FAIRNESS, WORKDIR_ENV, bench_environment

__all__ = ["NAME", "SERVERS", "UvicornServer", "parse_wrk", "run", "tables", "wrk"]

NAME = "e2e_wrk"
ROOT = Path(__file__).resolve().parent.parent
SERVERS = {
    "bare": "benchmarks.apps:bare_app",
    "guarded": "benchmarks.apps:guarded_app",
    "guarded-1pct": "benchmarks.apps:guarded_1pct_app",
    "peer": "benchmarks.apps:peer_app",
}
PATH = "/items/42"
RUNS = 3
DURATION_S = 10
WARMUP_S = 2
THREADS = 2
CONNECTIONS = 32
RATIO_GOAL = 0.75
STARTUP_TIMEOUT_S = 30.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(port: int, path: str, timeout_s: float = 2.0) -> tuple[int, bytes]:
    # http.client, not urllib: no proxy settings can divert a loopback request.
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@dataclass
class UvicornServer:
    """One single-worker uvicorn serving ``target`` on a free loopback port."""

    target: str
    workdir: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    _log: Any = None

    def start(self) -> None:
        self.port = free_port()
        env = {**bench_environment(), WORKDIR_ENV: str(self.workdir)}
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            self.target,
            "--host=127.0.0.1",
            f"--port={self.port}",
            "--no-access-log",
            "--log-level=warning",
        ]
        self._log = (self.workdir / "uvicorn.log").open("w+b")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self._output()
                self.stop()
                raise RuntimeError(f"uvicorn {self.target} exited: {output}")
            with contextlib.suppress(OSError):
                if _get(self.port, PATH)[0] == 200:
                    return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"uvicorn {self.target} did not answer in {STARTUP_TIMEOUT_S}s")

    def cpu_seconds(self) -> float | None:
        """User + system CPU time of the server process so far (Linux /proc)."""
        if self.process is None:
            return None
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        # After the ")" closing the command name, utime and stime are fields 12 and 13.
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        output: bytes = self._log.read()
        return output.decode(errors="replace")[-2000:]


@contextlib.contextmanager
def serving(target: str) -> Iterator[UvicornServer]:
    with tempfile.TemporaryDirectory(prefix="sloguard-bench-e2e-") as tmp:
        server = UvicornServer(target, Path(tmp))
        server.start()
        try:
            yield server
        finally:
            server.stop()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, request count, latency percentiles (ms) and errors from wrk's text."""

    def millis(text: str) -> float:
        number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
        return float(number) * _UNITS[unit]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rps is None:
        raise ValueError(f"no Requests/sec in wrk output:\n{output}")
    total = re.search(r"(\d+) requests in", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    latency = {
        f"p{pct}_ms": millis(value)
        for pct, value in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", output, re.MULTILINE)
    }
    return {
        "requests_per_s": float(rps.group(1)),
        "requests": int(total.group(1)) if total else None,
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": sum(int(n) for n in errors.groups()) if errors else 0,
        **latency,
    }


def wrk(port: int, duration_s: int) -> dict[str, Any]:
    command = [
        "wrk",
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{duration_s}s",
        "--latency",
        f"http://127.0.0.1:{port}{PATH}",
    ]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 20, check=True
    )
    return parse_wrk(done.stdout)


def _sloguard_counted(port: int) -> float | None:
    """Requests the guarded server counted in sloguard_http_requests_total."""
    with contextlib.suppress(OSError):
        status, body = _get(port, "/metrics")
        if status == 200:
            return sum(
                float(line.rsplit(" ", 1)[1])
                for line in body.decode().splitlines()
                if line.startswith("sloguard_http_requests_total{")
            )
    return None


def _one_run(name: str, duration_s: int, warmup_s: int) -> dict[str, Any]:
    with serving(SERVERS[name]) as server:
        wrk(server.port, warmup_s)
        counted_before = _sloguard_counted(server.port) if name == "guarded" else None
        cpu_before = server.cpu_seconds()
        result = wrk(server.port, duration_s)
        cpu_after = server.cpu_seconds()
        if name == "guarded":
            counted_after = _sloguard_counted(server.port)
            if counted_before is not None and counted_after is not None:
                # /metrics is answered by the guard itself and not counted.
                result["sloguard_counted"] = counted_after - counted_before
    if cpu_before is not None and cpu_after is not None and result["requests"]:
        result["server_cpu_us_per_request"] = (cpu_after - cpu_before) / result["requests"] * 1e6
    return result


def _implementation() -> dict[str, str]:
    has = importlib.util.find_spec
    return {
        "loop": "uvloop" if has("uvloop") else "asyncio",
        "http": "httptools" if has("httptools") else "h11",
    }


def run(*, quick: bool = False, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """``RUNS`` alternating runs per server; the median requests/s and the ratios to bare."""
    if shutil.which("wrk") is None:
        return {"name": NAME, "skipped": "wrk not found (Debian: apt-get install wrk)"}
    runs = 1 if quick else RUNS
    duration_s = 2 if quick else DURATION_S
    warmup_s = 1 if quick else WARMUP_S
    names = list(SERVERS)
    raw: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for index in range(runs):
        offset = index % len(names)
        for name in names[offset:] + names[:offset]:
            progress(f"e2e_wrk: run {index + 1}/{runs}, {name}, wrk -d{duration_s}s")
            raw[name].append(_one_run(name, duration_s, warmup_s))
    servers: dict[str, dict[str, Any]] = {}
    for name in names:
        rps = [r["requests_per_s"] for r in raw[name]]
        cpu = [
            r["server_cpu_us_per_request"] for r in raw[name] if "server_cpu_us_per_request" in r
        ]
        servers[name] = {
            "target": SERVERS[name],
            "runs": raw[name],
            "requests_per_s": rps,
            "median_requests_per_s": statistics.median(rps),
            "median_server_cpu_us_per_request": statistics.median(cpu) if cpu else None,
            "median_p50_ms": statistics.median(r.get("p50_ms", 0.0) for r in raw[name]),
            "median_p99_ms": statistics.median(r.get("p99_ms", 0.0) for r in raw[name]),
            "errors": sum(r["non_2xx"] + r["socket_errors"] for r in raw[name]),
        }
    bare = servers["bare"]["median_requests_per_s"]
    for entry in servers.values():
        entry["ratio_to_bare"] = entry["median_requests_per_s"] / bare if bare else None
    guarded_ratio = servers["guarded"]["ratio_to_bare"]
    return {
        "name": NAME,
        "fairness": FAIRNESS,
        "method": {
            "wrk": f"wrk -t{THREADS} -c{CONNECTIONS} -d{duration_s}s --latency",
            "path": PATH,
            "runs_per_server": runs,
            "warmup_s": warmup_s,
            "order": "alternating, rotated each run; a fresh server per run",
            "uvicorn": "single worker, --no-access-log, --log-level warning, 127.0.0.1",
            "uvicorn_implementation": _implementation(),
            "cpu_note": (
                f"{os.cpu_count()} CPUs shared by wrk ({THREADS} threads) and the server "
                "(event loop + span export + SLI flush threads)"
            ),
        },
        "servers": servers,
        "goal": {
            "goal": f"guarded requests/s >= {RATIO_GOAL:.0%} of bare",
            "ratio": guarded_ratio,
            "limit": RATIO_GOAL,
            "met": guarded_ratio is not None and guarded_ratio >= RATIO_GOAL,
        },
    }


def tables(result: dict[str, Any]) -> list[Table]:
    if "skipped" in result:
        table = Table(title="End to end (uvicorn + wrk)")
        table.add_column("skipped")
        table.add_row(result["skipped"])
        return [table]
    method = result["method"]
    impl = method["uvicorn_implementation"]
    table = Table(
        title=(
            f"End to end: uvicorn ({impl['loop']}, {impl['http']}) + {method['wrk']}, "
            f"median of {method['runs_per_server']} runs"
        )
    )
    columns = ("server", "req/s runs", "median req/s", "ratio to bare", "server CPU us/req")
    for column in (*columns, "p50 ms", "p99 ms", "errors", "goal", "result"):
        table.add_column(column, justify="left" if column == "server" else "right")
    goal = result["goal"]
    for name, entry in result["servers"].items():
        cpu = entry["median_server_cpu_us_per_request"]
        is_goal = name == "guarded"
        table.add_row(
            name,
            ", ".join(f"{v:.0f}" for v in entry["requests_per_s"]),
            f"{entry['median_requests_per_s']:.0f}",
            f"{entry['ratio_to_bare']:.2f}",
            "-" if cpu is None else f"{cpu:.0f}",
            f"{entry['median_p50_ms']:.2f}",
            f"{entry['median_p99_ms']:.2f}",
            str(entry["errors"]),
            f">= {goal['limit']:.2f}" if is_goal else "",
            ("[green]met[/green]" if goal["met"] else "[red]not met[/red]") if is_goal else "",
        )
    return [table]
