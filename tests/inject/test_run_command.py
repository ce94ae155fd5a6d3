"""``sloguard run``'s command line: settings to the environment, sitecustomize first, exec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sloguard.cli import run as run_module
from sloguard.cli.run import child_environment, register
from sloguard.inject._bootstrap import SITE_DIR

Calls = list[tuple[list[str], dict[str, str]]]


@pytest.fixture
def executed(monkeypatch: pytest.MonkeyPatch) -> Calls:
    calls: Calls = []

    def fake_exec(command: list[str], env: dict[str, str]) -> None:
        calls.append((command, env))
        raise typer.Exit(0)

    monkeypatch.setattr(run_module, "_exec", fake_exec)
    return calls


def invoke(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    register(app)
    app.callback()(lambda: None)  # keep "run" a subcommand, as in the root app
    result = CliRunner().invoke(app, ["run", *args])
    return result.exit_code, result.output


def test_options_after_the_command_belong_to_the_command(executed: Calls) -> None:
    code, _ = invoke("--explain", "uvicorn", "app:app", "--workers", "2", "--explain")
    [(command, env)] = executed
    assert code == 0
    assert command == ["uvicorn", "app:app", "--workers", "2", "--explain"]
    assert env["SLOGUARD_INJECT__EXPLAIN"] == "true"


def test_options_become_json_settings_overrides(executed: Calls) -> None:
    invoke("--service-name", "true", "--no-tasks", "--trace", "app.db:*", "--", "python", "x.py")
    [(_, env)] = executed
    assert env["SLOGUARD_SERVICE__NAME"] == '"true"'  # still a string for the settings
    assert env["SLOGUARD_INJECT__TASKS__ENABLED"] == "false"
    assert json.loads(env["SLOGUARD_INJECT__TRACE__SELECTORS"]) == ["app.db:*"]


def test_trace_selectors_add_to_the_config_files(tmp_path: Path, executed: Calls) -> None:
    config = tmp_path / "sloguard.yaml"
    config.write_text("inject:\n  trace:\n    selectors: ['app.cache:get']\n")
    invoke("--config", str(config), "--trace", "app.db:*", "--", "python", "x.py")
    [(_, env)] = executed
    assert env["SLOGUARD_CONFIG"] == str(config.resolve())
    assert json.loads(env["SLOGUARD_INJECT__TRACE__SELECTORS"]) == ["app.cache:get", "app.db:*"]


def test_bad_settings_are_a_usage_error_before_anything_runs(
    monkeypatch: pytest.MonkeyPatch, executed: Calls
) -> None:
    monkeypatch.setenv("SLOGUARD_TRACING__SAMPLE_RATIO", "3")
    code, output = invoke("--", "python", "x.py")
    assert code == 2
    assert "SLOGUARD_TRACING__SAMPLE_RATIO" in output
    assert executed == []


def test_multiprocess_dir_reaches_prometheus_client_through_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, executed: Calls
) -> None:
    monkeypatch.setenv("SLOGUARD_METRICS__MULTIPROCESS_DIR", str(tmp_path / "prom"))
    invoke("--", "gunicorn", "app:app")
    [(_, env)] = executed
    assert env["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "prom")
    assert (tmp_path / "prom").is_dir()


def test_a_missing_command_is_a_usage_error() -> None:
    code, output = invoke("--", "sloguard-test-no-such-command")
    assert code == 2
    assert "cannot run 'sloguard-test-no-such-command'" in output


def test_sitecustomize_goes_first_on_pythonpath_once() -> None:
    env = child_environment({"PYTHONPATH": f"/user/lib:{SITE_DIR}"}, None, {})
    assert env["PYTHONPATH"] == f"{SITE_DIR}:/user/lib"
    assert (SITE_DIR / "sitecustomize.py").is_file()
