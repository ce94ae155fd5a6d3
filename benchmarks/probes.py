"""What a live probe costs per call, in nanoseconds, by mechanism and Python version.

Each interpreter (the project's 3.11 venv, and ``.venv-3.12``/``.venv-3.13``
when they exist) runs :func:`measure` in a fresh process
(``python -c "import benchmarks.probes as b; b.measure(...)"``) and times
``target(1, 2)`` (a two-argument function returning a sum) in a loop of
``calls`` calls, ``rounds`` times, median per call:

* **bare** -- no probe;
* **no-op hook** -- the mechanism calling a hook that does nothing: the pure
  dispatch cost (a ``sys.monitoring`` callback pair, or the trampoline frame);
* **span / metric / log** through a :class:`ProbeManager` -- a span on an SDK
  ``TracerProvider`` without exporter, a prometheus counter + histogram, an
  INFO record handed to a ``NullHandler`` (arguments captured);
* **detached** -- after attach + detach; the code object is asserted to be the
  original one, so this is the bare function again;
* **unwind** -- an exception unwinding through an *unprobed* function while a
  monitoring probe is attached elsewhere (PY_UNWIND is a global event).

Every mechanism is set against the bare function of the same interpreter:
"overhead" is the difference. Run it alone with
``python -c "import benchmarks.probes as b; b.run(quick=True)"``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.table import Table

NAME = "probes"
ROOT = Path(__file__).resolve().parent.parent
INTERPRETERS = (("3.11", ".venv"), ("3.12", ".venv-3.12"), ("3.13", ".venv-3.13"))


def target(a: int, b: int) -> int:
    return a + b


def raiser() -> None:
    raise ValueError


def unwinding() -> None:
    raiser()


class NoopHook:
    wants_arguments = False

    def enter(self, read: Any, source: object) -> object:
        return None

    def exit(self, token: object, error: BaseException | None) -> None:
        return None


def _time(call: Callable[[], Any], calls: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds + 1):  # the first round warms up
        started = time.perf_counter_ns()
        for _ in range(calls):
            call()
        samples.append((time.perf_counter_ns() - started) / calls)
    return statistics.median(samples[1:])


def _unwind_once() -> None:
    with contextlib.suppress(ValueError):
        unwinding()


def measure(calls: int, rounds: int) -> dict[str, Any]:
    """This interpreter's row set: ns per call for every variant that exists here."""
    from opentelemetry.sdk.trace import TracerProvider
    from prometheus_client import CollectorRegistry

    from sloguard.inject._probe_codepatch import CodePatcher
    from sloguard.inject._probes import ProbeKind, ProbeManager, ProbeSpec
    from sloguard.settings._inject_probes import ProbeSettings

    calls_log = logging.getLogger("sloguard.probe.calls")
    calls_log.addHandler(logging.NullHandler())
    calls_log.setLevel(logging.INFO)
    calls_log.propagate = False
    original = target.__code__
    out: dict[str, Any] = {"python": sys.version.split()[0], "rows": {}}
    rows = out["rows"]
    call = lambda: target(1, 2)  # noqa: E731
    rows["bare"] = _time(call, calls, rounds)
    rows["unwind, no probe"] = _time(_unwind_once, calls, rounds)
    mechanisms = ["codepatch"]
    if sys.version_info >= (3, 12):
        mechanisms.insert(0, "monitoring")
    for mechanism in mechanisms:
        hook = NoopHook()
        if mechanism == "monitoring":
            from sloguard.inject._probe_monitoring import MonitoringMechanism

            engine: Any = MonitoringMechanism()
        else:
            engine = CodePatcher()
        engine.attach(target, hook)
        rows[f"{mechanism}: no-op hook"] = _time(call, calls, rounds)
        if mechanism == "monitoring":
            rows["monitoring: unwind through unprobed code"] = _time(_unwind_once, calls, rounds)
        engine.detach(target, hook)
        for kind in ProbeKind:
            manager = ProbeManager(
                ProbeSettings(mechanism=mechanism, budget_ns=10**9),
                tracer_provider=TracerProvider(),
                registry=CollectorRegistry(),
            )
            capture = kind is ProbeKind.LOG
            manager.add(ProbeSpec(f"{__name__}:target", kind, capture_args=capture))
            rows[f"{mechanism}: {kind.value} probe"] = _time(call, calls, rounds)
            manager.close()
        if target.__code__ is not original:
            raise AssertionError(f"{mechanism}: detaching did not restore the code object")
        rows[f"{mechanism}: detached"] = _time(call, calls, rounds)
    return out


def _interpreter(venv: str) -> Path | None:
    path = ROOT / venv / "bin" / "python"
    return path if path.exists() else None


def run(*, quick: bool = False, progress: Callable[[str], None] = print) -> dict[str, Any]:
    calls, rounds = (2_000, 3) if quick else (50_000, 7)
    result: dict[str, Any] = {
        "method": {"calls": calls, "rounds": rounds, "statistic": "median ns per call"},
        "interpreters": {},
        "skipped": {},
    }
    for version, venv in INTERPRETERS:
        python = _interpreter(venv)
        if python is None:
            result["skipped"][version] = f"{venv} does not exist (create it to measure {version})"
            continue
        progress(f"probes: measuring under Python {version}")
        code = (
            f"import json, benchmarks.probes as b; print(json.dumps(b.measure({calls}, {rounds})))"
        )
        done = subprocess.run(
            [str(python), "-c", code],
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            result["skipped"][version] = f"measurement failed: {done.stderr[-2000:]}"
            continue
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        bare = measured["rows"]["bare"]
        measured["overhead"] = {
            name: value - bare for name, value in measured["rows"].items() if name != "bare"
        }
        result["interpreters"][version] = measured
    return result


def tables(result: dict[str, Any]) -> list[Table]:
    method = result["method"]
    table = Table(
        title=f"Live probe cost per call, ns ({method['statistic']}, "
        f"{method['calls']:,} calls x {method['rounds']} rounds)"
    )
    versions = list(result["interpreters"])
    table.add_column("variant")
    for version in versions:
        table.add_column(f"{version} ns", justify="right")
        table.add_column(f"{version} overhead", justify="right")
    names: list[str] = []
    for measured in result["interpreters"].values():
        names.extend(name for name in measured["rows"] if name not in names)
    for name in names:
        cells = [name]
        for version in versions:
            measured = result["interpreters"][version]
            value = measured["rows"].get(name)
            extra = measured["overhead"].get(name)
            cells.append("-" if value is None else f"{value:,.0f}")
            cells.append("" if extra is None else f"{extra:+,.0f}")
        table.add_row(*cells)
    out = [table]
    if result["skipped"]:
        skipped = Table(title="Interpreters not measured")
        skipped.add_column("python")
        skipped.add_column("why")
        for version, why in result["skipped"].items():
            skipped.add_row(version, why)
        out.append(skipped)
    return out
