"""Per-request cost of the observe stack, measured in-process (no server, no socket).

The ASGI app is called directly on one asyncio loop with a prebuilt scope
(``GET /items/{id}``, 1,000 distinct ids cycled, a user-agent and a few other
headers; optionally an incoming ``traceparent`` from a trusted loopback
client), a ``receive`` that returns one ``http.request`` and a ``send`` that
discards. Each request gets a shallow copy of the scope (and its header list,
which asgi-correlation-id appends to), on every variant alike, so the copy
cancels out of the overheads.

A round is ``requests`` sequential awaits timed with ``perf_counter_ns``;
after a warm-up round, ``rounds`` rounds are timed and the median per-request
cost is reported. Every variant lives in its own fresh interpreter
(``python -m benchmarks.observe serve``), so no global state -- the
OpenTelemetry global provider, the LogRecord factory, prometheus_client's
default registry -- leaks from one variant into the next; the parent runs
the rounds interleaved across those interpreters, so load from anything else
on the machine (a 2-core box shared with test runs) falls on every variant
alike instead of on whichever ran during a busy minute.

Also here: the ``SLIRecorder.record`` microbenchmark (goal: at most 1 us),
sloguard's ``JsonFormatter`` against python-json-logger's on the same record
(the claim in ``sloguard.telemetry.logging``), and a cProfile of a variant.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import json
import logging
import pstats
import random
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from rich.table import Table

from benchmarks._child import BenchChild
from benchmarks.apps import (
    FAIRNESS,
    ITEM_ROUTE,
    Built,
    bench_environment,
    build_bare,
    build_peer,
    build_sloguard,
    stored_sli_total,
)

__all__ = [
    "FAIRNESS",
    "NAME",
    "VARIANTS",
    "Variant",
    "drive",
    "VariantRun",
    "json_formatter_cost",
    "measure",
    "measure_interleaved",
    "profile_variant",
    "request_scopes",
    "run",
    "sli_record_cost",
    "tables",
]

NAME = "observe"
ROOT = Path(__file__).resolve().parent.parent
REQUESTS = 20_000
ROUNDS = 5
DISTINCT_IDS = 1_000
USER_AGENT = b"Mozilla/5.0 (X11; Linux x86_64) sloguard-bench/1.0"
OVERHEAD_RATIO_GOAL = 1 / 3
SLI_RECORD_GOAL_NS = 1_000.0
PROFILE_TOP = 15
CHILD_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Variant:
    name: str
    label: str
    traceparent: bool
    baseline: str
    build: Callable[[Path, TextIO], Built]
    #: "compare" rows answer the goals; "part" rows are (b) with one part switched off.
    group: str = "compare"


def _without(part: str, overrides: dict[str, dict[str, Any]]) -> Variant:
    name = f"sloguard-100-no-{part}"
    return Variant(
        name,
        f"(b) without {part}",
        False,
        "bare",
        lambda w, s: build_sloguard(w, s, sample_ratio=1.0, name=name, overrides=overrides),
        group="part",
    )


VARIANTS: tuple[Variant, ...] = (
    Variant("bare", "(a) bare Starlette", False, "bare", lambda w, s: build_bare()),
    Variant(
        "sloguard-100",
        "(b) sloguard, 100% sampling",
        False,
        "bare",
        lambda w, s: build_sloguard(w, s, sample_ratio=1.0, name="sloguard-100"),
    ),
    Variant(
        "sloguard-1",
        "(c) sloguard, 1% sampling",
        False,
        "bare",
        lambda w, s: build_sloguard(w, s, sample_ratio=0.01, name="sloguard-1"),
    ),
    Variant("peer", "(d) peer stack", False, "bare", lambda w, s: build_peer(s)),
    Variant(
        "peer-default-spans",
        "(d') peer, OTel default 3 spans/request",
        False,
        "bare",
        lambda w, s: build_peer(s, internal_spans=True),
    ),
    Variant("bare-tp", "(a) bare + traceparent", True, "bare-tp", lambda w, s: build_bare()),
    Variant(
        "sloguard-100-tp",
        "(b) sloguard 100% + traceparent",
        True,
        "bare-tp",
        lambda w, s: build_sloguard(w, s, sample_ratio=1.0, name="sloguard-100-tp"),
    ),
    Variant("peer-tp", "(d) peer + traceparent", True, "bare-tp", lambda w, s: build_peer(s)),
    _without("tracing", {"tracing": {"enabled": False}}),
    _without("metrics", {"metrics": {"enabled": False}}),
    _without("access-log", {"logging": {"access_log": False}}),
    _without("sli", {"sli": {"enabled": False}}),
)
_BY_NAME = {v.name: v for v in VARIANTS}
_HTTP_REQUEST = {"type": "http.request", "body": b"", "more_body": False}


def request_scopes(*, traceparent: bool, distinct: int = DISTINCT_IDS) -> list[dict[str, Any]]:
    """Prebuilt HTTP scopes for ``GET /items/<id>``, one per id (trace ids are seeded)."""
    rng = random.Random(20240601)
    scopes = []
    for index in range(distinct):
        path = ITEM_ROUTE.replace("{item_id}", str(index))
        headers = [
            (b"host", b"127.0.0.1:8000"),
            (b"user-agent", USER_AGENT),
            (b"accept", b"*/*"),
            (b"accept-encoding", b"gzip, deflate"),
        ]
        if traceparent:
            trace_id = rng.getrandbits(128) | 1
            span_id = rng.getrandbits(64) | 1
            headers.append((b"traceparent", f"00-{trace_id:032x}-{span_id:016x}-01".encode()))
        scopes.append(
            {
                "type": "http",
                "asgi": {"version": "3.0", "spec_version": "2.3"},
                "http_version": "1.1",
                "method": "GET",
                "scheme": "http",
                "path": path,
                "raw_path": path.encode(),
                "query_string": b"",
                "root_path": "",
                "headers": headers,
                "client": ("127.0.0.1", 50_000 + index),
                "server": ("127.0.0.1", 8000),
            }
        )
    return scopes


async def _receive() -> dict[str, Any]:
    return _HTTP_REQUEST


async def _discard(message: dict[str, Any]) -> None:
    return None


async def drive(
    app: Callable[..., Any],
    scopes: list[dict[str, Any]],
    count: int,
    send: Callable[[dict[str, Any]], Any] = _discard,
) -> int:
    """Await ``app`` ``count`` times in sequence; nanoseconds taken."""
    n = len(scopes)
    start = time.perf_counter_ns()
    for i in range(count):
        base = scopes[i % n]
        scope = base.copy()
        scope["headers"] = base["headers"].copy()
        await app(scope, _receive, send)
    return time.perf_counter_ns() - start


class VariantRun:
    """One variant built in this process, timed round by round on one asyncio loop."""

    def __init__(self, name: str, requests: int = REQUESTS) -> None:
        self.variant = _BY_NAME[name]
        self.requests = requests
        self.rounds = 0
        self._sink = io.StringIO()
        self._scopes = request_scopes(traceparent=self.variant.traceparent)
        self._tmp = tempfile.TemporaryDirectory(prefix="sloguard-bench-")
        self._workdir = Path(self._tmp.name)
        self._runner = asyncio.Runner()
        self.built = self.variant.build(self._workdir, self._sink)

    def round(self, send: Callable[[dict[str, Any]], Any] = _discard) -> tuple[float, int]:
        """Time ``requests`` requests: (us per request, access-log lines written)."""
        self._sink.seek(0)
        self._sink.truncate()
        gc.collect()
        elapsed = self._runner.run(drive(self.built.app, self._scopes, self.requests, send))
        self.rounds += 1
        return elapsed / self.requests / 1000, self._sink.getvalue().count("\n")

    def finish(self) -> dict[str, Any]:
        """Close the stack; the counters that show it did its work."""
        try:
            spans = self.built.spans_exported()
            continued = self.built.exporter.continued if self.built.exporter else 0
            counted = self.built.requests_counted()
            self.built.close()
            self._runner.close()
            sli = (
                stored_sli_total(self._workdir) if self.built.name.startswith("sloguard") else None
            )
        finally:
            self._tmp.cleanup()
        return {
            "requests_total": self.requests * self.rounds,
            "spans_exported": spans,
            "spans_continuing_remote_parent": continued,
            "metrics_requests_counted": counted,
            "sli_requests_stored": sli,
        }


def _summary(name: str, requests: int, rounds_us: list[float], lines: list[int]) -> dict[str, Any]:
    variant = _BY_NAME[name]
    return {
        "variant": name,
        "label": variant.label,
        "traceparent": variant.traceparent,
        "baseline": variant.baseline,
        "group": variant.group,
        "requests_per_round": requests,
        "rounds": len(rounds_us),
        "rounds_us": rounds_us,
        "median_us": statistics.median(rounds_us),
        "min_us": min(rounds_us),
        "max_us": max(rounds_us),
        "access_log_lines_per_round": lines,
    }


def measure(name: str, requests: int = REQUESTS, rounds: int = ROUNDS) -> dict[str, Any]:
    """A warm-up round plus ``rounds`` timed rounds of one variant, in this process."""
    run = VariantRun(name, requests)
    run.round()  # warm-up
    timed = [run.round() for _ in range(rounds)]
    summary = _summary(name, requests, [us for us, _ in timed], [n for _, n in timed])
    return {**summary, **run.finish()}


def _Child(name: str, requests: int) -> BenchChild:  # noqa: N802 - reads as the class it builds
    """A variant served by ``python -m benchmarks.observe serve``."""
    return BenchChild(name, "benchmarks.observe", ["serve", name, f"--requests={requests}"])


def measure_interleaved(
    names: list[str],
    requests: int = REQUESTS,
    rounds: int = ROUNDS,
    progress: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:
    """Every variant in its own interpreter, rounds interleaved across variants.

    Round ``r`` runs one round of each variant, starting at a rotating offset,
    so load from anything else on the machine falls on every variant alike.
    Round 0 is the warm-up and is not reported.
    """
    children = [_Child(name, requests) for name in names]
    try:
        for child in children:
            child.ask("")
        timed: dict[str, list[tuple[float, int]]] = {name: [] for name in names}
        for index in range(rounds + 1):
            progress(f"observe: round {index}/{rounds}" + (" (warm-up)" if index == 0 else ""))
            offset = index % len(children)
            for child in children[offset:] + children[:offset]:
                answer = child.ask("round")
                if index:
                    timed[child.name].append((answer["us"], answer["lines"]))
        results = {}
        for child in children:
            counters = child.ask("finish")
            rounds_us = [us for us, _ in timed[child.name]]
            summary = _summary(child.name, requests, rounds_us, [n for _, n in timed[child.name]])
            results[child.name] = {**summary, **counters}
        return results
    finally:
        for child in children:
            child.close()


def _serve(name: str, requests: int) -> None:
    """The child side of :class:`_Child`: build, then answer 'round' and 'finish'."""
    protocol, sys.stdout = sys.stdout, sys.stderr
    run = VariantRun(name, requests)

    def answer(value: dict[str, Any]) -> None:
        protocol.write(json.dumps(value) + "\n")
        protocol.flush()

    answer({"ready": name})
    for line in sys.stdin:
        command = line.strip()
        if command == "round":
            us, lines = run.round()
            answer({"us": us, "lines": lines})
        elif command == "finish":
            answer(run.finish())
            return


def sli_record_cost(number: int = 200_000, repeat: int = 7) -> dict[str, Any]:
    """ns per ``SLIRecorder.record`` call with 3 SLOs (one availability, two latency)."""
    from sloguard.sli import SLIRecorder
    from sloguard.slo.spec import SLOSpec

    slos = [
        SLOSpec(name="avail"),
        SLOSpec.model_validate({"name": "fast", "kind": "latency", "threshold_ms": 100}),
        SLOSpec.model_validate({"name": "ok", "kind": "latency", "threshold_ms": 1000}),
    ]
    recorder = SLIRecorder(slos)
    timer = timeit.Timer(
        "record(route, 'GET', 200, 0.0123, None, now)",
        globals={"record": recorder.record, "route": ITEM_ROUTE, "now": time.time()},
    )
    timer.timeit(number // 10)  # warm the classifier cache
    runs = [t / number * 1e9 for t in timer.repeat(repeat=repeat, number=number)]
    recorder.drain()
    return {
        "slos": len(slos),
        "number": number,
        "repeat": repeat,
        "runs_ns": runs,
        "median_ns": statistics.median(runs),
        "min_ns": min(runs),
        "goal_ns": SLI_RECORD_GOAL_NS,
        "met": statistics.median(runs) <= SLI_RECORD_GOAL_NS,
    }


def json_formatter_cost(number: int = 20_000, repeat: int = 5) -> dict[str, Any]:
    """ns per ``format()`` of one access-log record: sloguard's vs python-json-logger's."""
    from pythonjsonlogger.json import JsonFormatter as PeerJsonFormatter

    from sloguard.telemetry.logging import JsonFormatter

    record = logging.LogRecord(
        "access", logging.INFO, __file__, 1, "%s %s %d", ("GET", "/items/7", 200), None
    )
    fields = {
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": "b7ad6b7169203331",
        "request_id": "7b46e68c37197ef91f4bc7c284386444",
        "correlation_id": "7b46e68c37197ef91f4bc7c284386444",
        "route": ITEM_ROUTE,
        "http_method": "GET",
        "path": "/items/7",
        "status": 200,
        "duration_ms": 0.327,
        "response_bytes": 6,
        "client": "127.0.0.1",
        "user_agent": USER_AGENT.decode(),
    }
    record.__dict__.update(fields)
    formatters = {
        "sloguard": JsonFormatter(static_fields={"service": "bench"}),
        "python-json-logger": PeerJsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(correlation_id)s",
            static_fields={"service": "bench"},
        ),
    }
    result: dict[str, Any] = {"number": number, "repeat": repeat}
    for label, formatter in formatters.items():
        timer = timeit.Timer(lambda f=formatter: f.format(record))  # type: ignore[misc]
        runs = [t / number * 1e9 for t in timer.repeat(repeat=repeat, number=number)]
        result[label] = {"runs_ns": runs, "median_ns": statistics.median(runs)}
    result["speedup"] = result["python-json-logger"]["median_ns"] / result["sloguard"]["median_ns"]
    return result


def profile_variant(
    name: str, requests: int = REQUESTS, top: int = PROFILE_TOP
) -> dict[str, list[dict[str, Any]]]:
    """cProfile of ``requests`` requests after a warm-up; top entries by cumulative and own time."""
    variant = _BY_NAME[name]
    sink = io.StringIO()
    scopes = request_scopes(traceparent=variant.traceparent)
    profiler = cProfile.Profile()
    with tempfile.TemporaryDirectory(prefix="sloguard-bench-") as tmp:
        built = variant.build(Path(tmp), sink)

        async def profiled() -> None:
            await drive(built.app, scopes, requests // 4)
            sink.seek(0)
            sink.truncate()
            profiler.enable()
            await drive(built.app, scopes, requests)
            profiler.disable()

        asyncio.run(profiled())
        built.close()
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]
    rows = [
        {
            "function": _where(key),
            "ncalls": calls,
            "tottime_us_per_request": own / requests * 1e6,
            "cumtime_us_per_request": cumulative / requests * 1e6,
        }
        for key, (_, calls, own, cumulative, _) in entries.items()
    ]
    by = {
        "cumulative": sorted(rows, key=lambda r: r["cumtime_us_per_request"], reverse=True)[:top],
        "tottime": sorted(rows, key=lambda r: r["tottime_us_per_request"], reverse=True)[:top],
    }
    return {"variant": name, "requests": requests, **by}  # type: ignore[dict-item]


def _where(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    for marker in ("site-packages/", "/src/", "/lib/python3.11/", str(ROOT) + "/"):
        if marker in filename:
            filename = filename.split(marker, 1)[1]
            break
    return f"{filename}:{line}({function})" if line else function


def _run_child(command: list[str], timeout_s: float) -> None:
    done = subprocess.run(
        command,
        cwd=ROOT,
        env=bench_environment(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")


def _profile_in_subprocess(name: str, requests: int, top: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        command = [
            sys.executable,
            "-m",
            "benchmarks.observe",
            "profile",
            name,
            f"--requests={requests}",
            f"--top={top}",
            f"--out={out.name}",
        ]
        _run_child(command, 240)
        result: dict[str, Any] = json.loads(Path(out.name).read_text())
    return result


def run(*, quick: bool = False, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """The whole in-process benchmark: every variant, the microbenchmarks, a profile of (b)."""
    requests = 2_000 if quick else REQUESTS
    rounds = 3 if quick else ROUNDS
    progress(
        f"observe: {len(VARIANTS)} variants, {rounds} rounds + 1 warm-up, "
        f"{requests} requests each, interleaved"
    )
    variants = measure_interleaved([v.name for v in VARIANTS], requests, rounds, progress)
    for result in variants.values():
        base = variants[result["baseline"]]
        result["overhead_us"] = result["median_us"] - base["median_us"]
        result["overhead_min_us"] = result["min_us"] - base["min_us"]
    full = variants["sloguard-100"]
    for result in variants.values():
        if result["group"] == "part":
            result["part_cost_us"] = full["median_us"] - result["median_us"]
            result["part_share_of_overhead"] = result["part_cost_us"] / full["overhead_us"]
    goals = [
        _ratio_goal(variants, "sloguard-100", "peer"),
        _ratio_goal(variants, "sloguard-100-tp", "peer-tp"),
    ]
    progress("observe: SLIRecorder.record microbenchmark")
    sli = sli_record_cost(number=20_000 if quick else 200_000)
    progress("observe: JSON formatter microbenchmark")
    formatter = json_formatter_cost(number=2_000 if quick else 20_000)
    progress("observe: profile of sloguard-100")
    profile = _profile_in_subprocess("sloguard-100", requests, PROFILE_TOP)
    return {
        "name": NAME,
        "fairness": FAIRNESS,
        "method": {
            "requests_per_round": requests,
            "rounds": rounds,
            "warmup_rounds": 1,
            "distinct_paths": DISTINCT_IDS,
            "timer": "time.perf_counter_ns",
            "statistic": "median of rounds (min also reported)",
            "isolation": (
                "Each variant runs in its own fresh interpreter (no global state shared); "
                "rounds are interleaved across variants with a rotating start, so background "
                "load falls on all alike; same scopes, one asyncio loop per variant, same "
                "request count; the median of the timed rounds after one warm-up round."
            ),
        },
        "variants": variants,
        "goals": goals,
        "sli_record": sli,
        "json_formatter": formatter,
        "profile": profile,
    }


def _ratio_goal(variants: dict[str, dict[str, Any]], ours: str, peer: str) -> dict[str, Any]:
    mine, theirs = variants[ours]["overhead_us"], variants[peer]["overhead_us"]
    ratio = mine / theirs if theirs > 0 else float("inf")
    ratio_min = (
        variants[ours]["overhead_min_us"] / variants[peer]["overhead_min_us"]
        if variants[peer]["overhead_min_us"] > 0
        else float("inf")
    )
    return {
        "goal": f"overhead({ours}) <= 1/3 overhead({peer})",
        "ours_us": mine,
        "peer_us": theirs,
        "ratio": ratio,
        "ratio_from_min_rounds": ratio_min,
        "limit": OVERHEAD_RATIO_GOAL,
        "met": ratio <= OVERHEAD_RATIO_GOAL,
    }


def _met(ok: bool) -> str:
    return "[green]met[/green]" if ok else "[red]not met[/red]"


def tables(result: dict[str, Any]) -> list[Table]:
    """The printed form of :func:`run`'s result."""
    method = result["method"]
    per_request = Table(
        title=(
            f"In-process ASGI cost per request (us), median of {method['rounds']} rounds x "
            f"{method['requests_per_round']} requests"
        )
    )
    for column in ("variant", "median", "min", "max", "overhead", "spans/req", "log lines/req"):
        per_request.add_column(column, justify="left" if column == "variant" else "right")
    compared = [v for v in result["variants"].values() if v.get("group", "compare") == "compare"]
    for v in compared:
        lines = v["access_log_lines_per_round"]
        per_request.add_row(
            v["label"],
            f"{v['median_us']:.1f}",
            f"{v['min_us']:.1f}",
            f"{v['max_us']:.1f}",
            "-" if v["baseline"] == v["variant"] else f"{v['overhead_us']:+.1f}",
            f"{v['spans_exported'] / v['requests_total']:.3f}",
            f"{min(lines) / v['requests_per_round']:.2f}",
        )
    full = result["variants"]["sloguard-100"]
    parts = Table(
        title=(
            f"Where (b)'s overhead of {full['overhead_us']:.1f} us goes: "
            "(b) with one part switched off"
        )
    )
    for column in ("variant", "median", "min", "max", "part costs", "share of (b) overhead"):
        parts.add_column(column, justify="left" if column == "variant" else "right")
    for v in result["variants"].values():
        if v.get("group") == "part":
            parts.add_row(
                v["label"],
                f"{v['median_us']:.1f}",
                f"{v['min_us']:.1f}",
                f"{v['max_us']:.1f}",
                f"{v['part_cost_us']:.1f}",
                f"{v['part_share_of_overhead']:.0%}",
            )
    goals = Table(title="Observe goals")
    for column in ("goal", "measured", "limit", "result"):
        goals.add_column(column)
    for goal in result["goals"]:
        goals.add_row(
            goal["goal"],
            f"{goal['ours_us']:.1f} / {goal['peer_us']:.1f} us = {goal['ratio']:.2f}"
            f" (from min rounds: {goal['ratio_from_min_rounds']:.2f})",
            f"<= {goal['limit']:.2f}",
            _met(goal["met"]),
        )
    sli = result["sli_record"]
    goals.add_row(
        f"SLIRecorder.record, {sli['slos']} SLOs",
        f"{sli['median_ns']:.0f} ns/call (min {sli['min_ns']:.0f})",
        f"<= {sli['goal_ns']:.0f} ns",
        _met(sli["met"]),
    )
    fmt = result["json_formatter"]
    formatter = Table(title="JSON access-log formatting, ns per record")
    for column in ("formatter", "median ns", "python-json-logger / sloguard"):
        formatter.add_column(column)
    formatter.add_row("sloguard JsonFormatter", f"{fmt['sloguard']['median_ns']:.0f}", "")
    formatter.add_row(
        "python-json-logger JsonFormatter",
        f"{fmt['python-json-logger']['median_ns']:.0f}",
        f"{fmt['speedup']:.2f}x",
    )
    profile = result["profile"]
    prof = Table(
        title=(
            f"cProfile of {profile['variant']}, {profile['requests']} requests, "
            f"top {len(profile['cumulative'])} by cumulative time (us per request)"
        )
    )
    for column in ("function", "ncalls", "cum us/req", "own us/req"):
        prof.add_column(column, justify="left" if column == "function" else "right")
    for row in profile["cumulative"]:
        prof.add_row(
            row["function"],
            str(row["ncalls"]),
            f"{row['cumtime_us_per_request']:.2f}",
            f"{row['tottime_us_per_request']:.2f}",
        )
    own = Table(title=f"cProfile of {profile['variant']}: top by own time (us per request)")
    for column in ("function", "ncalls", "own us/req", "cum us/req"):
        own.add_column(column, justify="left" if column == "function" else "right")
    for row in profile["tottime"]:
        own.add_row(
            row["function"],
            str(row["ncalls"]),
            f"{row['tottime_us_per_request']:.2f}",
            f"{row['cumtime_us_per_request']:.2f}",
        )
    return [per_request, goals, parts, formatter, prof, own]


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("action", choices=("measure", "profile", "serve"))
    parser.add_argument("variant", choices=sorted(_BY_NAME))
    parser.add_argument("--requests", type=int, default=REQUESTS)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--top", type=int, default=PROFILE_TOP)
    parser.add_argument("--out", type=Path, help="write JSON here (default: stdout)")
    args = parser.parse_args(argv)
    if args.action == "serve":
        _serve(args.variant, args.requests)
        return
    if args.action == "measure":
        result: dict[str, Any] = measure(args.variant, args.requests, args.rounds)
    else:
        result = profile_variant(args.variant, args.requests, args.top)
        if args.out is None:
            for row in result["cumulative"]:
                print(
                    f"{row['ncalls']:>8} {row['cumtime_us_per_request']:9.2f} "
                    f"{row['tottime_us_per_request']:9.2f}  {row['function']}"
                )
            return
    text = json.dumps(result, indent=2)
    if args.out is None:
        print(text)
    else:
        args.out.write_text(text)


if __name__ == "__main__":
    _main()
