"""``sloguard run`` under every server mode: spans and metrics arrive from every worker.

Each case starts a real server through ``python -m sloguard.cli.run`` (the
command ``exec``'s, so the server keeps the pid the test started), sends
requests on fresh connections until every worker answered, and checks that
(1) the OTLP receiver got spans from every worker -- the app puts its pid on
the current span -- and (2) ``/metrics`` (prometheus multiprocess mode)
counts every request, written by every worker's pid.
"""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.harness.otlp import OtlpHttpReceiver
from tests.harness.processes import RunningServer, free_port, run_server
from tests.inject.sloguard_run import PYTHON, REPO

pytestmark = pytest.mark.timeout(60)

STARLETTE = "tests.inject.apps.starlette_app:app"
UVICORN = ["uvicorn", STARLETTE, "--host", "127.0.0.1", "--log-level", "warning"]
GUNICORN = ["gunicorn", "--bind", "127.0.0.1:{port}", "--log-level", "warning"]
ASGI_WORKER = ["-k", "uvicorn.workers.UvicornWorker"]
WORKERS_UP_S = 30.0


def command(template: list[str], port: int) -> list[str]:
    return [part.format(port=port) for part in template]


# (command, workers, whether the workers are children of the process we start)
MODES = [
    pytest.param([*UVICORN, "--port", "{port}", "--workers", "2"], 2, True, id="uvicorn-workers"),
    pytest.param([*UVICORN, "--port", "{port}", "--reload"], 1, True, id="uvicorn-reload"),
    pytest.param([*GUNICORN, "-w", "2", *ASGI_WORKER, STARLETTE], 2, True, id="gunicorn-asgi"),
    pytest.param(
        [*GUNICORN, "--preload", "-w", "2", *ASGI_WORKER, STARLETTE],
        2,
        True,
        id="gunicorn-asgi-preload",
    ),
    pytest.param(
        [*GUNICORN, "-w", "2", "tests.inject.apps.flask_app:app"], 2, True, id="gunicorn-flask"
    ),
    pytest.param([PYTHON, "-m", "tests.inject.apps.servepkg"], 1, False, id="python-m"),
    pytest.param([PYTHON, "tests/inject/apps/serve_script.py"], 1, False, id="script"),
]


def hit_every_worker(url: str, workers: int) -> tuple[set[int], int]:
    """GET /whoami on a new connection each time until ``workers`` pids answered.

    Bounded by time, not by count: the first worker answers as soon as it is
    up, and on a loaded machine the others may boot seconds later.
    """
    pids: set[int] = set()
    sent = 0
    deadline = time.monotonic() + WORKERS_UP_S
    with httpx.Client(base_url=url, trust_env=False, headers={"connection": "close"}) as client:
        while len(pids) < workers and time.monotonic() < deadline:
            pids.add(client.get("/whoami").json()["pid"])
            sent += 1
            if sent % 20 == 0:
                time.sleep(0.05)  # let a worker still booting take its turn
    return pids, sent


def counted_requests(body: str, route: str) -> float:
    families = {family.name: family for family in text_string_to_metric_families(body)}
    return sum(
        sample.value
        for sample in families["sloguard_http_requests"].samples
        if sample.name.endswith("_total") and sample.labels["route"] == route
    )


def pids_with_counters(directory: Path) -> set[int]:
    names = (re.fullmatch(r"counter_(\d+)\.db", path.name) for path in directory.iterdir())
    return {int(match.group(1)) for match in names if match}


def start(cmd: list[str], tmp_path: Path, receiver: OtlpHttpReceiver) -> tuple[int, dict[str, str]]:
    port = free_port()
    env = {
        "PORT": str(port),
        "SLOGUARD_TRACING__EXPORTER": "otlp-http",
        "SLOGUARD_TRACING__OTLP_ENDPOINT": receiver.endpoint,
        "SLOGUARD_METRICS__MULTIPROCESS_DIR": str(tmp_path / "prom"),
        "SLOGUARD_LOGGING__ACCESS_LOG": "false",
        "SLOGUARD_SLI__ENABLED": "false",
        "SLOGUARD_INJECT__PROBES__ENABLED": "false",
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export within 0.1 s, not at shutdown only
    }
    return port, env


@pytest.mark.parametrize(("cmd", "workers", "children"), MODES)
def test_spans_and_metrics_arrive_from_every_worker(
    cmd: list[str],
    workers: int,
    children: bool,
    tmp_path: Path,
    otlp_http_receiver: OtlpHttpReceiver,
) -> None:
    port, env = start(cmd, tmp_path, otlp_http_receiver)
    sloguard_run = [PYTHON, "-m", "sloguard.cli.run", "--service-name", "inject-test", "--"]
    full = [*sloguard_run, *command(cmd, port)]
    with run_server(full, port=port, env=env, ready_path="/metrics", cwd=REPO, timeout=40) as srv:
        pids, sent = hit_every_worker(srv.url, workers)
        body = httpx.get(f"{srv.url}/metrics", trust_env=False).text
        spans = otlp_http_receiver.wait_for(
            lambda span: "worker.pid" in span.attributes, count=sent, timeout=10
        )
        assert_stopped(srv)
    assert len(pids) == workers
    assert (srv.pid in pids) is not children
    assert {span.attributes["worker.pid"] for span in spans} == pids
    assert {span.service_name for span in spans} == {"inject-test"}
    assert counted_requests(body, "/whoami") == sent
    assert pids <= pids_with_counters(tmp_path / "prom")


def assert_stopped(server: RunningServer) -> None:
    code = server.stop(signal.SIGTERM, timeout=20)
    assert code in {0, -signal.SIGTERM}, server.log_tail()


def test_explain_file_gets_one_report_per_process(tmp_path: Path) -> None:
    port, report = free_port(), tmp_path / "explain.jsonl"
    sloguard_run = [PYTHON, "-m", "sloguard.cli.run", "--explain-file", str(report), "--"]
    cmd = [*sloguard_run, *command([*UVICORN, "--port", "{port}", "--workers", "2"], port)]
    env = {"SLOGUARD_INJECT__PROBES__ENABLED": "false", "SLOGUARD_LOGGING__ACCESS_LOG": "false"}
    with run_server(cmd, port=port, env=env, ready_path="/whoami", cwd=REPO, timeout=40) as srv:
        hit_every_worker(srv.url, 2)
        assert_stopped(srv)
    reports = [json.loads(line) for line in report.read_text().splitlines()]
    # The supervisor, two workers and multiprocessing's resource tracker.
    assert srv.pid in {entry["pid"] for entry in reports}
    wrapped = [r for r in reports if any("wrapped in Guard" in e["detail"] for e in r["entries"])]
    assert len(wrapped) == 2
