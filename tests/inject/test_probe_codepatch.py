"""Code-object replacement: the trampoline looks like the function, and detaching restores it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator, Mapping
from types import FunctionType
from typing import Any

import pytest

from sloguard.inject._probe_codepatch import CodePatcher, CodePatchError, call_arguments
from tests.inject.probeapp import targets


class Recorder:
    """A probe hook that writes down what the mechanism tells it."""

    def __init__(self, wants_arguments: bool = True) -> None:
        self.wants_arguments = wants_arguments
        self.events: list[tuple[Any, ...]] = []

    def enter(self, read: Any, source: object) -> object:
        arguments = dict(read(source)) if self.wants_arguments else None
        self.events.append(("enter", arguments))
        return len(self.events)

    def exit(self, token: object, error: BaseException | None) -> None:
        self.events.append(("exit", token, type(error).__name__ if error else None))


@pytest.fixture
def patcher() -> Iterator[CodePatcher]:
    patcher = CodePatcher()
    yield patcher
    for func in list(patcher._sites):
        for hook in patcher._sites[func].hooks:
            patcher.detach(func, hook)


SHAPES = [
    pytest.param(targets.add, id="plain"),
    pytest.param(targets.shaped, id="posonly-varargs-kwonly-varkw"),
    pytest.param(targets.countdown, id="generator"),
    pytest.param(targets.double, id="coroutine"),
    pytest.param(targets.ticks, id="async-generator"),
    pytest.param(targets.counter, id="closure"),
    pytest.param(targets.Repo.hello, id="method-with-super"),
]


def _kind(func: FunctionType) -> tuple[bool, ...]:
    checks = (inspect.isgeneratorfunction, inspect.iscoroutinefunction, inspect.isasyncgenfunction)
    return tuple(check(func) for check in checks)


@pytest.mark.parametrize("func", SHAPES)
def test_trampoline_keeps_signature_kind_and_names(
    patcher: CodePatcher, func: FunctionType
) -> None:
    original = func.__code__
    signature, kind = inspect.signature(func), _kind(func)
    patcher.attach(func, Recorder())
    assert func.__code__ is not original
    assert inspect.signature(func) == signature
    assert _kind(func) == kind
    code = func.__code__
    assert (code.co_name, code.co_qualname, code.co_firstlineno) == (
        original.co_name,
        original.co_qualname,
        original.co_firstlineno,
    )


@pytest.mark.parametrize("func", SHAPES)
def test_detach_restores_the_original_code_object(patcher: CodePatcher, func: FunctionType) -> None:
    original, hook = func.__code__, Recorder()
    patcher.attach(func, hook)
    patcher.detach(func, hook)
    assert func.__code__ is original


def test_references_taken_before_attaching_see_the_probe(patcher: CodePatcher) -> None:
    alias, bound = targets.add, targets.Repo().get
    hook = Recorder(wants_arguments=False)
    patcher.attach(targets.add, hook)
    patcher.attach(targets.Repo.get, hook)
    assert (alias(2, b=3), bound("k")) == (5, "K")
    assert [event[0] for event in hook.events] == ["enter", "exit", "enter", "exit"]


def test_arguments_reach_the_hook_by_parameter_name(patcher: CodePatcher) -> None:
    hook = Recorder()
    patcher.attach(targets.shaped, hook)
    assert targets.shaped(1, 2, 3, c=5, z=6) == (1, 2, (3,), 5, 4, {"z": 6})
    assert hook.events[0] == ("enter", {"a": 1, "b": 2, "rest": (3,), "c": 5, "d": 4, "z": 6})


def test_closures_and_super_keep_working(patcher: CodePatcher) -> None:
    hook = Recorder(wants_arguments=False)
    patcher.attach(targets.counter, hook)
    patcher.attach(targets.Repo.hello, hook)
    before = targets.counter(0)
    assert targets.counter(2) == before + 2
    assert targets.Repo().hello() == "repo+base"


def test_exceptions_propagate_and_reach_the_hook(patcher: CodePatcher) -> None:
    hook = Recorder(wants_arguments=False)
    patcher.attach(targets.fail, hook)
    with pytest.raises(ValueError, match="boom"):
        targets.fail("boom")
    assert hook.events[-1] == ("exit", 1, "ValueError")


def test_generator_forwards_send_and_throw_and_ends_once(patcher: CodePatcher) -> None:
    hook = Recorder(wants_arguments=False)
    patcher.attach(targets.echo, hook)
    gen = targets.echo()
    assert [next(gen), gen.send("a"), gen.throw(KeyError("k"))] == ["ready", "a", "caught k"]
    gen.close()
    assert hook.events == [("enter", None), ("exit", 1, "GeneratorExit")]


def test_async_generator_forwards_asend(patcher: CodePatcher) -> None:
    hook = Recorder(wants_arguments=False)
    patcher.attach(targets.ticks, hook)

    async def consume() -> list[object]:
        agen = targets.ticks(3)
        out = [await agen.__anext__(), await agen.asend("x"), await agen.__anext__()]
        out.extend([item async for item in agen])
        return out

    assert asyncio.run(consume()) == [0, "got x", 1, 2]
    assert hook.events == [("enter", None), ("exit", 1, None)]


def test_coroutine_is_probed_from_start_to_return(patcher: CodePatcher) -> None:
    hook = Recorder()
    patcher.attach(targets.double, hook)
    assert asyncio.run(targets.double(21)) == 42
    assert hook.events == [("enter", {"x": 21}), ("exit", 1, None)]


def test_two_probes_share_one_trampoline_and_detach_in_any_order(patcher: CodePatcher) -> None:
    original, first, second = targets.add.__code__, Recorder(), Recorder()
    patcher.attach(targets.add, first)
    patcher.attach(targets.add, second)
    patcher.detach(targets.add, first)
    targets.add(1)
    assert (len(first.events), len(second.events)) == (0, 2)
    patcher.detach(targets.add, second)
    assert targets.add.__code__ is original


def test_detach_leaves_code_someone_else_swapped_in(patcher: CodePatcher) -> None:
    hook, original = Recorder(), targets.recurse.__code__
    patcher.attach(targets.recurse, hook)
    targets.recurse.__code__ = targets.add.__code__.replace(co_name="recurse")
    try:
        with pytest.raises(CodePatchError, match="replaced by someone else"):
            patcher.detach(targets.recurse, hook)
    finally:
        targets.recurse.__code__ = original


def test_call_arguments_names_extra_positionals_after_the_varargs_name() -> None:
    code = targets.shaped.__code__
    bound: Mapping[str, object] = call_arguments(code, (1, 2, 3, 4), {"c": 0})
    assert bound == {"a": 1, "b": 2, "rest": (3, 4), "c": 0}
