"""The zero-code wrk benchmark starts the servers it claims, each instrumented as it says.

wrk is not run and speed is not asserted (``make bench`` measures it);
behaviour is: each variant is uvicorn on loopback under its documented
launcher and environment, the bare server has no guard, ``sloguard run``
counts every request, ``opentelemetry-instrument`` really instruments
the app (three spans per request, as the table's fairness note says), and
``run`` turns wrk results into medians, losses against bare and the goal.
"""

from __future__ import annotations

import http.client
import importlib.metadata
import importlib.util
import io
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from benchmarks import inject_wrk

SERVER_SPAN = "GET /items/{item_id}"
# variant: (launcher prefix, uvicorn target)
LAUNCHERS = {
    "bare": ([], "benchmarks.inject_wrk:app"),
    "sloguard-run": ([sys.executable, "-m", "sloguard.cli.run", "--"], "benchmarks.inject_wrk:app"),
    "guard-in-code": ([], "benchmarks.inject_wrk:guarded_app"),
    "otel-instrument": (
        [str(inject_wrk._BIN / "opentelemetry-instrument")],
        "benchmarks.inject_wrk:app",
    ),
}
# requests/s each variant's fake wrk run reports: losses 10 %, 8 % and 40 %
FAKE_RATES = {
    "bare": 1000.0,
    "sloguard-run": 900.0,
    "guard-in-code": 920.0,
    "otel-instrument": 600.0,
}


def _get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5.0)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def _eventually(read: Callable[[], str], done: Callable[[str], bool]) -> str:
    """What another process wrote, once it is complete (never a timer of ours)."""
    deadline = time.monotonic() + 10.0
    while not done(text := read()):
        assert time.monotonic() < deadline, f"not seen in 10 s: {text[-2000:]}"
        time.sleep(0.02)
    return text


def _fake_run(name: str, duration_s: int, warmup_s: int) -> dict[str, Any]:
    rate = FAKE_RATES[name]
    return {
        "requests_per_s": rate,
        "requests": int(rate * duration_s),
        "p50_ms": 1.0,
        "p99_ms": 4.0,
        "non_2xx": 0,
        "socket_errors": 1,
        "server_cpu_us_per_request": 1e6 / rate,
    }


@pytest.fixture
def faked(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    ran: list[str] = []

    def one_run(name: str, duration_s: int, warmup_s: int) -> dict[str, Any]:
        ran.append(name)
        return _fake_run(name, duration_s, warmup_s)

    monkeypatch.setattr(shutil, "which", lambda _: "/usr/bin/wrk")
    monkeypatch.setattr(inject_wrk, "_one_run", one_run)
    return {"ran": ran, "result": inject_wrk.run(quick=False, progress=lambda _: None)}


@pytest.mark.parametrize("name", list(LAUNCHERS))
def test_each_variant_is_uvicorn_on_loopback_under_its_documented_launcher(name: str) -> None:
    prefix, target, _env = inject_wrk.VARIANTS[name]
    assert (prefix, target) == LAUNCHERS[name]
    assert inject_wrk._UVICORN[1:] == ["-m", "uvicorn", "--host=127.0.0.1", "--no-access-log"]


def test_the_instrumented_variants_export_nothing_and_log_no_request_lines() -> None:
    ours, guarded, peer = (inject_wrk.VARIANTS[n][2] for n in LAUNCHERS if n != "bare")
    assert ours is guarded
    assert ours["SLOGUARD_TRACING__EXPORTER"] == "none"
    assert ours["SLOGUARD_LOGGING__ACCESS_LOG"] == "false"
    assert (peer["OTEL_TRACES_EXPORTER"], peer["OTEL_LOGS_EXPORTER"]) == ("none", "none")
    assert int(peer["OTEL_METRIC_EXPORT_INTERVAL"]) >= 60_000 * 5
    assert inject_wrk.VARIANTS["bare"][2] == {}


def test_both_launchers_and_the_peers_instrumentations_are_installed() -> None:
    assert os.access(LAUNCHERS["otel-instrument"][0][0], os.X_OK)
    assert importlib.util.find_spec("sloguard.cli.run") is not None
    for package in ("opentelemetry-distro", "opentelemetry-instrumentation-starlette"):
        assert importlib.metadata.version(package)


def test_the_child_environment_drops_inherited_settings_and_puts_the_venv_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OTEL_SERVICE_NAME", "SLOGUARD_SERVICE__NAME", "PYTHONPATH"):
        monkeypatch.setenv(name, "inherited")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/tmp/elsewhere")
    env = inject_wrk._environment({"SLOGUARD_SERVICE__NAME": "bench"})
    assert env["SLOGUARD_SERVICE__NAME"] == "bench"
    dropped = ("OTEL_SERVICE_NAME", "PYTHONPATH", "PROMETHEUS_MULTIPROC_DIR")
    assert not set(dropped) & set(env)
    assert env["PATH"].split(os.pathsep)[0] == str(inject_wrk._BIN)


def test_the_bare_server_answers_and_carries_no_guard() -> None:
    with inject_wrk.serving("bare") as server:
        port: int = server.port  # type: ignore[attr-defined]
        assert _get(port, inject_wrk.PATH) == (200, "item 42")
        assert _get(port, "/metrics")[0] == 404


def test_sloguard_run_counts_every_request() -> None:
    with inject_wrk.serving("sloguard-run") as server:
        port: int = server.port  # type: ignore[attr-defined]
        assert _get(port, inject_wrk.PATH) == (200, "item 42")
        status, metrics = _get(port, "/metrics")
    assert status == 200
    total = re.search(
        r'^sloguard_http_requests_total\{[^}]*route="/items/\{item_id\}"[^}]*\} (\S+)$',
        metrics,
        re.MULTILINE,
    )
    assert total is not None
    assert float(total.group(1)) == 2.0  # the readiness probe + ours


def test_opentelemetry_instrument_makes_three_spans_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix, target, env = inject_wrk.VARIANTS["otel-instrument"]
    shown = {**env, "OTEL_TRACES_EXPORTER": "console", "OTEL_BSP_SCHEDULE_DELAY": "1"}
    monkeypatch.setitem(inject_wrk.VARIANTS, "otel-instrument", (prefix, target, shown))
    with inject_wrk.serving("otel-instrument") as server:
        assert _get(server.port, inject_wrk.PATH)[0] == 200  # type: ignore[attr-defined]
        output = _eventually(
            Path(f"/proc/{server.pid}/fd/1").read_text,  # the server's stdout, a deleted file
            lambda text: text.count(f'"name": "{SERVER_SPAN}"') >= 2,
        )
    names = re.findall(r'"name": "([^"]+)"', output)
    assert sorted(set(names)) == [SERVER_SPAN, f"{SERVER_SPAN} http send"]
    assert names.count(SERVER_SPAN) == 2  # the readiness probe + ours
    assert len(names) == 3 * 2


def test_run_rotates_the_variants_and_reports_losses_against_bare(faked: dict[str, Any]) -> None:
    names = list(LAUNCHERS)
    assert faked["ran"] == names + names[1:] + names[:1] + names[2:] + names[:2]
    variants = faked["result"]["variants"]
    losses = {name: round(v["loss_vs_bare"], 3) for name, v in variants.items()}
    assert losses == {
        "bare": 0.0,
        "sloguard-run": 0.1,
        "guard-in-code": 0.08,
        "otel-instrument": 0.4,
    }
    assert variants["bare"]["errors"] == inject_wrk.RUNS
    goal = faked["result"]["goal"]
    assert (round(goal["ratio"], 3), goal["met"]) == (0.25, True)


def test_tables_print_every_variant_and_the_goal(faked: dict[str, Any]) -> None:
    out = io.StringIO()
    for table in inject_wrk.tables(faked["result"]):
        Console(file=out, width=250).print(table)
    text = out.getvalue()
    assert all(name in text for name in LAUNCHERS)
    assert ("40.0%" in text, "0.25" in text, "not met" in text) == (True, True, False)


def test_run_without_wrk_is_skipped_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda _: None)
    result = inject_wrk.run(quick=True, progress=lambda _: None)
    assert "apt-get install wrk" in result["skipped"]
    out = io.StringIO()
    Console(file=out, width=250).print(*inject_wrk.tables(result))
    assert "apt-get install wrk" in out.getvalue()
