"""The Redis examples of docs/resilience.md run against a real Redis.

``tests/docs/test_examples.py`` runs every ``python`` block and needs no
server; the examples that need Redis are fenced ``py`` instead, so it skips
them, and this file runs them with ``REDIS_URL`` pointing at the session's
``redis-server``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.docs.test_examples import FENCE
from tests.harness.servers import RedisServer

DOC = Path(__file__).resolve().parents[2] / "docs" / "resilience.md"


def redis_blocks() -> list[Any]:
    matches = [m for m in FENCE.finditer(DOC.read_text()) if m.group(1) == "py"]
    return [pytest.param(m.group(2), id=f"docs/resilience.md#py{i}") for i, m in enumerate(matches)]


@pytest.mark.parametrize("source", redis_blocks())
def test_redis_example_runs(
    source: str, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    namespace: dict[str, Any] = {"__name__": "__doc_example__"}
    exec(compile(source, "<doc example>", "exec"), namespace)


def test_the_redis_examples_read_their_url_from_the_environment() -> None:
    blocks = [param.values[0] for param in redis_blocks()]
    assert len(blocks) >= 2
    for source in blocks:
        assert re.search(r'os\.environ\.get\("REDIS_URL"', source)
