"""Declarative spec tests: the example file passes, wrong expectations fail, bad files exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from sloguard.cli import slo_tools
from sloguard.slo._spectest import SpecTestError, run_test_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "slo" / "tests" / "checkout.slotest"
SPEC = Path(__file__).resolve().parents[2] / "examples" / "slo" / "checkout.yaml"
CASE = """
spec: {spec}
cases:
  - name: outage
    slo: checkout-availability
    series: [{{minutes: 4320, error_ratio: 0}}, {{minutes: 10, error_ratio: 0.15}}]
    expect: {expect}
"""


def _file(tmp_path: Path, expect: str) -> Path:
    path = tmp_path / "case.slotest"
    path.write_text(CASE.format(spec=SPEC, expect=expect))
    return path


def _cli() -> typer.Typer:
    app = typer.Typer()
    app.command("test")(slo_tools.spec_tests)
    app.command("other")(slo_tools.simulate_command)
    return app


def test_the_example_test_file_passes() -> None:
    results = run_test_file(EXAMPLE)
    assert [r.failures for r in results] == [(), ()]


@pytest.mark.parametrize(
    ("expect", "failure"),
    [
        pytest.param(
            "{fires: [{tier: page-1h, at: 4330m}]}", "fired at +3 days, 0:06:00", id="late"
        ),
        pytest.param("{fires: []}", "tier page-1h fired", id="silence"),
        pytest.param("{fires: [{tier: page-6h}]}", "tier page-6h never fired", id="never"),
        pytest.param("{remaining: 0.9}", "remaining: expected 0.9", id="budget"),
    ],
)
def test_wrong_expectations_fail_with_a_reason(tmp_path: Path, expect: str, failure: str) -> None:
    [result] = run_test_file(_file(tmp_path, expect))
    assert not result.passed
    assert failure in result.failures[0]


def test_an_unknown_field_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(SpecTestError, match="expect.fire"):
        run_test_file(_file(tmp_path, "{fire: []}"))


@pytest.mark.parametrize(
    ("expect", "code"),
    [
        pytest.param("{fires: [{tier: page-1h, at: 6m, within: 4326m}]}", 0, id="pass"),
        pytest.param("{fires: []}", 1, id="fail"),
        pytest.param("{fires: [{tier: no-such-tier}]}", 2, id="bad-input"),
    ],
)
def test_test_command_exits_0_1_or_2(tmp_path: Path, expect: str, code: int) -> None:
    result = CliRunner().invoke(_cli(), ["test", str(_file(tmp_path, expect))])
    assert result.exit_code == code, result.output
