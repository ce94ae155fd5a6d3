"""Fixtures and hooks the whole suite shares: real servers and a clean environment.

The servers (see ``tests/harness/servers.py``) start once per session, except
Prometheus, whose scrape targets only a test knows: ``prometheus_factory``
starts one per call and stops it when the test ends. Tests that use a server
fixture get the ``servers`` marker automatically, so ``-m "not servers"``
runs the rest (tests that build a server or call ``promtool`` themselves mark
it by hand). A missing binary skips the test with the install command, or
fails it when ``CI`` is set (``make test`` installs the binaries first).

Every test runs in a fresh temporary working directory, without the
developer's ``SLOGUARD_*`` / ``OTEL_*`` variables and with loopback exempt
from proxies, so a ``sloguard.yaml`` or ``.sloguard/`` in the checkout never
leaks in.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import pytest

from tests.harness.servers import (
    STARTUP_SECONDS,
    AlertmanagerServer,
    BinaryNotFoundError,
    PrometheusFactory,
    PrometheusServer,
    RedisServer,
    ScrapeConfig,
)

if TYPE_CHECKING:
    from _pytest.terminal import TerminalReporter

    from tests.harness.otlp import OtlpGrpcReceiver, OtlpHttpReceiver

SERVER_FIXTURES = frozenset({"redis_server", "prometheus_factory", "alertmanager_server"})
_BINARIES = (
    ("redis-server",),
    ("prometheus",),
    ("promtool",),
    ("prometheus-alertmanager", "alertmanager"),
)
_CLEARED_PREFIXES = ("SLOGUARD_", "OTEL_")
_S = TypeVar("_S", RedisServer, PrometheusServer, AlertmanagerServer)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SERVER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.servers)


def pytest_report_header() -> str:
    missing = [names[0] for names in _BINARIES if not any(map(shutil.which, names))]
    return "servers: " + ("all found" if not missing else f"missing {', '.join(missing)}")


def pytest_terminal_summary(terminalreporter: TerminalReporter) -> None:
    for name, seconds in sorted(STARTUP_SECONDS.items()):
        terminalreporter.write_line(
            f"{name} startup: {len(seconds)}x, median {statistics.median(seconds):.3f}s, "
            f"max {max(seconds):.3f}s"
        )


def _missing_binary(exc: BinaryNotFoundError) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"{exc} (CI is set, so this is an error)", pytrace=False)
    pytest.skip(str(exc))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """A missing server binary skips the test (fails it under CI), in fixtures too."""
    try:
        return (yield)
    except BinaryNotFoundError as exc:
        missing = exc  # reported outside the handler: no chained traceback
    _missing_binary(missing)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    try:
        return (yield)
    except BinaryNotFoundError as exc:
        missing = exc  # reported outside the handler: no chained traceback
    _missing_binary(missing)


def _started(server: _S) -> _S:
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session", autouse=True)
def _clean_environment() -> Iterator[None]:
    patch = pytest.MonkeyPatch()
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES):
            patch.delenv(name)
    for name in ("NO_PROXY", "no_proxy"):
        kept = [h for h in os.environ.get(name, "").split(",") if h]
        patch.setenv(name, ",".join([*kept, "127.0.0.1", "localhost"]))
    yield
    patch.undo()


@pytest.fixture(autouse=True)
def _fresh_working_directory() -> Iterator[None]:
    before = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="sloguard-cwd-", ignore_cleanup_errors=True) as cwd:
        os.chdir(cwd)
        try:
            yield
        finally:
            os.chdir(before)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One Redis for the session, flushed (and restarted if a test stopped it) per test."""
    server = _started(RedisServer(tmp_path_factory.mktemp("redis")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _redis_per_test_state(request: pytest.FixtureRequest) -> None:
    if "redis_server" in request.fixturenames:
        server: RedisServer = request.getfixturevalue("redis_server")
        server.ensure_running()
        server.flushall()


@pytest.fixture
def prometheus_factory(tmp_path: Path) -> Iterator[PrometheusFactory]:
    """Start Prometheus with this test's scrape targets; all stop when the test ends."""
    started: list[PrometheusServer] = []

    def start(
        scrape_configs: Sequence[ScrapeConfig | Mapping[str, Any]] = (),
        *,
        rule_files: Sequence[Path | str] = (),
        evaluation_interval: str = "1s",
        extra_args: Sequence[str] = (),
    ) -> PrometheusServer:
        workdir = tmp_path / f"prometheus-{len(started)}"
        server = PrometheusServer(
            workdir,
            scrape_configs=scrape_configs,
            rule_files=rule_files,
            evaluation_interval=evaluation_interval,
            extra_args=extra_args,
        )
        started.append(server)
        return _started(server)

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture(scope="session")
def alertmanager_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertmanagerServer]:
    """One Alertmanager for the session: give each test's alerts a unique alertname."""
    server = _started(AlertmanagerServer(tmp_path_factory.mktemp("alertmanager")))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def otlp_http_receiver() -> Iterator[OtlpHttpReceiver]:
    from tests.harness.otlp import OtlpHttpReceiver

    with OtlpHttpReceiver() as receiver:
        yield receiver


@pytest.fixture
def otlp_grpc_receiver() -> Iterator[OtlpGrpcReceiver]:
    from tests.harness.otlp import OtlpGrpcReceiver

    with OtlpGrpcReceiver() as receiver:
        yield receiver
