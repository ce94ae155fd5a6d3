"""Post-import hooks: callbacks after the first execution, once, never breaking an import."""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import threading
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from sloguard.inject import _hooks
from sloguard.inject._explain import REPORT, Outcome


@pytest.fixture
def modules(tmp_path: Path) -> Iterator[Path]:
    """A directory on sys.path for throw-away modules; hooks and report reset after."""
    sys.path.insert(0, str(tmp_path))
    before = set(sys.modules)
    _hooks.install()
    yield tmp_path
    _hooks.uninstall()
    REPORT.clear()
    sys.path.remove(str(tmp_path))
    for name in set(sys.modules) - before:
        del sys.modules[name]
    importlib.invalidate_caches()


def write(root: Path, name: str, body: str = "VALUE = 1\n") -> None:
    path = root.joinpath(*name.split("."))
    path.parent.mkdir(parents=True, exist_ok=True)
    for parent in path.relative_to(root).parents:
        if parent != Path("."):
            root.joinpath(parent, "__init__.py").touch()
    path.with_suffix(".py").write_text(body)


def test_callback_runs_after_the_module_executed(modules: Path) -> None:
    write(modules, "hk_plain")
    seen: list[int] = []
    _hooks.when_imported("hk_plain", lambda module: seen.append(module.VALUE))
    import hk_plain  # type: ignore[import-not-found]  # noqa: F401

    assert seen == [1]


def test_registering_never_imports_the_module(modules: Path) -> None:
    write(modules, "hk_lazy")
    _hooks.when_imported("hk_lazy", lambda module: None)
    assert "hk_lazy" not in sys.modules
    assert _hooks.pending() == ("hk_lazy",)


def test_already_imported_module_gets_the_callback_at_once(modules: Path) -> None:
    seen: list[str] = []
    _hooks.when_imported("json", lambda module: seen.append(module.__name__))
    assert seen == ["json"]
    assert _hooks.imported_before_install("json")
    assert not _hooks.imported_before_install("hk_never")


def test_callback_runs_once_across_reimport_and_reload(modules: Path) -> None:
    write(modules, "hk_once")
    calls: list[types.ModuleType] = []
    _hooks.when_imported("hk_once", calls.append)
    module = importlib.import_module("hk_once")
    importlib.import_module("hk_once")
    importlib.reload(module)
    assert len(calls) == 1


def test_loader_is_the_real_one_after_import(modules: Path) -> None:
    write(modules, "hk_loader")
    _hooks.when_imported("hk_loader", lambda module: None)
    module = importlib.import_module("hk_loader")
    assert type(module.__loader__) is importlib.machinery.SourceFileLoader
    assert module.__spec__ is not None
    assert module.__spec__.loader is module.__loader__


def test_failing_callback_is_reported_and_the_import_still_works(modules: Path) -> None:
    write(modules, "hk_boom")

    def explode(module: types.ModuleType) -> None:
        raise RuntimeError("patch went wrong")

    _hooks.when_imported("hk_boom", explode)
    module = importlib.import_module("hk_boom")
    assert module.VALUE == 1
    [entry] = REPORT.entries()
    assert (entry.outcome, entry.target) == (Outcome.FAILED, "hk_boom")
    assert "patch went wrong" in entry.detail


def test_failed_import_keeps_the_callback_for_the_next_attempt(modules: Path) -> None:
    write(modules, "hk_retry", "raise ImportError('not yet')\n")
    calls: list[str] = []
    _hooks.when_imported("hk_retry", lambda module: calls.append(module.__name__))
    with pytest.raises(ImportError, match="not yet"):
        importlib.import_module("hk_retry")
    write(modules, "hk_retry", "VALUE = 2\n")
    importlib.invalidate_caches()
    importlib.import_module("hk_retry")
    assert calls == ["hk_retry"]


def test_submodule_hook_fires_for_the_submodule_only(modules: Path) -> None:
    write(modules, "hk_pkg.inner")
    names: list[str] = []
    _hooks.when_imported("hk_pkg.inner", lambda module: names.append(module.__name__))
    importlib.import_module("hk_pkg")
    assert names == []
    importlib.import_module("hk_pkg.inner")
    assert names == ["hk_pkg.inner"]


def test_concurrent_imports_run_the_callback_once(modules: Path) -> None:
    write(modules, "hk_threads", "import time\ntime.sleep(0.05)\nVALUE = 3\n")
    calls: list[int] = []
    _hooks.when_imported("hk_threads", lambda module: calls.append(module.VALUE))
    threads = [
        threading.Thread(target=importlib.import_module, args=("hk_threads",)) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [3]


def test_callback_may_register_more_hooks(modules: Path) -> None:
    write(modules, "hk_outer")
    write(modules, "hk_second")
    order: list[str] = []

    def outer(module: types.ModuleType) -> None:
        order.append("outer")
        _hooks.when_imported("hk_second", lambda module: order.append("second"))

    _hooks.when_imported("hk_outer", outer)
    importlib.import_module("hk_outer")
    importlib.import_module("hk_second")
    assert order == ["outer", "second"]


def test_install_keeps_the_finder_first_and_uninstall_removes_it(modules: Path) -> None:
    sys.meta_path.insert(0, importlib.machinery.PathFinder)  # type: ignore[arg-type]
    try:
        _hooks.install()
        assert sys.meta_path[0] is _hooks._FINDER
        assert sys.meta_path.count(_hooks._FINDER) == 1
    finally:
        sys.meta_path.remove(importlib.machinery.PathFinder)  # type: ignore[arg-type]
    _hooks.uninstall()
    assert not _hooks.installed()
