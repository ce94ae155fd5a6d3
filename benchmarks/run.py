"""Run every sloguard benchmark, print one table per benchmark, write results/<name>.json.

``make bench`` runs ``.venv/bin/python benchmarks/run.py``. Each benchmark
module (``MODULES``) exposes ``NAME``, ``run(quick=..., progress=...)``
returning a JSON-able dict and ``tables(result)`` returning rich tables; this
script adds the machine description (Python, CPUs, platform, load average
before and after, package versions, commit) and writes the JSON to
``benchmarks/results/<NAME>.json`` (git-ignored).

    python benchmarks/run.py                 # everything, about 6 minutes on 2 cores
    python benchmarks/run.py --quick         # a fast pass to check the code still works
    python benchmarks/run.py --only observe  # one benchmark
    python benchmarks/run.py --only auth     # RBAC vs pycasbin, RS256 vs PyJWT, auth middleware
    python benchmarks/run.py --only slo_backtest  # 100 SLOs x 90 days x 4 tiers backtest
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
MODULES = (
    "observe",
    "e2e_wrk",
    "auth",
    "slo_backtest",
    "slo_status",
    "breaker",
    "breaker_shared",
    "limiter",
    "shedding",
    "inject_overhead",
    "probes",
    "inject_wrk",
)
PACKAGES = (
    "sloguard",
    "starlette",
    "uvicorn",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-asgi",
    "prometheus-client",
    "prometheus-fastapi-instrumentator",
    "asgi-correlation-id",
    "python-json-logger",
    "uvloop",
    "httptools",
    "PyJWT",
    "cryptography",
    "casbin",
    "pybreaker",
    "aiobreaker",
    "purgatory",
    "limits",
    "redis",
    "opentelemetry-distro",
    "opentelemetry-instrumentation-starlette",
)


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _commit() -> str | None:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def machine_info() -> dict[str, Any]:
    return {
        "python": sys.version,
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "packages": {name: _version(name) for name in PACKAGES},
        "commit": _commit(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run sloguard's benchmarks.")
    parser.add_argument("--quick", action="store_true", help="few requests, short runs")
    parser.add_argument("--only", choices=MODULES, action="append", help="run only these")
    args = parser.parse_args(argv)

    # Run as a script, sys.path[0] is benchmarks/; the package lives at the root.
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    sys.path.insert(0, str(ROOT))
    from rich.console import Console

    # Wide enough for the tables when the output is a log file or a pipe.
    console = Console(width=None if sys.stdout.isatty() else 150)
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in args.only or MODULES:
        module = importlib.import_module(f"benchmarks.{name}")
        before = machine_info()
        started = time.monotonic()
        result = module.run(quick=args.quick, progress=console.log)
        after_load = os.getloadavg() if hasattr(os, "getloadavg") else None
        result["machine"] = {**before, "load_average_after": after_load}
        result["quick"] = args.quick
        result["seconds"] = round(time.monotonic() - started, 1)
        path = RESULTS / f"{module.NAME}.json"
        path.write_text(json.dumps(result, indent=2, default=str) + "\n")
        for table in module.tables(result):
            console.print(table)
        console.print(
            f"{module.NAME}: {result['seconds']} s, load average {before['load_average']} -> "
            f"{after_load}; wrote {path.relative_to(ROOT)}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
