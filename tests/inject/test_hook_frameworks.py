"""The hooks' entry point: lazy, once per process, undoable, never breaking the application."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from sloguard.inject import _frameworks
from sloguard.inject._explain import Outcome, Report
from sloguard.inject._frameworks import Installation, all_hooks
from tests.inject.hookapps.starlette_apps import starlette_app
from tests.inject.hookapps.support import settings_for

REPO = Path(__file__).resolve().parents[2]
ORIGINAL_CALL = Starlette.__call__


def get(app: object, path: str) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://app.test") as client:
            return await client.get(path)

    return asyncio.run(go())


def test_hooks_import_nothing_and_guard_apps_whose_classes_come_later(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tests.inject.hookapps.late_import", str(tmp_path / "sli.db")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    report = json.loads(result.stdout)
    assert report["eager"] == []
    assert (report["starlette"], report["flask"]) == (True, True)


def test_install_is_once_per_process_and_uninstall_undoes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    imported = tuple(h for h in all_hooks() if h.module in sys.modules)
    monkeypatch.setattr(_frameworks, "all_hooks", lambda: imported)
    report = Report()
    _frameworks.install_framework_hooks(settings_for(tmp_path), report)
    try:
        _frameworks.install_framework_hooks(settings_for(tmp_path), report)
        assert Starlette.__call__ is not ORIGINAL_CALL
    finally:
        assert _frameworks.uninstall_framework_hooks() is True
    assert report.entries()[-1].detail == "hooks already installed in this process"
    assert Starlette.__call__ is ORIGINAL_CALL
    assert _frameworks.uninstall_framework_hooks() is False


def test_undone_installation_ignores_a_hook_that_fires_later(tmp_path: Path) -> None:
    installation = Installation(settings_for(tmp_path), Report())
    installation.undo()
    installation.install(tuple(h for h in all_hooks() if h.module == "starlette.applications"))
    assert Starlette.__call__ is ORIGINAL_CALL


def test_guard_that_fails_to_build_leaves_the_app_served(tmp_path: Path) -> None:
    report = Report()
    installation = Installation(settings_for(tmp_path), report, guard_options={"bogus": 1})
    installation.install(tuple(h for h in all_hooks() if h.module == "starlette.applications"))
    try:
        assert get(starlette_app(), "/items/2").text == "item 2"
    finally:
        installation.undo()
    (failed,) = [e for e in report.entries() if e.outcome is Outcome.FAILED]
    assert failed.target == "starlette.applications.Starlette instance"
    assert "bogus" in failed.detail


def test_hook_that_meets_an_unexpected_library_is_reported_failed(tmp_path: Path) -> None:
    report = Report()
    broken = _frameworks.Hook("starlette", "starlette.Nowhere", "starlette", lambda m, i: m.Nowhere)
    Installation(settings_for(tmp_path), report).install((broken,))
    (entry,) = report.entries()
    assert (entry.outcome, entry.target) == (Outcome.FAILED, "starlette.Nowhere")
    assert "AttributeError" in entry.detail
