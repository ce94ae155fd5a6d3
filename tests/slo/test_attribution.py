"""Attribution: the routes, status classes and error codes that spent the budget."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import typer
from typer.testing import CliRunner

from sloguard.cli import slo_tools
from sloguard.slo._attribution import OTHER, attribute
from sloguard.store import BucketRow, SQLiteStore

ROWS = [
    BucketRow("api", 100, "/pay", "5xx", "PAY_500", 0, 30),
    BucketRow("api", 100, "/pay", "2xx", "", 970, 970),
    BucketRow("api", 101, "/cart", "5xx", "CART_503", 0, 10),
    BucketRow("api", 101, "/cart", "4xx", "AUTH_101", 95, 100),
    BucketRow("api", 102, "/home", "5xx", "", 0, 5),
    BucketRow("api", 300, "/pay", "5xx", "PAY_500", 0, 1000),  # outside the window
]


def _store(tmp_path: Path) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "sli.db")
    store.add(ROWS)
    return store


def test_routes_are_ranked_by_bad_events_with_exact_shares(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        [routes] = attribute(store, "api", 100, 200, dimensions=("route",))
    assert routes.bad == 50
    assert [(c.value, c.bad, c.share) for c in routes.contributors] == [
        ("/pay", 30, Fraction(3, 5)),
        ("/cart", 15, Fraction(3, 10)),
        ("/home", 5, Fraction(1, 10)),
    ]


def test_values_past_top_n_fold_into_other_so_shares_add_up(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        [codes] = attribute(store, "api", 100, 200, dimensions=("error_code",), top=1)
    assert [c.value for c in codes.contributors] == ["PAY_500", OTHER]
    assert sum(c.share for c in codes.contributors) == 1


def test_budget_share_divides_bad_events_by_the_window_budget(tmp_path: Path) -> None:
    with _store(tmp_path) as store:
        [classes] = attribute(
            store, "api", 100, 200, dimensions=("status_class",), objective=Fraction(99, 100)
        )
    # 1,115 events at 99% allow 11.15 bad ones; the 45 5xx spent 45 / 11.15 of it.
    assert classes.contributors[0].value == "5xx"
    assert classes.contributors[0].budget_share == Fraction(45) / Fraction(1115, 100)


def test_attribution_command_prints_json_for_each_dimension(tmp_path: Path) -> None:
    _store(tmp_path).close()
    app = typer.Typer()
    app.command("attribution")(slo_tools.attribution)
    app.command("other")(slo_tools.spec_tests)
    args = ["attribution", "api", "--store", str(tmp_path / "sli.db"), "--end"]
    result = CliRunner().invoke(app, [*args, "1970-01-01T03:20:00Z", "--window", "2h", "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert [a["dimension"] for a in payload] == ["route", "status_class", "error_code"]
    assert payload[0]["contributors"][0] == {
        "value": "/pay",
        "bad": 30,
        "total": 1000,
        "share": "0.600000",
        "budget_share": None,
    }
