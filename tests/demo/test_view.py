import dataclasses
import io
import math

import pytest
from rich.console import Console

from sloguard.demo.red import RedRow
from sloguard.demo.view import DemoFrame, DemoView, SLORow

CHECKOUT = RedRow("POST", "/checkout", requests=40, rate=4.0, errors=2, p50=0.2, p95=0.38, p99=0.4)


def frame(*, answered: int = 40, measured: int = 40, final: bool = False) -> DemoFrame:
    return DemoFrame(
        elapsed_s=10.0,
        window_s=10.0,
        red=[CHECKOUT, RedRow("GET", "/healthz", 1, 0.1, 0, math.nan, math.nan, math.nan)],
        slos=[SLORow("checkout-latency", "latency", 99.0, good=396, total=400)],
        store=".sloguard/demo.db",
        sent=answered,
        answered=answered,
        failed=0,
        measured=measured,
        final=final,
    )


def plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=120), out


@pytest.mark.parametrize(
    ("good", "total", "sli", "budget_left", "met"),
    [
        pytest.param(396, 400, 99.0, 0.0, True, id="exactly-on-objective"),
        pytest.param(400, 400, 100.0, 100.0, True, id="perfect"),
        pytest.param(392, 400, 98.0, -100.0, False, id="budget-overspent"),
        pytest.param(0, 0, None, None, None, id="no-events"),
    ],
)
def test_slo_row_derives_sli_and_budget_left(
    good: int, total: int, sli: float | None, budget_left: float | None, met: bool | None
) -> None:
    row = SLORow("checkout-latency", "latency", 99.0, good=good, total=total)
    assert row.sli == pytest.approx(sli)
    assert row.budget_left == pytest.approx(budget_left)
    assert row.met is met


def cells(text: str, first: str) -> list[str]:
    """The cells of the plain-table row whose first cell is ``first``."""
    for line in text.splitlines():
        row = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if row[0] == first:
            return row
    raise AssertionError(f"no row {first!r} in:\n{text}")


def test_summary_shows_red_figures_slo_counts_and_both_totals() -> None:
    console, out = plain_console()
    DemoView(console).summary(frame(final=True))
    text = out.getvalue()
    assert cells(text, "/checkout") == [
        "/checkout",
        "POST",
        "4.0",
        "5.0%",
        "200 ms",
        "380 ms",
        "400 ms",
        "40",
    ]
    assert cells(text, "/healthz")[4:7] == ["-", "-", "-"]
    assert cells(text, "checkout-latency")[2:] == ["99.0%", "396", "400", "99.00%", "0%", "-", "-"]
    assert "sent 40, answered 40, failed 0 | sloguard measured 40" in text
    assert "mismatch" not in text


def test_summary_flags_a_mismatch_between_sent_and_measured() -> None:
    console, out = plain_console()
    DemoView(console).summary(frame(answered=40, measured=39, final=True))
    assert "mismatch" in out.getvalue()


def test_plain_view_prints_a_table_only_every_interval() -> None:
    console, out = plain_console()
    now = [0.0]
    view = DemoView(console, plain_every_s=5.0, clock=lambda: now[0])
    printed = []
    with view:
        for now[0] in (0.0, 1.0, 4.9, 5.0, 7.0, 10.0):
            view.show(frame())
            printed.append(out.getvalue().count("RED per route"))
    assert not view.live
    assert printed == [0, 0, 0, 1, 1, 2]


def test_slo_table_shows_burn_rate_and_firing_tiers() -> None:
    console, out = plain_console()
    row = SLORow("shop", "availability", 99.5, 90, 100, burn_5m=20.0, firing=("page-1h",))
    DemoView(console).summary(dataclasses.replace(frame(final=True), slos=[row]))
    assert cells(out.getvalue(), "shop")[-2:] == ["20.00", "page-1h"]
