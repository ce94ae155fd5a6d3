"""Every example in README.md and docs/*.md runs.

``python`` blocks are executed; ``yaml`` blocks that start with
``# sloguard.yaml`` are loaded as settings and must be valid. Other blocks
(shell sessions, sample output) are prose.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sloguard.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def blocks(language: str, marker: str = "") -> list[Any]:
    found = []
    for doc in DOCS:
        for index, match in enumerate(FENCE.finditer(doc.read_text())):
            if match.group(1) == language and match.group(2).startswith(marker):
                found.append(pytest.param(match.group(2), id=f"{doc.relative_to(ROOT)}#{index}"))
    return found


@pytest.mark.parametrize("source", blocks("python"))
def test_python_example_runs(source: str) -> None:
    namespace: dict[str, Any] = {"__name__": "__doc_example__"}
    try:
        exec(compile(source, "<doc example>", "exec"), namespace)
    finally:
        for value in namespace.values():
            close = getattr(value, "close", None)
            if callable(close) and type(value).__module__.startswith("sloguard"):
                close()


@pytest.mark.parametrize("source", blocks("yaml", "# sloguard.yaml"))
def test_settings_example_is_valid(source: str, tmp_path: Path) -> None:
    path = tmp_path / "sloguard.yaml"
    path.write_text(source)
    load_settings(path, env={})


@pytest.mark.parametrize("source", blocks("yaml", "# slo.yaml"))
def test_slo_spec_example_is_valid(source: str, tmp_path: Path) -> None:
    from sloguard.slo import validate_paths

    path = tmp_path / "slo.yaml"
    path.write_text(source)
    assert validate_paths([path]) == []


def test_every_doc_has_examples_checked() -> None:
    assert len(blocks("python")) >= 4
    assert len(blocks("yaml", "# sloguard.yaml")) >= 2
