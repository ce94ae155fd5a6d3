import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from sloguard.demo import DEMO_SLOS, DemoError, DemoResult, demo_settings, run_demo
from sloguard.store import SQLiteStore

ALL_MINUTES = (0, 2**40)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoResult, str]:
    """One three-second demo run at 50 requests/s, shared by the tests that read it."""
    workdir = tmp_path_factory.mktemp("demo")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(workdir)  # no sloguard.yaml from the checkout
        for name in [n for n in os.environ if n.startswith("SLOGUARD_")]:
            patch.delenv(name)
        result = run_demo(
            duration=3,
            rps=50,
            port=0,
            store=workdir / "demo.db",
            error_rate=0.2,
            seed=11,
            console=Console(file=out, width=120),
        )
    return result, out.getvalue()


def test_demo_store_totals_equal_the_requests_the_server_answered(
    demo: tuple[DemoResult, str],
) -> None:
    result, _ = demo
    with SQLiteStore(result.store) as store:
        good, total = store.totals("shop-availability", *ALL_MINUTES)
    assert result.exit_code == 0
    assert result.answered >= 100
    assert (result.sent, result.failed) == (result.answered, 0)
    assert total == result.answered == result.measured
    assert good == total - result.server_errors


def test_demo_reports_every_slo_as_the_store_holds_it(demo: tuple[DemoResult, str]) -> None:
    result, _ = demo
    with SQLiteStore(result.store) as store:
        in_store = {s.name: store.totals(s.name, *ALL_MINUTES) for s in DEMO_SLOS}
    assert {row.name: (row.good, row.total) for row in result.slos} == in_store
    assert 0 < in_store["checkout-latency"][1] < in_store["catalog-latency"][1]


def test_demo_plain_output_names_the_urls_and_ends_with_the_summary(
    demo: tuple[DemoResult, str],
) -> None:
    result, text = demo
    assert f"{result.app_url}/products" in text
    assert result.metrics_url == f"{result.app_url}/metrics"
    assert result.metrics_url in text
    summary = text[text.index("sloguard demo stopped") :]
    assert f"sent {result.sent}, answered {result.answered}, failed 0" in summary
    assert f"sloguard measured {result.measured}" in summary
    assert "shop-availability" in summary
    assert "/products/{product_id}" in summary
    assert "\x1b[" not in text  # no animation, no colour codes


def test_ctrl_c_stops_the_demo_cleanly(tmp_path: Path) -> None:
    log = tmp_path / "out.txt"
    code = (
        "from sloguard.demo import run_demo\n"
        "raise SystemExit(run_demo(port=0, rps=40, store='d.db').exit_code)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLOGUARD_")}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 30
        while "Press Ctrl-C" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)  # a real process starting: nothing to fake here
        time.sleep(1.0)  # let some traffic flow
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        process.kill()
    text = log.read_text()
    assert "sloguard demo stopped" in text
    assert "mismatch" not in text
    assert "Traceback" not in text


def test_run_demo_refuses_a_port_already_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(DemoError, match="try --port 0"):
            run_demo(port=taken.getsockname()[1], store=tmp_path / "d.db", duration=1)


@pytest.mark.parametrize(
    ("option", "message"),
    [
        pytest.param({"rps": 0}, "--rps", id="rps"),
        pytest.param({"duration": -1}, "--duration", id="duration"),
        pytest.param({"port": 70_000}, "--port", id="port"),
        pytest.param({"error_rate": 1.5}, "--error-rate", id="error-rate"),
        pytest.param({"slow_rate": -0.1}, "--slow-rate", id="slow-rate"),
    ],
)
def test_run_demo_rejects_impossible_options(option: dict[str, float], message: str) -> None:
    with pytest.raises(DemoError, match=message):
        run_demo(**option)  # type: ignore[arg-type]


def test_demo_settings_bring_the_demo_slos_and_a_fast_flush(tmp_path: Path) -> None:
    settings = demo_settings(
        tmp_path / "d.db", config=write(tmp_path, "tracing:\n  exporter: none\n")
    )
    assert settings.sli.slos == DEMO_SLOS
    assert settings.sli.store_path == tmp_path / "d.db"
    assert settings.sli.flush_interval_s == 1.0
    assert settings.service.name == "shop"
    assert {0.001, 0.1, 0.35} <= set(settings.metrics.duration_buckets)


def test_demo_settings_keep_the_users_own_slos_and_service(tmp_path: Path) -> None:
    yaml_text = "service:\n  name: mine\nsli:\n  slos:\n    - name: mine-availability\n"
    settings = demo_settings(tmp_path / "d.db", config=write(tmp_path, yaml_text))
    assert [s.name for s in settings.sli.slos] == ["mine-availability"]
    assert settings.service.name == "mine"
    assert settings.sli.store_path == tmp_path / "d.db"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sloguard.yaml"
    path.write_text(text)
    return path
