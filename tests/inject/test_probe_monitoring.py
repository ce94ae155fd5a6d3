"""sys.monitoring probes: the code object is never touched, the tool id is shared politely."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from sloguard.inject._probe_monitoring import (
    TOOL_IDS,
    MonitoringMechanism,
    NoFreeToolError,
)
from sloguard.inject._probes import ProbeKind, ProbeManager, ProbeSpec
from tests.inject.probeapp import targets
from tests.inject.test_probe_codepatch import Recorder

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 12), reason="sys.monitoring (PEP 669) exists from Python 3.12"
)


@pytest.fixture
def mechanism() -> Iterator[MonitoringMechanism]:
    mechanism = MonitoringMechanism()
    yield mechanism
    for hook in list(mechanism._codes):
        mechanism.detach(targets.add, hook)


@pytest.fixture
def holding() -> Iterator[list[int]]:
    """Tool ids a test claims for a pretend other tool; freed afterwards."""
    held: list[int] = []
    yield held
    for tool in held:
        sys.monitoring.free_tool_id(tool)


def _claim(held: list[int], tool: int, name: str) -> None:
    if sys.monitoring.get_tool(tool) is not None:
        pytest.skip(f"tool id {tool} is already used by {sys.monitoring.get_tool(tool)}")
    sys.monitoring.use_tool_id(tool, name)
    held.append(tool)


def test_the_code_object_stays_the_same_object(mechanism: MonitoringMechanism) -> None:
    original, hook = targets.add.__code__, Recorder(wants_arguments=False)
    mechanism.attach(targets.add, hook)
    assert targets.add(1, 2) == 3
    assert targets.add.__code__ is original
    mechanism.detach(targets.add, hook)
    assert targets.add.__code__ is original
    assert hook.events == [("enter", None), ("exit", 1, None)]


def test_takes_a_tool_id_beside_coverage_and_debuggers(
    mechanism: MonitoringMechanism, holding: list[int]
) -> None:
    _claim(holding, sys.monitoring.COVERAGE_ID, "pretend-coverage")
    mechanism.attach(targets.add, Recorder())
    assert mechanism.tool_id in TOOL_IDS
    assert sys.monitoring.get_tool(mechanism.tool_id) == "sloguard-probes"
    assert sys.monitoring.get_tool(sys.monitoring.COVERAGE_ID) == "pretend-coverage"


def test_frees_its_tool_id_when_the_last_probe_is_detached(mechanism: MonitoringMechanism) -> None:
    first, second = Recorder(), Recorder()
    mechanism.attach(targets.add, first)
    mechanism.attach(targets.fail, second)
    tool = mechanism.tool_id
    mechanism.detach(targets.add, first)
    assert sys.monitoring.get_tool(tool) == "sloguard-probes"
    mechanism.detach(targets.fail, second)
    assert (mechanism.tool_id, sys.monitoring.get_tool(tool)) == (None, None)


def test_says_so_when_every_tool_id_it_may_use_is_taken(holding: list[int]) -> None:
    for tool in TOOL_IDS:
        _claim(holding, tool, f"other-{tool}")
    with pytest.raises(NoFreeToolError, match="no free sys.monitoring tool id"):
        MonitoringMechanism().attach(targets.add, Recorder())


def test_manager_falls_back_to_code_replacement_without_a_free_tool_id(
    holding: list[int], caplog: pytest.LogCaptureFixture
) -> None:
    for tool in TOOL_IDS:
        _claim(holding, tool, f"other-{tool}")
    manager = ProbeManager()
    try:
        info = manager.add(ProbeSpec("tests.inject.probeapp.targets:add", ProbeKind.METRIC))
    finally:
        manager.close()
    assert info.mechanism == "codepatch"
    assert "falls back to code replacement" in caplog.text


def test_arguments_are_read_from_the_frame(mechanism: MonitoringMechanism) -> None:
    hook = Recorder()
    mechanism.attach(targets.shaped, hook)
    try:
        targets.shaped(1, 2, 3, c=5, z=6)
    finally:
        mechanism.detach(targets.shaped, hook)
    assert hook.events[0] == (
        "enter",
        {"a": 1, "b": 2, "rest": (3,), "c": 5, "d": 4, "z": 6},
    )


def test_an_exception_ends_the_call_with_its_error(mechanism: MonitoringMechanism) -> None:
    hook = Recorder(wants_arguments=False)
    mechanism.attach(targets.fail, hook)
    try:
        with pytest.raises(ValueError):
            targets.fail("x")
    finally:
        mechanism.detach(targets.fail, hook)
    assert hook.events == [("enter", None), ("exit", 1, "ValueError")]


def test_recursive_calls_pair_each_end_with_its_start(mechanism: MonitoringMechanism) -> None:
    hook = Recorder()
    mechanism.attach(targets.recurse, hook)
    try:
        targets.recurse(2)
    finally:
        mechanism.detach(targets.recurse, hook)
    ends = [event[1] for event in hook.events if event[0] == "exit"]
    assert ends == [3, 2, 1]  # innermost first: tokens are the enter positions


def test_interleaved_generators_each_get_one_call(mechanism: MonitoringMechanism) -> None:
    hook = Recorder()
    mechanism.attach(targets.countdown, hook)
    try:
        first, second = targets.countdown(2), targets.countdown(3)
        merged = [*zip(first, second, strict=False), *second]
    finally:
        mechanism.detach(targets.countdown, hook)
    assert merged == [(2, 3), (1, 2), 1]
    assert [event[:2] for event in hook.events if event[0] == "exit"] == [("exit", 1), ("exit", 2)]


def test_concurrent_coroutines_each_get_one_call(mechanism: MonitoringMechanism) -> None:
    hook = Recorder()
    mechanism.attach(targets.double, hook)

    async def both() -> list[int]:
        return list(await asyncio.gather(targets.double(1), targets.double(2)))

    try:
        assert asyncio.run(both()) == [2, 4]
    finally:
        mechanism.detach(targets.double, hook)
    starts = {
        event[1]["x"]: index + 1 for index, event in enumerate(hook.events) if event[0] == "enter"
    }
    ended = sorted(event[1] for event in hook.events if event[0] == "exit")
    assert sorted(starts.values()) == ended


def test_a_call_already_running_when_attached_is_left_alone(mechanism: MonitoringMechanism) -> None:
    hook = Recorder(wants_arguments=False)
    seen: list[Any] = []

    def attach_midway(n: int) -> int:
        mechanism.attach(original, hook)
        seen.append(n)
        return 0

    original = targets.recurse
    targets.recurse = attach_midway  # the inner call attaches, the outer one was running
    try:
        assert original(1) == 1
    finally:
        targets.recurse = original
        mechanism.detach(original, hook)
    assert hook.events == []
