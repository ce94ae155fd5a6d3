"""The real-server harness starts, answers, recovers and stops cleanly."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest, start_http_server

from tests.harness import servers
from tests.harness.processes import free_port, run_server
from tests.harness.servers import (
    AlertmanagerServer,
    PrometheusFactory,
    PrometheusQueryError,
    RedisServer,
    ScrapeConfig,
    ServerStartError,
    postable_alert,
    promtool,
)


@pytest.fixture
def metrics_target() -> Iterator[tuple[CollectorRegistry, str]]:
    """A prometheus_client exporter on 127.0.0.1 with its own registry."""
    registry = CollectorRegistry()
    httpd, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield registry, f"127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_redis_answers_ping_on_loopback(redis_server: RedisServer) -> None:
    assert redis_server.host == "127.0.0.1"
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    assert redis_server.command("PING") == "+PONG"


def test_redis_restarts_on_the_same_port_with_no_data_after_a_kill(
    redis_server: RedisServer,
) -> None:
    port = redis_server.port
    assert redis_server.command("SET", "key", "value") == "+OK"
    redis_server.kill()
    assert not redis_server.ping()
    redis_server.restart()
    assert redis_server.port == port
    assert redis_server.command("GET", "key") == "$-1"


def test_ensure_running_brings_a_stopped_redis_back_on_its_port(
    redis_server: RedisServer,
) -> None:
    port = redis_server.port
    redis_server.stop()
    assert not redis_server.ping()
    redis_server.ensure_running()
    assert (redis_server.port, redis_server.command("DBSIZE")) == (port, ":0")


def test_paused_redis_times_clients_out_until_resumed(redis_server: RedisServer) -> None:
    redis_server.pause()
    with pytest.raises(TimeoutError):
        redis_server.command("PING", timeout=0.2)
    redis_server.resume()
    assert redis_server.command("PING") == "+PONG"


@pytest.mark.servers
def test_startup_retries_on_a_new_port_when_the_chosen_one_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        taken = squatter.getsockname()[1]
        ports = iter([taken, free_port()])
        monkeypatch.setattr(servers, "free_port", lambda: next(ports))
        with RedisServer(tmp_path) as redis:
            assert redis.port != taken
            assert redis.ping()


@pytest.mark.servers
def test_startup_failure_names_the_server_and_shows_its_log(tmp_path: Path) -> None:
    server = AlertmanagerServer(tmp_path, extra_args=["--no-such-flag"])
    with pytest.raises(
        ServerStartError, match=r"(?s)alertmanager on 127\.0\.0\.1:\d+ exited.*no-such"
    ):
        server.start()
    server.stop()


def test_queries_at_each_scrape_see_the_counter_value_set_before_it(
    prometheus_factory: PrometheusFactory, metrics_target: tuple[CollectorRegistry, str]
) -> None:
    registry, target = metrics_target
    jobs = Counter("jobs_done", "Jobs done", registry=registry)
    jobs.inc(7)
    prometheus = prometheus_factory([ScrapeConfig("app", [target], interval="500ms")])
    first = prometheus.wait_for_scrape("app")
    jobs.inc(3)
    second = prometheus.wait_for_scrape("app", min_scrapes=2)
    [sample] = prometheus.query('jobs_done_total{job="app"}', time=first)
    assert (sample.value, sample.labels["instance"]) == (7, target)
    [series] = prometheus.query_range("jobs_done_total", start=first, end=second + 1, step=0.1)
    assert (series.values[0][1], series.values[-1][1]) == (7, 10)


def test_prometheus_reload_picks_up_a_new_rule_file(
    prometheus_factory: PrometheusFactory, tmp_path: Path
) -> None:
    prometheus = prometheus_factory(evaluation_interval="200ms")
    rules = tmp_path / "rules.yml"
    rules.write_text("groups:\n- name: g\n  rules:\n  - record: added\n    expr: vector(1)\n")
    prometheus.reload(rule_files=[rules])
    assert [g["name"] for g in prometheus.api("rules")["groups"]] == ["g"]
    assert prometheus.api("status/config")["yaml"].count("rules.yml") == 1


def test_prometheus_evaluates_the_given_rule_files(
    prometheus_factory: PrometheusFactory, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("groups:\n- name: g\n  rules:\n  - record: answer\n    expr: vector(42)\n")
    prometheus = prometheus_factory(rule_files=[rules], evaluation_interval="200ms")
    deadline = time.monotonic() + 10
    while not (samples := prometheus.query("answer")) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [s.value for s in samples] == [42]


def test_prometheus_passes_extra_flags_and_reports_bad_promql(
    prometheus_factory: PrometheusFactory,
) -> None:
    prometheus = prometheus_factory(extra_args=["--web.enable-admin-api"])
    assert prometheus.api("status/flags")["web.enable-admin-api"] == "true"
    with pytest.raises(PrometheusQueryError, match="bad_data"):
        prometheus.query("sum(")


def test_prometheus_stops_and_leaves_no_process(prometheus_factory: PrometheusFactory) -> None:
    prometheus = prometheus_factory()
    assert prometheus.process is not None
    pid = prometheus.process.pid
    assert prometheus.stop() == 0
    assert _pid_gone(pid)


def test_alertmanager_lists_an_alert_posted_to_it(
    alertmanager_server: AlertmanagerServer,
) -> None:
    name = f"HarnessTest{uuid.uuid4().hex[:8]}"
    alert = postable_alert({"alertname": name, "severity": "page"}, annotations={"x": "y"})
    alertmanager_server.post_alerts([alert])
    [listed] = alertmanager_server.alerts(f'alertname="{name}"')
    assert listed["labels"] == {"alertname": name, "severity": "page"}
    assert listed["status"]["state"] == "active"


def _exposition() -> str:
    registry = CollectorRegistry()
    Counter("requests", "Requests served", ["code"], registry=registry).labels("200").inc()
    return generate_latest(registry).decode()


@pytest.mark.servers
@pytest.mark.parametrize(
    ("exposition", "returncode"),
    [
        pytest.param(_exposition(), 0, id="prometheus-client-output"),
        pytest.param('requests_total{code="200" 1\n', 1, id="unclosed-label-set"),
    ],
)
def test_promtool_check_metrics_judges_the_exposition(exposition: str, returncode: int) -> None:
    assert promtool("check", "metrics", input=exposition).returncode == returncode


@pytest.mark.servers
@pytest.mark.parametrize(
    ("expr", "returncode"),
    [
        pytest.param("sum(rate(requests_total[5m]))", 0, id="valid"),
        pytest.param("sum(rate(requests_total[5m])", 1, id="unbalanced"),
    ],
)
def test_promtool_check_rules_judges_the_rule_file(
    tmp_path: Path, expr: str, returncode: int
) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(f"groups:\n- name: g\n  rules:\n  - record: r\n    expr: '{expr}'\n")
    assert promtool("check", "rules", str(rules)).returncode == returncode


_APP = """
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hello"})
"""


def test_run_server_serves_a_uvicorn_app_and_stops_it_gracefully(tmp_path: Path) -> None:
    (tmp_path / "harness_app.py").write_text(_APP)
    port = free_port()
    cmd = ["uvicorn", "harness_app:app", "--host", "127.0.0.1", "--port", str(port)]
    with run_server(cmd, port=port, cwd=tmp_path) as server:
        assert httpx.get(server.url, trust_env=False).text == "hello"
        assert server.stop() == -signal.SIGTERM  # uvicorn re-raises SIGTERM after shutdown
        assert "Finished server process" in server.output()
    assert _pid_gone(server.pid)


def test_run_server_shows_the_log_tail_when_the_command_dies() -> None:
    cmd = [sys.executable, "-c", "import sys; print('cannot bind, giving up'); sys.exit(3)"]
    with (
        pytest.raises(ServerStartError, match=r"(?s)exited with 3.*cannot bind, giving up"),
        run_server(cmd, port=free_port(), timeout=5),
    ):
        pass


_STUBBORN = """
import http.server, signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
handler = http.server.SimpleHTTPRequestHandler
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), handler).serve_forever()
"""


def test_run_server_kills_the_group_when_graceful_stop_times_out() -> None:
    port = free_port()
    with run_server([sys.executable, "-c", _STUBBORN, str(port)], port=port) as server:
        assert server.stop(timeout=0.3) == -9
    assert _pid_gone(server.pid)
