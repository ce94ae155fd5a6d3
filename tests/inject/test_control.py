"""The probe control socket: private, strict about its input, owner-only, one per process."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from sloguard.inject import _control
from sloguard.inject._control import (
    ControlServer,
    ProbeClient,
    ProbeConnectError,
    ProbeControlError,
    ProbeRequestError,
    ensure_private_dir,
    handle_request,
    peer_uid,
    start_control_server,
)
from sloguard.inject._explain import Report
from sloguard.inject._probes import ProbeManager
from sloguard.settings._inject_probes import ProbeSettings
from tests.inject.probeapp import targets

ROOT = Path(__file__).resolve().parents[2]
T = "tests.inject.probeapp.targets"


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="sgc-")) / "s"  # short: AF_UNIX paths stop at 108 bytes
    yield path
    shutil.rmtree(path.parent, ignore_errors=True)


@pytest.fixture
def server(socket_dir: Path) -> Iterator[ControlServer]:
    server = ControlServer(ProbeManager(), socket_dir)
    yield server
    server.manager.close()
    server.close()


def test_socket_is_0600_in_a_0700_directory(server: ControlServer) -> None:
    assert stat.S_IMODE(server.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.path.parent.stat().st_mode) == 0o700
    assert server.path.name == f"probe-{os.getpid()}.sock"


def test_a_directory_open_to_others_is_refused(socket_dir: Path) -> None:
    socket_dir.mkdir(mode=0o755)
    socket_dir.chmod(0o755)
    with pytest.raises(ProbeControlError, match="open to group/others"):
        ensure_private_dir(socket_dir)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param(b"{not json", "request is not JSON", id="bad-json"),
        pytest.param(b"[1, 2]", "must be a JSON object", id="not-object"),
        pytest.param(b'{"op": "explode"}', "'op' must be ping, add, list or remove", id="op"),
        pytest.param(b'{"op": "remove"}', "'key' must be a probe id", id="missing-key"),
        pytest.param(b'{"op": "add", "target": "x"}', "module:qualname", id="bad-target"),
    ],
)
def test_bad_requests_get_a_clear_error(line: bytes, message: str) -> None:
    answer = handle_request(ProbeManager(), line)
    assert answer["ok"] is False
    assert answer["error"]["code"] == "bad_request"
    assert message in answer["error"]["message"]


def test_peer_uid_is_read_from_the_connection() -> None:
    if not hasattr(socket, "SO_PEERCRED"):
        pytest.skip("SO_PEERCRED is Linux-only")
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        assert peer_uid(left) == os.getuid()


def test_connections_from_another_uid_are_refused(
    server: ControlServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_control, "peer_uid", lambda sock: os.getuid() + 1)
    with pytest.raises(ProbeConnectError, match="control socket"):
        ProbeClient(os.getpid(), directory=server.path.parent).ping()
    assert server.refused == 1


def test_client_adds_lists_and_removes_through_the_socket(server: ControlServer) -> None:
    client = ProbeClient(os.getpid(), directory=server.path.parent)
    added = client.add(f"{T}:add", "metric", budget_ns=9_000)
    assert (added["id"], added["budget_ns"], added["state"]) == ("p1", 9_000, "active")
    targets.add(1)
    assert [(p["target"], p["calls"]) for p in client.list()] == [(f"{T}:add", 1)]
    assert [probe["state"] for probe in client.remove("p1")] == ["removed"]
    assert client.list() == []


def test_unknown_probe_is_not_found(server: ControlServer) -> None:
    with pytest.raises(ProbeRequestError, match="no probe") as caught:
        ProbeClient(os.getpid(), directory=server.path.parent).remove("p9")
    assert caught.value.code == "not_found"


@pytest.mark.skipif(sys.version_info >= (3, 14), reason="3.14+ starts a socket via remote_exec")
def test_a_process_without_a_socket_needs_sloguard_run_or_python_314(socket_dir: Path) -> None:
    with pytest.raises(ProbeConnectError, match=r"needs Python 3\.14\+ \(PEP 768") as caught:
        ProbeClient(os.getppid(), directory=socket_dir).ping()
    assert "sloguard run" in str(caught.value)


def test_a_dead_pid_is_named(socket_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    with pytest.raises(ProbeConnectError, match=f"no process with pid {done.stdout.strip()}"):
        ProbeClient(int(done.stdout), directory=socket_dir).ping()


def test_close_removes_the_socket(socket_dir: Path) -> None:
    server = ControlServer(ProbeManager(), socket_dir)
    server.close()
    assert not server.path.exists()


def test_start_control_server_reports_what_it_did(
    socket_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_control, "_server", None)
    report = Report()
    server = start_control_server(ProbeSettings(socket_dir=socket_dir), report)
    assert server is not None
    server.close()
    assert start_control_server(ProbeSettings(enabled=False), report) is server  # idempotent
    monkeypatch.setattr(_control, "_server", None)
    assert start_control_server(ProbeSettings(enabled=False), report) is None
    assert [e.as_dict()["outcome"] for e in report.entries()] == ["instrumented", "skipped"]


FORKING = """
import json, os, sys, time
from pathlib import Path
from sloguard.inject._control import start_control_server
from sloguard.settings._inject_probes import ProbeSettings
directory = Path(sys.argv[1])
start_control_server(ProbeSettings(socket_dir=directory))
child = os.fork()
if child == 0:
    deadline = time.monotonic() + 10
    while not (directory / f"probe-{os.getpid()}.sock").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    os._exit(0)
os.waitpid(child, 0)
print(json.dumps({"parent": os.getpid(), "child": child,
                  "files": sorted(p.name for p in directory.iterdir())}))
"""


def test_a_forked_child_serves_its_own_socket_and_leaves_the_parents(socket_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", FORKING, str(socket_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(done.stdout)
    assert seen["files"] == sorted([f"probe-{seen['parent']}.sock", f"probe-{seen['child']}.sock"])
