"""``sloguard probe add/list/remove`` against this test process's own control socket."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sloguard.cli.probe import app
from sloguard.inject._control import ControlServer
from sloguard.inject._probes import ProbeManager
from tests.inject.probeapp import targets

T = "tests.inject.probeapp.targets"
runner = CliRunner()


@pytest.fixture
def server() -> Iterator[ControlServer]:
    directory = Path(tempfile.mkdtemp(prefix="sgcli-")) / "s"
    server = ControlServer(ProbeManager(), directory)
    yield server
    server.manager.close()
    server.close()
    shutil.rmtree(directory.parent, ignore_errors=True)


def _run(server: ControlServer, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app, [*args, "--pid", str(os.getpid()), "--socket-dir", str(server.path.parent)]
    )
    return result.exit_code, result.output


def test_add_list_remove_round_trip(server: ControlServer) -> None:
    code, out = _run(server, "add", f"{T}:add", "--kind", "metric", "--budget-ns", "7000")
    assert (code, out.split()[:4]) == (0, ["attached", "p1:", "metric", "probe"])
    targets.add(1)
    code, out = _run(server, "list", "--json")
    assert [(p["id"], p["calls"], p["budget_ns"]) for p in json.loads(out)] == [("p1", 1, 7000)]
    code, out = _run(server, "remove", "p1")
    assert (code, out.split()[:2]) == (0, ["removed", "p1:"])


def test_list_shows_a_table(server: ControlServer) -> None:
    _run(server, "add", f"{T}:Repo.get", "--kind", "span")
    code, out = _run(server, "list")
    assert code == 0
    assert "p1" in out
    assert "active" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("add", f"{T}:nothere"), "'nothere' not found", id="unknown-function"),
        pytest.param(("add", "json.nothere:x"), "not imported", id="unimported-module"),
        pytest.param(("add", "no-colon"), "module:qualname", id="malformed"),
        pytest.param(("remove", "p42"), "no probe", id="unknown-probe"),
    ],
)
def test_input_errors_exit_2_with_the_reason(
    server: ControlServer, args: tuple[str, ...], message: str
) -> None:
    code, out = _run(server, *args)
    assert code == 2
    assert message in " ".join(out.split())


def test_a_bad_kind_is_a_usage_error(server: ControlServer) -> None:
    code, out = _run(server, "add", f"{T}:add", "--kind", "trace")
    assert code == 2
    assert "--kind must be one of span, metric, log" in " ".join(out.split())


def test_a_process_without_a_socket_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["list", "--pid", str(os.getppid()), "--socket-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "no probe control socket" in " ".join(result.output.split())
