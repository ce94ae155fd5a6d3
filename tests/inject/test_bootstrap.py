"""The bootstrap: once per interpreter, optional parts reported, never crashing the program."""

from __future__ import annotations

import json
import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from sloguard.inject import _bootstrap
from sloguard.inject._explain import REPORT, Entry, Outcome
from sloguard.settings import Settings
from tests.harness.otlp import OtlpHttpReceiver
from tests.inject.sloguard_run import run_python, sloguard_env


@pytest.fixture(autouse=True)
def _clean_report() -> Iterator[None]:
    REPORT.clear()
    yield
    REPORT.clear()


def fake_part(monkeypatch: pytest.MonkeyPatch, name: str, **functions: object) -> None:
    module = types.ModuleType(name)
    for attribute, value in functions.items():
        setattr(module, attribute, value)
    monkeypatch.setitem(sys.modules, name, module)


def test_a_part_that_is_not_there_is_skipped_with_the_reason() -> None:
    _bootstrap._install_part("probes", "sloguard.inject._absent_part", "start", Settings())
    assert REPORT.entries() == (
        Entry(
            Outcome.SKIPPED,
            "probes",
            "sloguard.inject._absent_part is not available in this sloguard",
        ),
    )


def test_a_part_whose_dependency_is_missing_is_a_failure(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "tests_part_needs_dep.py").write_text("import tests_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    _bootstrap._install_part("tasks", "tests_part_needs_dep", "install", Settings())
    [entry] = REPORT.entries()
    assert entry.outcome is Outcome.FAILED
    assert "No module named 'tests_missing_dependency'" in entry.detail


def test_a_part_gets_the_settings_and_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    fake_part(monkeypatch, "tests_part_ok", install=lambda *args: calls.append(args))
    settings = Settings()
    _bootstrap._install_part("tasks", "tests_part_ok", "install", settings)
    assert calls == [(settings, REPORT)]


def test_trace_selectors_are_passed_first(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    fake_part(monkeypatch, "tests_part_trace", install_tracing=lambda *args: calls.append(args))
    settings = Settings.model_validate({"inject": {"trace": {"selectors": ["app.db:*"]}}})
    _bootstrap._install_part("trace", "tests_part_trace", "install_tracing", settings)
    assert calls == [(("app.db:*",), settings, REPORT)]


def test_a_part_that_raises_is_reported_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    def install(*args: object) -> None:
        raise ValueError("no port")

    fake_part(monkeypatch, "tests_part_raises", install=install)
    _bootstrap._install_part("probes", "tests_part_raises", "install", Settings())
    assert REPORT.entries() == (
        Entry(Outcome.FAILED, "probes", "install raised ValueError: no port"),
    )


def test_bootstrap_runs_once_per_interpreter() -> None:
    code = textwrap.dedent("""
        from sloguard.inject import _bootstrap
        first = _bootstrap.bootstrap()
        print(_bootstrap.bootstrap() is first, _bootstrap.active())
    """)
    result = run_python(code, sloguard_env())
    assert result.stdout.split() == ["True", "True"], result.stderr


def test_bad_settings_leave_the_program_running_uninstrumented(tmp_path: Path) -> None:
    env = sloguard_env(extra={"SLOGUARD_TRACING__SAMPLE_RATIO": "7"})
    result = run_python("print('still here')", env)
    assert result.returncode == 0
    assert result.stdout == "still here\n"
    [line] = result.stderr.splitlines()
    assert line.startswith("sloguard: bootstrap failed, running uninstrumented: ConfigError")
    assert "SLOGUARD_TRACING__SAMPLE_RATIO" in line


def test_inject_disabled_sets_nothing_up() -> None:
    code = "from opentelemetry import trace; print(type(trace.get_tracer_provider()).__name__)"
    result = run_python(code, sloguard_env({"SLOGUARD_INJECT__ENABLED": False}))
    assert result.stdout.strip() == "ProxyTracerProvider", result.stderr


FORKING = textwrap.dedent("""
    import os, sys
    from opentelemetry import trace
    pid = os.fork()
    with trace.get_tracer("t").start_as_current_span("child" if pid == 0 else "parent"):
        pass
    if pid == 0:
        sys.exit(0)  # a normal exit, like a gunicorn worker's
    os.waitpid(pid, 0)
""")


def test_a_forked_child_exports_its_own_spans(otlp_http_receiver: OtlpHttpReceiver) -> None:
    env = sloguard_env(
        {
            "SLOGUARD_TRACING__EXPORTER": "otlp-http",
            "SLOGUARD_TRACING__OTLP_ENDPOINT": otlp_http_receiver.endpoint,
        }
    )
    result = run_python(FORKING, env)
    assert result.returncode == 0, result.stderr
    ours = {"child", "parent"}
    spans = otlp_http_receiver.wait_for(lambda span: span.name in ours, count=2, timeout=10)
    assert sorted(span.name for span in spans) == ["child", "parent"]


def test_every_process_appends_its_report_to_the_explain_file(tmp_path: Path) -> None:
    report = tmp_path / "explain.jsonl"
    result = run_python(FORKING, sloguard_env({"SLOGUARD_INJECT__EXPLAIN_FILE": str(report)}))
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert len({line["pid"] for line in lines}) == 2
    assert {
        "outcome": "instrumented",
        "target": "tracing",
        "detail": "global tracer provider, exporter none",
    } in lines[0]["entries"]
