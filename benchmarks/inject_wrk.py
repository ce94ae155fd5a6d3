"""Zero-code instrumentation under load: bare, ``sloguard run`` and ``opentelemetry-instrument``.

One tiny Starlette app (this module's ``app``, which has no instrumentation in
its code) under a single-worker uvicorn on 127.0.0.1, driven by ``wrk -t2
-c32 -d5s`` against ``GET /items/42``, three ways:

* ``bare``: ``python -m uvicorn benchmarks.inject_wrk:app``;
* ``sloguard-run``: ``python -m sloguard.cli.run -- python -m uvicorn …``;
* ``otel-instrument``: ``opentelemetry-instrument python -m uvicorn …``
  (opentelemetry-distro with the starlette/fastapi/httpx instrumentations);
* ``guard-in-code`` (attribution, not a peer): the same app with ``guard(app)``
  in its code and the same settings, so the table separates what the
  bootstrap and the hooks add from what the guard itself costs.

Equal work, both instrumented variants:
* traces: every request sampled (sloguard ratio 1.0, OpenTelemetry's default
  parent-based always-on), spans created and ended, **exported nowhere**
  (``SLOGUARD_TRACING__EXPORTER=none``, ``OTEL_TRACES_EXPORTER=none``): no
  batch processor on either side, so the figure is the cost on the request
  path, not the exporter's encoding (which would be the same SDK code for
  both). ``opentelemetry-instrument`` makes its default three spans per
  request (server + ``http send``/``http receive``; it has no setting to
  turn those off); sloguard makes one.
* metrics: both aggregate per-request metrics in memory and export nothing
  during the run (sloguard's Prometheus registry is pulled, and nobody
  scrapes it; OpenTelemetry's console metric exporter every 10 minutes).
* logs: no per-request line on either side (sloguard's access log off;
  OpenTelemetry writes none).

The variants alternate (rotated each run), a fresh server per run, the median
requests/s per variant is reported with each instrumented variant's loss
against bare; the goal is sloguard's loss at most 1/3 of
opentelemetry-instrument's.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["NAME", "VARIANTS", "app", "run", "tables"]

NAME = "inject_wrk"
ROOT = Path(__file__).resolve().parent.parent
TARGET = "benchmarks.inject_wrk:app"
PATH = "/items/42"
RUNS = 3
DURATION_S = 5
WARMUP_S = 2
LOSS_RATIO_GOAL = 1 / 3
STARTUP_TIMEOUT_S = 30.0
_BIN = Path(sys.executable).parent
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


async def item(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"item {request.path_params['item_id']}")


app = Starlette(routes=[Route("/items/{item_id}", item)])


def __getattr__(name: str) -> Any:
    # ``guarded_app`` for the attribution variant: the same app, guard() in its code.
    if name == "guarded_app":
        from sloguard import guard

        return guard(app)
    raise AttributeError(name)


_UVICORN = [sys.executable, "-m", "uvicorn", "--host=127.0.0.1", "--no-access-log"]
_SLOGUARD_ENV = {
    "SLOGUARD_SERVICE__NAME": "bench",
    "SLOGUARD_TRACING__EXPORTER": "none",
    "SLOGUARD_LOGGING__ACCESS_LOG": "false",
    "SLOGUARD_SLI__ENABLED": "false",
    "SLOGUARD_INJECT__PROBES__ENABLED": "false",
}
# name: (command prefix, uvicorn target, environment)
VARIANTS: dict[str, tuple[list[str], str, dict[str, str]]] = {
    "bare": ([], TARGET, {}),
    "sloguard-run": ([sys.executable, "-m", "sloguard.cli.run", "--"], TARGET, _SLOGUARD_ENV),
    # Not a peer: tells the bootstrap's and hooks' share from guard()'s own cost.
    "guard-in-code": ([], "benchmarks.inject_wrk:guarded_app", _SLOGUARD_ENV),
    "otel-instrument": (
        [str(_BIN / "opentelemetry-instrument")],
        TARGET,
        {
            "OTEL_SERVICE_NAME": "bench",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "console",
            "OTEL_METRIC_EXPORT_INTERVAL": "600000",
            "OTEL_LOGS_EXPORTER": "none",
        },
    ),
}


def _environment(extra: dict[str, str]) -> dict[str, str]:
    dropped = ("OTEL_", "SLOGUARD_", "PROMETHEUS_MULTIPROC_DIR", "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env["PATH"] = os.pathsep.join([str(_BIN), env.get("PATH", os.defpath)])
    return env | extra


def _status(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@contextlib.contextmanager
def serving(variant: str) -> Iterator[subprocess.Popen[bytes]]:
    from benchmarks.e2e_wrk import free_port

    prefix, target, extra = VARIANTS[variant]
    port = free_port()
    command = [*prefix, *_UVICORN, target, f"--port={port}", "--log-level=warning"]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=_environment(extra), stdout=log, stderr=subprocess.STDOUT
        )
        process.port = port  # type: ignore[attr-defined]
        try:
            _wait_ready(process, port, log)
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen[bytes], port: int, log: Any) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"server exited: {log.read().decode(errors='replace')[-2000:]}")
        with contextlib.suppress(OSError):
            if _status(port, PATH) == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"server did not answer in {STARTUP_TIMEOUT_S}s")


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def _one_run(variant: str, duration_s: int, warmup_s: int) -> dict[str, Any]:
    from benchmarks.e2e_wrk import wrk

    with serving(variant) as server:
        port: int = server.port  # type: ignore[attr-defined]
        wrk(port, warmup_s)
        cpu_before = _cpu_seconds(server.pid)
        result = wrk(port, duration_s)
        cpu_after = _cpu_seconds(server.pid)
        if variant in {"sloguard-run", "guard-in-code"}:
            # Proof the zero-code path is live: the guard answers /metrics.
            result["instrumented"] = _status(port, "/metrics") == 200
    if cpu_before is not None and cpu_after is not None and result["requests"]:
        result["server_cpu_us_per_request"] = (cpu_after - cpu_before) / result["requests"] * 1e6
    return result


def run(*, quick: bool = False, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Alternating runs per variant; median requests/s, losses against bare, their ratio."""
    if shutil.which("wrk") is None:
        return {"name": NAME, "skipped": "wrk not found (Debian: apt-get install wrk)"}
    runs = 1 if quick else RUNS
    duration_s = 2 if quick else DURATION_S
    warmup_s = 1 if quick else WARMUP_S
    names = list(VARIANTS)
    raw: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for index in range(runs):
        offset = index % len(names)
        for name in names[offset:] + names[:offset]:
            progress(f"{NAME}: run {index + 1}/{runs}, {name}, wrk -d{duration_s}s")
            raw[name].append(_one_run(name, duration_s, warmup_s))
    variants = {name: _summary(raw[name]) for name in names}
    bare = variants["bare"]["median_requests_per_s"]
    for entry in variants.values():
        entry["loss_vs_bare"] = 1 - entry["median_requests_per_s"] / bare if bare else None
    ours = variants["sloguard-run"]["loss_vs_bare"]
    peer = variants["otel-instrument"]["loss_vs_bare"]
    ratio = ours / peer if ours is not None and peer else None
    return {
        "name": NAME,
        "method": {
            "wrk": f"wrk -t2 -c32 -d{duration_s}s --latency",
            "path": PATH,
            "runs_per_variant": runs,
            "warmup_s": warmup_s,
            "order": "alternating, rotated each run; a fresh server per run",
            "uvicorn": "single worker, --no-access-log, --log-level warning, 127.0.0.1",
            "commands": {
                name: [*prefix, "python", "-m", "uvicorn", target, "…"]
                for name, (prefix, target, _) in VARIANTS.items()
            },
            "environment": {name: extra for name, (_, _, extra) in VARIANTS.items()},
            "fairness": (
                "traces sampled and made but exported nowhere on both sides "
                "(no batch processor); metrics aggregated in memory, not exported "
                "during the run; no access log. opentelemetry-instrument makes its "
                "default 3 spans per request, sloguard 1."
            ),
            "cpus": os.cpu_count(),
        },
        "variants": variants,
        "goal": {
            "goal": "sloguard run's throughput loss <= 1/3 of opentelemetry-instrument's",
            "ratio": ratio,
            "limit": LOSS_RATIO_GOAL,
            "met": ratio is not None and ratio <= LOSS_RATIO_GOAL,
        },
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rps = [r["requests_per_s"] for r in runs]
    cpu = [r["server_cpu_us_per_request"] for r in runs if "server_cpu_us_per_request" in r]
    return {
        "runs": runs,
        "requests_per_s": rps,
        "median_requests_per_s": statistics.median(rps),
        "median_server_cpu_us_per_request": statistics.median(cpu) if cpu else None,
        "median_p50_ms": statistics.median(r.get("p50_ms", 0.0) for r in runs),
        "median_p99_ms": statistics.median(r.get("p99_ms", 0.0) for r in runs),
        "errors": sum(r["non_2xx"] + r["socket_errors"] for r in runs),
    }


def tables(result: dict[str, Any]) -> list[Table]:
    from rich.table import Table

    table = Table(title="Zero-code instrumentation: uvicorn + wrk")
    if "skipped" in result:
        table.add_column("skipped")
        table.add_row(result["skipped"])
        return [table]
    table.title = (
        f"Zero-code instrumentation: uvicorn + {result['method']['wrk']}, "
        f"median of {result['method']['runs_per_variant']} runs"
    )
    columns = ("variant", "req/s runs", "median req/s", "loss vs bare", "server CPU us/req")
    for column in (*columns, "p99 ms", "errors"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for name, entry in result["variants"].items():
        cpu = entry["median_server_cpu_us_per_request"]
        table.add_row(
            name,
            ", ".join(f"{v:.0f}" for v in entry["requests_per_s"]),
            f"{entry['median_requests_per_s']:.0f}",
            "-" if entry["loss_vs_bare"] is None else f"{entry['loss_vs_bare']:.1%}",
            "-" if cpu is None else f"{cpu:.0f}",
            f"{entry['median_p99_ms']:.2f}",
            str(entry["errors"]),
        )
    goal = result["goal"]
    verdict = "[green]met[/green]" if goal["met"] else "[red]not met[/red]"
    ratio = "-" if goal["ratio"] is None else f"{goal['ratio']:.2f}"
    summary = Table(title="Goal: sloguard's loss / opentelemetry-instrument's loss")
    for column in ("ratio", "limit", "result"):
        summary.add_column(column, justify="right")
    summary.add_row(ratio, f"<= {goal['limit']:.2f}", verdict)
    return [table, summary]
