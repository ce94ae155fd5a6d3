"""``sloguard serve`` refuses bad input before it starts serving."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from sloguard.cli import app

runner = CliRunner()


def test_serve_exits_2_on_an_invalid_spec(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("apiVersion: sloguard.dev/v1\nkind: SLO\nmetadata: {name: x}\nspec: {}\n")
    result = runner.invoke(app, ["serve", "--spec", str(spec), "--store", str(tmp_path / "s.db")])
    assert result.exit_code == 2


def test_serve_exits_2_on_an_invalid_config(tmp_path: Path) -> None:
    config = tmp_path / "sloguard.yaml"
    config.write_text("sli:\n  flush_interval_s: -1\n")
    result = runner.invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code == 2
