"""Probes attached to and detached from a live uvicorn process under load: no failed request."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from sloguard.cli.probe import app as probe_app
from tests.harness.processes import free_port, run_server

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sgp-"))  # short: AF_UNIX paths stop at 108 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Load:
    """A client loop hammering the service until stopped; counts answers and failures."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=5.0, trust_env=False) as client:
            n = 0
            while not self._stop.is_set():
                n += 1
                try:
                    response = client.get(f"{self.url}/items/k{n % 50}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                    continue
                if response.status_code == 200:
                    self.ok += 1
                else:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def _cli(*args: str) -> str:
    result = runner.invoke(probe_app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _metric(url: str, name: str) -> float:
    text = httpx.get(f"{url}/metrics", trust_env=False).text
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name)]
    return sum(values)


def test_probes_attach_and_detach_on_a_live_server_under_load_with_no_failed_request(
    socket_dir: Path,
) -> None:
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "tests.inject.probeapp.app:app"]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    env = {"SLOGUARD_INJECT__PROBES__SOCKET_DIR": str(socket_dir)}
    with run_server(cmd, port=port, env=env, cwd=ROOT, ready_path="/metrics") as server:
        pid, dir_opt = str(server.pid), ["--socket-dir", str(socket_dir)]
        with Load(server.url) as load:
            target, loader = "tests.inject.probeapp.app:Repo.get", "tests.inject.probeapp.app:load"
            _cli("add", target, "--pid", pid, "--kind", "metric", *dir_opt)
            _cli(
                "add",
                target,
                "--pid",
                pid,
                "--kind",
                "log",
                "--capture-args",
                "--mechanism",
                "codepatch",
                *dir_opt,
            )
            _cli("add", loader, "--pid", pid, "--kind", "span", "--capture-args", *dir_opt)
            served = load.ok
            while _metric(server.url, 'sloguard_probe_calls_total{outcome="ok"') < 20:
                assert load.ok < served + 20_000, "metric probe never counted"
            listed = runner.invoke(probe_app, ["list", "--pid", pid, "--json", *dir_opt])
            _cli("remove", target, "--pid", pid, *dir_opt)
            _cli("remove", loader, "--pid", pid, *dir_opt)
            after = load.ok
            while load.ok < after + 50 and not load.failures:
                pass
        codes = httpx.get(f"{server.url}/codes", trust_env=False).json()
        log = server.output()
    assert load.failures == []
    assert [probe["calls"] > 0 for probe in json.loads(listed.output)] == [True] * 3
    assert codes == {"Repo.get": True, "load": True}
    assert '"password":"[REDACTED]"' in log
    assert "hunter2" not in log
