"""SLO status from the embedded store vs from Prometheus (issue 5, benchmark a vs b).

The question: how long does it take to know every SLO's 30-day good/total (and
its budget report), reading (a) the embedded SQLite store or (b) a real
Prometheus holding the same counts, through the equivalent PromQL? Goal: (a)
at least 10x faster than (b).

Scaled down, honestly: the issue's 1,000 SLOs x 30 days x 1 minute is 43
million buckets, too many to generate, insert and backfill within the
benchmark's 90 s here. This run writes ``SLOS`` SLOs x 30 days at
``STEP_MINUTES``-minute resolution (one store row per SLO and step; in
Prometheus two counters per SLO, 2xx and 5xx, one sample per step, exactly on
the store's bucket boundaries), and says so in the table.

Timed, per SLO, after the data is in place (generation, insert and backfill are
not timed but reported):

* (a) totals: ``SQLiteStore.totals(slo, at - 30d, at)``;
* (a) full report: ``SQLiteStore.series`` + :func:`budget_report` over the 30 days;
* (b) per-SLO queries: :meth:`PrometheusSource.instant_status`, one instant
  query of ``increase(...[2592000s])`` per SLO (bad and total in one query),
  built by the rule generator's selectors;
* (b) one grouped query: ``sum by (route, status_class) (increase(...[30d]))``
  for all SLOs at once, for contrast.

Both sides must return the same totals for every SLO (checked, not timed):
the counters start at 0 exactly at the window's start and are sampled on its
boundaries, so Prometheus does not extrapolate.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import httpx
from rich.table import Table
from tests.harness.servers import PrometheusServer, find_binary

from sloguard.slo._budget import budget_report
from sloguard.slo._model import RequestSLI, RollingWindow, SLODefinition
from sloguard.slo._prometheus import PrometheusSource
from sloguard.slo._windows import RollingWindow as EngineWindow
from sloguard.store import BucketRow, SQLiteStore

__all__ = ["GOAL", "NAME", "counts", "run", "tables"]

NAME = "slo_status"
GOAL = 10.0
SLOS = 100
QUICK_SLOS = 10
DAYS = 30
QUICK_DAYS = 2
STEP_MINUTES = 1
OBJECTIVE = Fraction(999, 1000)
# promtool re-reads the input once per block; 2-hour blocks over 30 days take
# minutes. The (hidden, real) flag makes 486-hour blocks: seconds.
MAX_BLOCK = "--max-block-duration=720h"


def counts(seed: int, steps: int) -> list[tuple[int, int]]:
    """``(good, total)`` per step for one SLO, deterministic in ``seed``."""
    rng = random.Random(seed)
    rate = rng.choice((60, 600, 3000)) * STEP_MINUTES
    bad = [rng.randrange(3) for _ in range(steps)]
    begin = rng.randrange(steps - 60 // STEP_MINUTES)
    outage = 60 // STEP_MINUTES  # one hour at 20% errors
    bad[begin : begin + outage] = [rate // 5] * outage
    return [(rate - b, rate) for b in bad]


def definition(i: int, days: int) -> SLODefinition:
    return SLODefinition(
        name=f"slo-{i}",
        service="bench",
        objective=Decimal("99.9"),
        sli=RequestSLI(routes=(f"/slo/{i}",)),
        window=RollingWindow(timedelta(days=days)),
    )


def _openmetrics(slos: int, steps: int, start: int) -> Iterator[str]:
    yield "# TYPE sloguard_http_requests counter\n"
    for i in range(slos):
        rows = counts(i, steps)  # regenerated: all SLOs' rows at once would not fit in memory
        for status_class, pick in (("2xx", 0), ("5xx", 1)):
            labels = f'route="/slo/{i}",status_class="{status_class}"'
            value, step = 0, 60 * STEP_MINUTES
            for k in range(len(rows) + 1):
                yield f"sloguard_http_requests_total{{{labels}}} {value} {start + step * k}\n"
                if k < len(rows):
                    good, total = rows[k]
                    value += good if pick == 0 else total - good
    yield "# EOF\n"


def _seconds_per_slo(slos: int, call: Callable[[int], object]) -> float:
    began = time.perf_counter()
    for i in range(slos):
        call(i)
    return time.perf_counter() - began


def run(*, quick: bool = False, progress: Callable[[str], None] = print) -> dict[str, Any]:
    slos, days = (QUICK_SLOS, QUICK_DAYS) if quick else (SLOS, DAYS)
    steps = days * 1440 // STEP_MINUTES
    end_minute = (int(time.time()) // 3600 - 1) * 60  # recent, on the hour
    start_minute = end_minute - days * 1440
    progress(f"slo_status: {slos} SLOs x {days} days at {STEP_MINUTES}-minute resolution")
    definitions = [definition(i, days) for i in range(slos)]
    with tempfile.TemporaryDirectory(prefix="sloguard-bench-status-") as tmp:
        workdir = Path(tmp)
        began = time.perf_counter()
        with SQLiteStore(workdir / "store.db") as store:
            expected = []
            for i in range(slos):
                rows = counts(i, steps)
                expected.append((sum(g for g, _ in rows), sum(t for _, t in rows)))
                store.add(
                    BucketRow(f"slo-{i}", start_minute + STEP_MINUTES * k, "/", "2xx", "", g, t)
                    for k, (g, t) in enumerate(rows)
                )
            insert_seconds = time.perf_counter() - began
            progress(f"slo_status: store written in {insert_seconds:.1f} s; backfilling")
            began = time.perf_counter()
            source_file = workdir / "history.om.txt"
            with source_file.open("w") as out:
                out.writelines(_openmetrics(slos, steps, start_minute * 60))
            subprocess.run(
                [find_binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", "-q"]
                + [MAX_BLOCK, str(source_file), str(workdir / "tsdb")],
                check=True,
                capture_output=True,
                timeout=120,
            )
            source_file.unlink()
            backfill_seconds = time.perf_counter() - began
            progress(f"slo_status: backfilled in {backfill_seconds:.1f} s; querying")
            server = PrometheusServer(
                workdir / "prometheus",
                extra_args=[
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                    "--storage.tsdb.retention.time=400d",
                ],
            )
            with server, PrometheusSource(server.url, timeout_s=60) as prometheus:
                result = _measure(store, prometheus, definitions, start_minute, end_minute)
                result["grouped_query_seconds"] = _grouped(server.url, days, end_minute)
    result.update(
        name=NAME,
        slos=slos,
        days=days,
        step_minutes=STEP_MINUTES,
        store_rows=slos * steps,
        prometheus_samples=slos * 2 * (steps + 1),
        insert_seconds=round(insert_seconds, 2),
        backfill_seconds=round(backfill_seconds, 2),
        matches_generated=result.pop("store_totals") == expected,
    )
    speedup = result["prometheus_per_slo_seconds"] / result["store_totals_seconds"]
    result["speedup_totals"] = round(speedup, 1)
    result["speedup_full_report"] = round(
        result["prometheus_per_slo_seconds"] / result["store_report_seconds"], 1
    )
    result["goal_speedup"] = GOAL
    result["goal_met"] = speedup >= GOAL
    return result


def _measure(
    store: SQLiteStore,
    prometheus: PrometheusSource,
    definitions: list[SLODefinition],
    start: int,
    end: int,
) -> dict[str, Any]:
    slos = len(definitions)
    store_totals = [store.totals(d.name, start, end) for d in definitions]  # warm, and the check
    from_prometheus = [prometheus.instant_status(d, end) for d in definitions]
    same = store_totals == from_prometheus
    window = EngineWindow(timedelta(minutes=end - start))

    def report(i: int) -> object:
        rows = store.series(definitions[i].name, start, end)
        return budget_report(rows, objective=OBJECTIVE, window=window, at=end)

    timings = {
        "store_totals_seconds": _seconds_per_slo(
            slos, lambda i: store.totals(definitions[i].name, start, end)
        ),
        "store_report_seconds": _seconds_per_slo(slos, report),
        "prometheus_per_slo_seconds": _seconds_per_slo(
            slos, lambda i: prometheus.instant_status(definitions[i], end)
        ),
    }
    return {
        **{key: round(value, 6) for key, value in timings.items()},
        "store_totals": [(g, t) for g, t in store_totals],
        "store_equals_prometheus": same,
    }


def _grouped(url: str, days: int, end_minute: int) -> float:
    query = f"sum by (route, status_class) (increase(sloguard_http_requests_total[{days}d]))"
    samples = []
    with httpx.Client(timeout=60) as client:
        for _ in range(3):
            began = time.perf_counter()
            response = client.get(
                f"{url}/api/v1/query", params={"query": query, "time": end_minute * 60}
            )
            response.raise_for_status()
            samples.append(time.perf_counter() - began)
    return round(statistics.median(samples), 6)


def tables(result: dict[str, Any]) -> list[Table]:
    slos = result["slos"]
    table = Table(
        title=(
            f"SLO status: {slos} SLOs x {result['days']} days at {result['step_minutes']}-minute "
            f"resolution (scaled down from 1,000 x 30 d x 1 min; {result['store_rows']:,} store "
            f"rows, {result['prometheus_samples']:,} Prometheus samples; insert "
            f"{result['insert_seconds']} s, backfill {result['backfill_seconds']} s; same totals "
            f"both sides: {result['store_equals_prometheus'] and result['matches_generated']})"
        )
    )
    for column in ("what", f"seconds for {slos} SLOs", "ms per SLO", "vs (b) per-SLO"):
        table.add_column(column, justify="left" if column == "what" else "right")
    base = result["prometheus_per_slo_seconds"]
    rows = (
        ("(a) store totals", result["store_totals_seconds"]),
        ("(a) store series + budget_report", result["store_report_seconds"]),
        ("(b) Prometheus, one instant query per SLO", base),
        ("(b) Prometheus, one grouped query for all", result["grouped_query_seconds"]),
    )
    for what, seconds in rows:
        table.add_row(
            what, f"{seconds:.3f}", f"{seconds / slos * 1000:.2f}", f"{base / seconds:.1f}x"
        )
    table.add_row(
        f"goal: (a) totals >= {GOAL:g}x faster than (b) per-SLO",
        "",
        "",
        "met" if result["goal_met"] else "missed",
    )
    return [table]
