"""``sloguard slo validate``."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sloguard.cli import app

runner = CliRunner()
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "slo"


def test_the_examples_validate() -> None:
    result = runner.invoke(app, ["slo", "validate", str(EXAMPLES), "--json"])
    assert result.exit_code == 0
    assert "checkout-availability" in json.loads(result.stdout)["slos"]


def test_problems_name_line_and_field_and_exit_2(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "apiVersion: sloguard.dev/v1\nkind: SLO\nmetadata: {name: x, service: s}\n"
        "spec:\n  objective: 120\n  sli: {requests: {routes: ['/a']}}\n"
    )
    result = runner.invoke(app, ["slo", "validate", str(spec), "--json"])
    assert result.exit_code == 2
    (problem,) = json.loads(result.stdout)["problems"]
    assert (problem["line"], problem["field"]) == (5, "spec.objective")
