"""The import hook: selected modules are rewritten at import, never cached, reported."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sloguard.inject import _hooks
from sloguard.inject._explain import Outcome
from sloguard.inject._rewrite_loader import TracingLoader, never_traced
from sloguard.inject._traced import is_traced
from tests.inject.tracing_harness import traced_imports

APP = """
def handle(x):
    return helper(x) + 1


def helper(x):
    return x * 2


class Repo:
    def get(self, key):
        return key
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Iterator[Path]:
    """A package ``rwapp`` on sys.path (module ``rwapp.api``); forgotten afterwards."""
    package = tmp_path / "rwapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "api.py").write_text(APP)
    sys.path.insert(0, str(tmp_path))
    yield package
    sys.path.remove(str(tmp_path))
    for name in [n for n in sys.modules if n == "rwapp" or n.startswith("rwapp.")]:
        del sys.modules[name]
    importlib.invalidate_caches()


def test_only_the_selected_functions_are_wrapped(app_dir: Path) -> None:
    with traced_imports(["rwapp.api:Repo.*"]) as traced:
        api = traced.load("rwapp.api")
        assert api.handle(2) == 5
        assert api.Repo().get("k") == "k"
    assert traced.names() == ["rwapp.api.Repo.get"]
    assert not is_traced(api.handle)


def test_the_module_uses_the_tracing_loader_and_its_real_file(app_dir: Path) -> None:
    with traced_imports(["rwapp.*:*"]) as traced:
        api = traced.load("rwapp.api")
    assert isinstance(api.__loader__, TracingLoader)
    assert api.__file__ == str(app_dir / "api.py")
    assert api.handle.__wrapped__.__code__.co_filename == str(app_dir / "api.py")


def test_rewritten_bytecode_is_never_cached(app_dir: Path) -> None:
    with traced_imports(["rwapp.*:*"]) as traced:
        traced.load("rwapp.api")
    assert not list(app_dir.glob("__pycache__/api.*.pyc"))
    untraced = importlib.import_module("rwapp.api")  # writes the plain .pyc
    assert not is_traced(untraced.handle)
    del sys.modules["rwapp.api"]
    with traced_imports(["rwapp.*:*"]) as traced:
        assert is_traced(traced.load("rwapp.api").handle)


def test_the_report_lists_what_was_rewritten(app_dir: Path) -> None:
    with traced_imports(["rwapp.*:*"]) as traced:
        traced.load("rwapp.api")
    details = {
        e.target: e.detail for e in traced.report.entries() if e.outcome is Outcome.INSTRUMENTED
    }
    assert (
        details["rwapp.api"]
        == "AST rewrite at import: 3 functions traced (handle, helper, Repo.get)"
    )


def test_modules_imported_before_install_are_reported_skipped(app_dir: Path) -> None:
    importlib.import_module("rwapp.api")
    with traced_imports(["rwapp.*:*"]) as traced:
        api = traced.load("rwapp.api")
    assert not is_traced(api.handle)
    skipped = {e.target: e.detail for e in traced.report.entries() if e.outcome is Outcome.SKIPPED}
    assert skipped["rwapp.api"] == "imported before the bootstrap ran; not rewritten"


def test_a_named_module_with_no_matching_def_is_reported(app_dir: Path) -> None:
    with traced_imports(["rwapp.api:nothing_here"]) as traced:
        traced.load("rwapp.api")
    skipped = {e.target: e.detail for e in traced.report.entries() if e.outcome is Outcome.SKIPPED}
    assert skipped["rwapp.api"] == "no def matched the qualname globs nothing_here"


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        pytest.param("sloguard.asgi", True, id="sloguard"),
        pytest.param("opentelemetry.trace", True, id="opentelemetry"),
        pytest.param("json.decoder", True, id="stdlib"),
        pytest.param("rwapp.api", False, id="application"),
    ],
)
def test_sloguard_opentelemetry_and_the_stdlib_are_never_traced(
    module: str, expected: bool
) -> None:
    assert never_traced(module) is expected


def test_a_syntax_error_is_raised_against_the_real_file(app_dir: Path) -> None:
    (app_dir / "broken.py").write_text("def broken(:\n    pass\n")
    with traced_imports(["rwapp.*:*"]) as traced, pytest.raises(SyntaxError) as caught:
        traced.load("rwapp.broken")
    assert caught.value.filename == str(app_dir / "broken.py")


def test_post_import_hooks_still_fire_on_a_rewritten_module(app_dir: Path) -> None:
    seen: list[bool] = []
    _hooks.install()
    try:
        _hooks.when_imported("rwapp.api", lambda module: seen.append(is_traced(module.handle)))
        with traced_imports(["rwapp.*:*"]) as traced:
            _hooks.install()  # first again, as the bootstrap does
            traced.load("rwapp.api")
    finally:
        _hooks.uninstall()
    assert seen == [True]


def test_a_traced_module_run_with_a_minimum_duration_emits_only_slow_calls(app_dir: Path) -> None:
    with traced_imports(["rwapp.*:*"], min_duration_ms=1000.0) as traced:
        api = traced.load("rwapp.api")
        assert api.handle(1) == 3
    assert traced.names() == []


def test_a_traced_module_run_with_python_m_finds_the_tracing_runtime(app_dir: Path) -> None:
    import runpy

    (app_dir / "main.py").write_text("def run(x):\n    return x * 3\n\nRESULT = run(4)\n")
    with traced_imports(["rwapp.main:*"]) as traced:
        namespace = runpy.run_module("rwapp.main", run_name="__main__")
    assert namespace["RESULT"] == 12
    assert traced.names() == ["rwapp.main.run"]
