"""``sloguard gate`` and ``sloguard slo status`` on a real store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sloguard.cli import app
from sloguard.store import BucketRow, SQLiteStore

runner = CliRunner()


def fill(path: Path, slo: str, minutes: int, good: int, total: int) -> None:
    now = int(time.time()) // 60
    rows = [BucketRow(slo, now - m, "/a", "2xx", "", good, total) for m in range(1, minutes + 1)]
    with SQLiteStore(path) as store:
        store.add(rows)


def env(store: Path) -> dict[str, str]:
    return {
        "SLOGUARD_SLI__STORE_PATH": str(store),
        "SLOGUARD_SLI__SLOS": "[{name: api, objective: 99}, {name: web, objective: 99}]",
    }


def gate(store: Path, *args: str) -> object:
    return runner.invoke(app, ["gate", "--format", "json", *args], env=env(store))


def test_gate_passes_while_budget_remains(tmp_path: Path) -> None:
    store = tmp_path / "sli.db"
    fill(store, "api", 120, 999, 1000)
    result = gate(store, "--slo", "api")
    assert result.exit_code == 0  # type: ignore[attr-defined]
    assert json.loads(result.stdout)["verdict"] == "pass"  # type: ignore[attr-defined]


def test_gate_blocks_when_the_budget_is_spent_and_pages_fire(tmp_path: Path) -> None:
    store = tmp_path / "sli.db"
    fill(store, "api", 120, 500, 1000)
    result = gate(store, "--slo", "api")
    assert result.exit_code == 1  # type: ignore[attr-defined]
    (check,) = json.loads(result.stdout)["slos"]  # type: ignore[attr-defined]
    assert check["passed"] is False
    assert any("remaining budget" in r for r in check["reasons"])
    assert "page-1h" in check["firing"]


def test_gate_burn_rate_policy(tmp_path: Path) -> None:
    store = tmp_path / "sli.db"
    fill(store, "api", 60, 995, 1000)  # burn rate 0.5 over the last hour
    assert gate(store, "--slo", "api", "--max-burn", "1").exit_code == 0  # type: ignore[attr-defined]
    assert gate(store, "--slo", "api", "--max-burn", "0.25").exit_code == 1  # type: ignore[attr-defined]


def test_exemption_lets_it_through_and_is_audited(tmp_path: Path) -> None:
    store = tmp_path / "sli.db"
    fill(store, "api", 120, 500, 1000)
    result = gate(store, "--slo", "api", "--exempt", "security fix CVE-1")
    assert result.exit_code == 0  # type: ignore[attr-defined]
    assert json.loads(result.stdout)["verdict"] == "exempted"  # type: ignore[attr-defined]
    (entry,) = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert entry["reason"] == "security fix CVE-1"
    assert entry["blocked_slos"] == ["api"]


def test_junit_report_names_each_slo(tmp_path: Path) -> None:
    store = tmp_path / "sli.db"
    fill(store, "api", 120, 500, 1000)
    fill(store, "web", 120, 1000, 1000)
    out = tmp_path / "gate.xml"
    result = gate(store, "--format", "junit", "--output", str(out))
    assert result.exit_code == 1  # type: ignore[attr-defined]
    xml = out.read_text()
    assert 'tests="2" failures="1"' in xml
    assert '<testcase classname="sloguard.gate" name="web"/>' in xml


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--slo", "nope"], "unknown SLO", id="unknown-slo"),
        pytest.param(["--burn-window", "soon", "--max-burn", "1"], "", id="bad-window"),
        pytest.param(["--format", "xml"], "", id="bad-format"),
    ],
)
def test_gate_input_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = gate(tmp_path / "sli.db", *args)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert message in result.output  # type: ignore[attr-defined]


def test_status_reads_the_store(tmp_path: Path) -> None:
    store = tmp_path / "sli.db"
    fill(store, "web", 30, 990, 1000)
    result = runner.invoke(app, ["slo", "status", "--slo", "web", "--json"], env=env(store))
    assert result.exit_code == 0
    (row,) = json.loads(result.stdout)
    assert row["report"]["good"] == 29700
    assert row["report"]["total"] == 30000


def test_status_from_an_unreachable_prometheus_exits_2_naming_it(tmp_path: Path) -> None:
    args = ["slo", "status", "--slo", "web", "--prometheus", "http://127.0.0.1:9"]
    result = runner.invoke(app, args, env=env(tmp_path / "sli.db"))
    assert result.exit_code == 2
    assert "http://127.0.0.1:9/api/v1/query_range" in result.output
