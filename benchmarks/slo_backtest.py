"""How fast a backtest replays history: 100 SLOs x 90 days x 4 tiers (issue 5, benchmark c).

Each SLO gets 90 days of per-minute buckets (plus the 3 days the longest
default tier looks back): steady traffic with a small background error rate
and a few outages (15-50% errors for 10-60 minutes), generated from a fixed
seed. :func:`sloguard.slo.scan_history` then replays every minute of the 90
days through the four default tiers at 99.9% over 30 days.

A *bucket evaluation* is one tier judged at one minute (both its windows):
100 x 129,600 x 4 = 51.84 million. The goal is 10 million a second. Two rates
are reported: the scan alone (``SeriesIndex`` built beforehand, as a backtest
of several specs over one history shares it), and the scan plus building the
index from the ``(minute, good, total)`` rows. Generating the data is not
timed. For contrast, the step-by-step :func:`iter_history` (O(1) per tier and
minute, pure Python) is timed over one day of one SLO.

Pure Python (no NumPy): the scan is a few C-level ``map`` passes per tier over
prefix sums, skipping blocks that provably cannot fire.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import timedelta
from fractions import Fraction
from typing import Any

from rich.table import Table

from sloguard.slo._alerting import DEFAULT_TIERS
from sloguard.slo._history import iter_history, scan_history
from sloguard.slo._windows import SeriesIndex

__all__ = ["GOAL", "NAME", "history", "run", "tables"]

NAME = "slo_backtest"
GOAL = 10_000_000
DAYS = 90
SLOS = 100
QUICK_SLOS = 5
LOOKBACK = 3 * 1440
START = 29_000_000  # a unix minute in 2025
OBJECTIVE = Fraction(999, 1000)
PERIOD = timedelta(days=30)


def history(seed: int, days: int = DAYS) -> list[tuple[int, int, int]]:
    """``days`` (+ the lookback) of buckets for one SLO, deterministic in ``seed``."""
    rng = random.Random(seed)
    minutes = days * 1440 + LOOKBACK
    rate = rng.choice((60, 600, 3000))
    bad = [1 if rng.random() < rate * 0.0002 else 0 for _ in range(minutes)]
    for _ in range(3):
        begin, length = rng.randrange(minutes - 60), rng.randrange(10, 61)
        ratio = rng.choice((0.15, 0.3, 0.5))
        bad[begin : begin + length] = [int(rate * ratio)] * length
    first = START - LOOKBACK
    return [(first + i, rate - b, rate) for i, b in enumerate(bad)]


def run(*, quick: bool = False, progress: Callable[[str], None] = print) -> dict[str, Any]:
    slos = QUICK_SLOS if quick else SLOS
    end = START + DAYS * 1440
    progress(f"slo_backtest: {slos} SLOs x {DAYS} days x {len(DEFAULT_TIERS)} tiers")
    index_seconds = scan_seconds = 0.0
    firings = 0
    for seed in range(slos):
        rows = history(seed)
        began = time.perf_counter()
        index = SeriesIndex(rows)
        built = time.perf_counter()
        found = scan_history(index, DEFAULT_TIERS, OBJECTIVE, PERIOD, START, end)
        scan_seconds += time.perf_counter() - built
        index_seconds += built - began
        firings += sum(len(h.intervals) for h in found)
        if seed % 20 == 19:
            progress(f"slo_backtest: {seed + 1}/{slos} SLOs")
    evaluations = slos * DAYS * 1440 * len(DEFAULT_TIERS)
    index = SeriesIndex(history(0))
    began = time.perf_counter()
    steps = sum(
        1 for _ in iter_history(index, DEFAULT_TIERS, OBJECTIVE, PERIOD, START, START + 1440)
    )
    step_seconds = time.perf_counter() - began
    scan_rate = evaluations / scan_seconds
    return {
        "name": NAME,
        "slos": slos,
        "days": DAYS,
        "tiers": len(DEFAULT_TIERS),
        "bucket_evaluations": evaluations,
        "firing_intervals": firings,
        "scan_seconds": round(scan_seconds, 3),
        "index_seconds": round(index_seconds, 3),
        "scan_evaluations_per_second": round(scan_rate),
        "with_index_evaluations_per_second": round(evaluations / (scan_seconds + index_seconds)),
        "iter_history_evaluations_per_second": round(steps * len(DEFAULT_TIERS) / step_seconds),
        "goal_evaluations_per_second": GOAL,
        "goal_met": scan_rate >= GOAL,
    }


def tables(result: dict[str, Any]) -> list[Table]:
    table = Table(
        title=(
            f"Backtest: {result['slos']} SLOs x {result['days']} days x {result['tiers']} tiers "
            f"= {result['bucket_evaluations']:,} bucket evaluations "
            f"({result['firing_intervals']} firing intervals)"
        )
    )
    for column in ("what", "seconds", "evaluations/s", f"goal {GOAL / 1e6:g} M/s"):
        table.add_column(column, justify="left" if column == "what" else "right")
    scan = result["scan_evaluations_per_second"]
    both = result["with_index_evaluations_per_second"]
    seconds = result["scan_seconds"] + result["index_seconds"]
    table.add_row(
        "scan_history (index prebuilt)",
        f"{result['scan_seconds']:.2f}",
        f"{scan / 1e6:.1f} M",
        "met" if scan >= GOAL else "missed",
    )
    table.add_row(
        "scan_history + SeriesIndex build",
        f"{seconds:.2f}",
        f"{both / 1e6:.1f} M",
        "met" if both >= GOAL else "missed",
    )
    step = result["iter_history_evaluations_per_second"]
    table.add_row("iter_history (1 day of 1 SLO)", "-", f"{step / 1e6:.2f} M", "-")
    return [table]
