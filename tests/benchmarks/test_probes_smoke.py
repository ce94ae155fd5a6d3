"""The live-probe benchmark still runs, and every probe it times is attached and firing.

Speed is not asserted here (``make bench`` measures it); behaviour is: under
each interpreter, every timed call of a probed row reaches its hook or probe
(the no-op hook, one span, one counted metric call, one log record), no probe
is switched off by its budget mid-run, each runs on the mechanism its row
names (``sys.monitoring`` on 3.12+, code replacement everywhere), and
``run`` measures the interpreters that exist and says why it skipped the rest.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from prometheus_client import CollectorRegistry
from rich.console import Console

from benchmarks import probes
from sloguard.inject import _probes

CALLS, ROUNDS = 20, 1
TIMED = CALLS * (ROUNDS + 1)  # the first round warms up
KINDS = ("span", "metric", "log")


class _Counted(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1


def counted_measure(calls: int, rounds: int) -> dict[str, Any]:
    """``probes.measure`` with its hooks and probes counting what they saw (any interpreter)."""
    hooks: list[Any] = []
    managers: dict[str, dict[str, Any]] = {}

    class CountingHook(probes.NoopHook):
        def __init__(self) -> None:
            self.entered = 0
            hooks.append(self)

        def enter(self, read: Any, source: object) -> object:
            self.entered += 1
            return None

    class RecordedManager(_probes.ProbeManager):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            provider: TracerProvider = kwargs["tracer_provider"]
            self.spans: list[ReadableSpan] = []
            provider.add_span_processor(_SpanList(self.spans))
            self.metric_registry: CollectorRegistry = kwargs["registry"]
            super().__init__(*args, **kwargs)

        def close(self) -> None:
            (info,) = self.list()
            managers[f"{self.settings.mechanism}: {info.kind.value} probe"] = {
                "calls": info.calls,
                "state": info.state.value,
                "mechanism": info.mechanism,
                "spans": len(self.spans),
                "metric_calls": _metric_calls(self.metric_registry),
            }
            super().close()

    logs = _Counted()
    calls_log = logging.getLogger("sloguard.probe.calls")
    # measure() sets this logger up for a process of its own: put it back for the tests after
    saved = (calls_log.handlers[:], calls_log.level, calls_log.propagate)
    calls_log.addHandler(logs)
    try:
        with (
            mock.patch.object(probes, "NoopHook", CountingHook),
            mock.patch.object(_probes, "ProbeManager", RecordedManager),
        ):
            measured = probes.measure(calls, rounds)
    finally:
        calls_log.handlers[:], calls_log.level, calls_log.propagate = saved
    hooked = [hook.entered for hook in hooks]
    return {
        "rows": list(measured["rows"]),
        "hooks": hooked,
        "probes": managers,
        "logs": logs.records,
    }


class _SpanList(SpanProcessor):
    def __init__(self, spans: list[ReadableSpan]) -> None:
        self.spans = spans

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def _metric_calls(registry: CollectorRegistry) -> float:
    return sum(
        sample.value
        for family in registry.collect()
        if family.name == "sloguard_probe_calls"
        for sample in family.samples
        if sample.name == "sloguard_probe_calls_total"
    )


def _expected_rows(mechanisms: list[str]) -> list[str]:
    rows = ["bare", "unwind, no probe"]
    for mechanism in mechanisms:
        rows.append(f"{mechanism}: no-op hook")
        if mechanism == "monitoring":
            rows.append("monitoring: unwind through unprobed code")
        rows += [f"{mechanism}: {kind} probe" for kind in KINDS] + [f"{mechanism}: detached"]
    return rows


def _assert_every_timed_call_reached_its_probe(
    counted: dict[str, Any], mechanisms: list[str]
) -> None:
    assert counted["rows"] == _expected_rows(mechanisms)
    assert counted["hooks"] == [TIMED] * len(mechanisms)
    for mechanism in mechanisms:
        seen = {kind: counted["probes"][f"{mechanism}: {kind} probe"] for kind in KINDS}
        states = {kind: (p["calls"], p["state"], p["mechanism"]) for kind, p in seen.items()}
        assert states == dict.fromkeys(KINDS, (TIMED, "active", mechanism))
        assert (seen["span"]["spans"], seen["metric"]["metric_calls"]) == (TIMED, TIMED)
    assert counted["logs"] == TIMED * len(mechanisms)


def _interpreter(version: str) -> Path:
    venv = dict(probes.INTERPRETERS)[version]
    python = probes._interpreter(venv)
    if python is None:
        pytest.skip(f"{venv} does not exist (create it to smoke-test Python {version})")
    return python


@pytest.fixture(scope="module")
def quick() -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(probes, "INTERPRETERS", (("3.11", ".venv"), ("0.0", ".venv-missing")))
        return probes.run(quick=True, progress=lambda _: None)


def test_every_timed_call_reaches_its_probe_in_this_interpreter() -> None:
    here = ["monitoring", "codepatch"] if sys.version_info >= (3, 12) else ["codepatch"]
    _assert_every_timed_call_reached_its_probe(counted_measure(CALLS, ROUNDS), here)


@pytest.mark.parametrize("version", ["3.12", "3.13"])
def test_every_timed_call_reaches_its_monitoring_and_code_replacement_probe(version: str) -> None:
    code = (
        "import json; from tests.benchmarks.test_probes_smoke import counted_measure; "
        f"print(json.dumps(counted_measure({CALLS}, {ROUNDS})))"
    )
    done = subprocess.run(
        [str(_interpreter(version)), "-c", code],
        cwd=probes.ROOT, capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    counted = json.loads(done.stdout.strip().splitlines()[-1])
    _assert_every_timed_call_reached_its_probe(counted, ["monitoring", "codepatch"])


def test_run_measures_each_existing_interpreter_and_says_why_it_skipped_the_rest(
    quick: dict[str, Any],
) -> None:
    measured = quick["interpreters"]["3.11"]
    assert list(measured["rows"]) == _expected_rows(["codepatch"])
    bare = measured["rows"]["bare"]
    assert measured["overhead"] == {k: v - bare for k, v in measured["rows"].items() if k != "bare"}
    assert list(quick["skipped"]) == ["0.0"]
    assert ".venv-missing does not exist" in quick["skipped"]["0.0"]


def test_tables_print_every_row_and_the_skipped_interpreter(quick: dict[str, Any]) -> None:
    out = io.StringIO()
    for table in probes.tables(quick):
        Console(file=out, width=250).print(table)
    text = out.getvalue()
    assert all(row in text for row in _expected_rows(["codepatch"]))
    assert "Interpreters not measured" in text


def test_an_interpreter_whose_measurement_fails_is_reported_with_its_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "python"
    broken.write_text("#!/bin/sh\necho 'no module named benchmarks' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setattr(probes, "INTERPRETERS", (("0.1", ".venv-broken"),))
    monkeypatch.setattr(probes, "_interpreter", lambda venv: broken)
    result = probes.run(quick=True, progress=lambda _: None)
    assert result["interpreters"] == {}
    assert result["skipped"] == {"0.1": "measurement failed: no module named benchmarks\n"}
