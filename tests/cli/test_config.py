"""``sloguard config check``: exit 0 when valid, 2 with file, line and field otherwise."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sloguard.cli import app

runner = CliRunner()


def test_valid_file_passes(tmp_path: Path) -> None:
    config = tmp_path / "sloguard.yaml"
    config.write_text("service:\n  name: shop\nsli:\n  slos:\n    - name: availability\n")
    result = runner.invoke(app, ["config", "check", str(config)])
    assert result.exit_code == 0
    assert "service 'shop', 1 SLO" in result.output


def test_invalid_file_exits_2_naming_line_and_field(tmp_path: Path) -> None:
    config = tmp_path / "sloguard.yaml"
    config.write_text("service:\n  name: shop\ntracing:\n  sample_ratio: -1\n")
    result = runner.invoke(app, ["config", "check", str(config)])
    assert result.exit_code == 2
    assert f"{config}:4: tracing.sample_ratio:" in result.output


def test_json_output_lists_problems(tmp_path: Path) -> None:
    config = tmp_path / "sloguard.yaml"
    config.write_text("metrics:\n  port: 99999\n")
    result = runner.invoke(app, ["config", "check", str(config), "--json"])
    assert result.exit_code == 2
    (problem,) = json.loads(result.stdout)["problems"]
    assert problem["field"] == "metrics.port"
    assert problem["where"].endswith(":2")


def test_show_prints_effective_settings(tmp_path: Path) -> None:
    config = tmp_path / "sloguard.yaml"
    config.write_text("service:\n  name: shop\n")
    result = runner.invoke(
        app, ["config", "show", str(config)], env={"SLOGUARD_TRACING__SAMPLE_RATIO": "0.5"}
    )
    assert result.exit_code == 0
    shown = json.loads(result.stdout)
    assert shown["service"]["name"] == "shop"
    assert shown["tracing"]["sample_ratio"] == 0.5


def test_version() -> None:
    from sloguard import __version__

    assert runner.invoke(app, ["version"]).stdout.strip() == __version__
