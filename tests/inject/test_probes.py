"""The probe model: specs, target resolution, budgets, handlers and the manager."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from prometheus_client import CollectorRegistry

from sloguard.inject._probes import (
    BadTargetError,
    CostMeter,
    ProbeError,
    ProbeKind,
    ProbeManager,
    ProbeNotFound,
    ProbeSpec,
    ProbeState,
    resolve_target,
)
from sloguard.settings._inject_probes import ProbeSettings
from tests.inject.probeapp import targets

T = "tests.inject.probeapp.targets"
MECHANISMS = [
    pytest.param("codepatch", id="codepatch"),
    pytest.param(
        "monitoring",
        id="monitoring",
        marks=pytest.mark.skipif(sys.version_info < (3, 12), reason="sys.monitoring needs 3.12+"),
    ),
]


class Rig:
    def __init__(self, settings: ProbeSettings, clock_step: int = 0) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.registry = CollectorRegistry()
        self.now = 0
        self.clock_step = clock_step
        self.manager = ProbeManager(
            settings, tracer_provider=provider, registry=self.registry, clock=self._clock
        )

    def _clock(self) -> int:
        self.now += self.clock_step
        return self.now

    def count(self, target: str, outcome: str) -> float | None:
        labels = {"target": target, "outcome": outcome}
        return self.registry.get_sample_value("sloguard_probe_calls_total", labels)


@pytest.fixture(params=MECHANISMS)
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    rig = Rig(ProbeSettings(mechanism=request.param))
    yield rig
    rig.manager.close()


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("myapp.db.Repo.get", id="no-colon"),
        pytest.param("myapp:", id="no-qualname"),
        pytest.param("my-app:get", id="dash"),
        pytest.param("myapp:Repo.<locals>.get", id="locals"),
    ],
)
def test_a_malformed_target_is_refused_with_the_expected_shape(target: str) -> None:
    with pytest.raises(BadTargetError, match="module:qualname"):
        ProbeSpec(target, ProbeKind.SPAN)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        pytest.param({"target": 3}, "target", id="target-type"),
        pytest.param({"target": f"{T}:add", "kind": "trace"}, "kind", id="kind"),
        pytest.param({"target": f"{T}:add", "budget_ns": "fast"}, "budget_ns", id="budget"),
        pytest.param({"target": f"{T}:add", "capture_args": "yes"}, "capture_args", id="flag"),
        pytest.param({"target": f"{T}:add", "colour": "red"}, "colour", id="unknown"),
    ],
)
def test_a_bad_request_field_is_named(data: dict[str, object], field: str) -> None:
    with pytest.raises(ProbeError, match=field):
        ProbeSpec.from_dict(data)


@pytest.mark.parametrize(
    ("qualname", "expected"),
    [
        pytest.param("Repo.get", targets.Repo.get, id="method"),
        pytest.param("Repo.norm", targets.Repo.__dict__["norm"].__func__, id="staticmethod"),
        pytest.param("Repo.build", targets.Repo.__dict__["build"].__func__, id="classmethod"),
        pytest.param("Repo.size", targets.Repo.__dict__["size"].fget, id="property"),
        pytest.param("decorated", targets.decorated.__wrapped__, id="unwraps-decorator"),
        pytest.param("counter", targets.counter, id="closure"),
    ],
)
def test_targets_resolve_to_the_function_that_runs(qualname: str, expected: object) -> None:
    assert resolve_target(f"{T}:{qualname}") is expected


@pytest.mark.parametrize(
    ("target", "message"),
    [
        pytest.param("json.nothere:dumps", "not imported", id="not-imported"),
        pytest.param(f"{T}:Repo.missing", "'missing' not found", id="missing"),
        pytest.param("math:sqrt", "not a Python function", id="builtin"),
        pytest.param("sloguard.inject._probes:resolve_target", "sloguard's own", id="ourselves"),
    ],
)
def test_unresolvable_targets_say_why(target: str, message: str) -> None:
    with pytest.raises(BadTargetError, match=message):
        resolve_target(target)


def test_importing_a_module_happens_only_when_allowed() -> None:
    sys.modules.pop("tests.inject.probeapp.lazy", None)
    with pytest.raises(BadTargetError, match="not imported"):
        resolve_target("tests.inject.probeapp.lazy:anything")
    with pytest.raises(BadTargetError, match="cannot import"):
        resolve_target("tests.inject.probeapp.lazy:anything", allow_import=True)


def test_cost_meter_judges_once_a_window_of_samples_is_in() -> None:
    meter = CostMeter(budget_ns=1000, window=4)
    meter.add_enter(700)
    verdicts = [meter.add_exit(400) for _ in range(4)]
    assert verdicts == [False, False, False, True]
    assert meter.last_ns == 1100


def test_cost_meter_under_budget_stays_quiet() -> None:
    meter = CostMeter(budget_ns=1000, window=2)
    meter.add_enter(100)
    assert [meter.add_exit(100), meter.add_exit(100)] == [False, False]
    assert meter.last_ns == 200


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_a_probe_over_budget_detaches_itself_and_says_so(
    mechanism: str, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(ProbeSettings(mechanism=mechanism, sample_every=1), clock_step=5_000)
    original = targets.add.__code__
    info = rig.manager.add(ProbeSpec(f"{T}:add", ProbeKind.METRIC, budget_ns=1_000))
    for n in range(40):
        targets.add(n)
    (listed,) = rig.manager.list()
    assert (listed.state, listed.calls) == (ProbeState.DISABLED, 16)
    assert "measured 10000 ns per call, budget 1000 ns" in listed.reason
    assert targets.add.__code__ is original
    assert f"probe {info.id} on {T}:add disabled itself" in caplog.text


def test_span_probe_records_a_span_per_call_without_becoming_current(rig: Rig) -> None:
    rig.manager.add(ProbeSpec(f"{T}:Repo.get", ProbeKind.SPAN, capture_args=True))
    targets.Repo().get("k", password="hunter2")
    (span,) = rig.exporter.get_finished_spans()
    assert span.name == "Repo.get"
    assert span.attributes is not None
    assert span.attributes["code.arg.key"] == "'k'"
    assert span.attributes["code.arg.password"] == "[REDACTED]"


def test_span_probe_marks_a_failed_call(rig: Rig) -> None:
    rig.manager.add(ProbeSpec(f"{T}:fail", ProbeKind.SPAN))
    with pytest.raises(ValueError):
        targets.fail("no")
    (span,) = rig.exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [event.name for event in span.events] == ["exception"]


def test_metric_probe_counts_calls_by_outcome(rig: Rig) -> None:
    rig.manager.add(ProbeSpec(f"{T}:fail", ProbeKind.METRIC))
    for _ in range(3):
        with pytest.raises(ValueError):
            targets.fail("no")
    assert (rig.count(f"{T}:fail", "error"), rig.count(f"{T}:fail", "ok")) == (3.0, 0.0)


def test_log_probe_redacts_and_limits_arguments(caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(ProbeSettings(max_arg_chars=24, max_log_bytes=64))
    rig.manager.add(ProbeSpec(f"{T}:shaped", ProbeKind.LOG, capture_args=True))
    with caplog.at_level(logging.INFO, logger="sloguard.probe.calls"):
        targets.shaped("Bearer abcdefghijkl", {"api_key": "k", "n": 1}, c="x" * 100, z=9)
    rig.manager.close()
    (record,) = [r for r in caplog.records if r.name == "sloguard.probe.calls"]
    args = record.probe_args  # type: ignore[attr-defined]
    assert args["a"] == "'Bearer [REDACTED]'"
    assert args["b"] == "{'api_key': '[REDACTED]…"  # cut at max_arg_chars
    assert args["…"] == "3 more argument(s) over max_bytes"


def test_a_failing_handler_disables_its_probe_and_the_call_still_works(rig: Rig) -> None:
    rig.manager.add(ProbeSpec(f"{T}:add", ProbeKind.SPAN))
    rig.manager._probes["p1"]._handler = None  # type: ignore[assignment]
    assert targets.add(2) == 3
    (listed,) = rig.manager.list()
    assert listed.state is ProbeState.DISABLED
    assert "handler failed in enter" in listed.reason


def test_remove_by_target_removes_every_probe_on_it(rig: Rig) -> None:
    original = targets.add.__code__
    rig.manager.add(ProbeSpec(f"{T}:add", ProbeKind.SPAN))
    rig.manager.add(ProbeSpec(f"{T}:add", ProbeKind.METRIC))
    removed = rig.manager.remove(f"{T}:add")
    assert [info.state for info in removed] == [ProbeState.REMOVED] * 2
    assert (rig.manager.list(), targets.add.__code__ is original) == ([], True)
    with pytest.raises(ProbeNotFound, match="no probe"):
        rig.manager.remove(f"{T}:add")


def test_the_number_of_probes_is_capped() -> None:
    manager = ProbeManager(ProbeSettings(max_probes=1))
    manager.add(ProbeSpec(f"{T}:add", ProbeKind.METRIC))
    try:
        with pytest.raises(ProbeError, match="at most 1 probes"):
            manager.add(ProbeSpec(f"{T}:add", ProbeKind.METRIC))
    finally:
        manager.close()


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="checks the message on Python < 3.12")
def test_asking_for_monitoring_before_312_says_it_needs_312() -> None:
    manager = ProbeManager()
    with pytest.raises(ProbeError, match=r"needs Python 3\.12\+"):
        manager.add(ProbeSpec(f"{T}:add", ProbeKind.METRIC, mechanism="monitoring"))
