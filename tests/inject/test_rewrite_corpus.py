"""The AST rewrite on a corpus of tricky modules: each still behaves as written."""

from __future__ import annotations

import asyncio
import inspect
import re
import traceback
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sloguard.inject._traced import is_traced
from tests.inject.tracing_harness import Traced, traced_imports

CORPUS = "tests.inject.corpus"
CORPUS_DIR = Path(__file__).parent / "corpus"


@pytest.fixture
def traced() -> Iterator[Traced]:
    with traced_imports([f"{CORPUS}.*:**"]) as t:
        yield t


def test_nonlocal_closures_keep_their_shared_cell(traced: Traced) -> None:
    closures = traced.load(f"{CORPUS}.closures")
    bump, read = closures.counter()
    bump()
    bump(2)
    assert read() == 3
    assert is_traced(bump)
    assert f"{CORPUS}.closures.counter.<locals>.bump" in traced.names()


def test_nested_functions_global_statements_and_lambdas(traced: Traced) -> None:
    closures = traced.load(f"{CORPUS}.closures")
    assert closures.outer(2) == 3
    assert closures.uses_global() == 7
    assert closures.STATE == 7
    assert not is_traced(closures.square)
    assert closures.square(4) == 16


def test_argumentless_super_and_the_class_cell_still_work(traced: Traced) -> None:
    classes = traced.load(f"{CORPUS}.classes")
    child = classes.Child()
    assert child.greet() == "child+base"
    assert child.own_class() is classes.Child
    assert is_traced(classes.Child.greet)
    assert f"{CORPUS}.classes.Child.__new__" in traced.names()


def test_classmethods_staticmethods_properties_and_init_subclass(traced: Traced) -> None:
    classes = traced.load(f"{CORPUS}.classes")
    assert type(classes.Child.make()) is classes.Child
    assert classes.Child.twice(3) == 6
    assert classes.Child().label == "Child"
    assert classes.Child.tag == "child"
    assert is_traced(inspect.getattr_static(classes.Base, "twice").__func__)


def test_class_bodies_nested_classes_and_dataclasses(traced: Traced) -> None:
    classes = traced.load(f"{CORPUS}.classes")
    assert classes.Child.SIZE == 2
    assert classes.Child.Inner().where() == "Child.Inner"
    assert classes.Point(3, -4).norm1() == 7
    assert f"{CORPUS}.classes.Child.Inner.where" in traced.names()


def test_stacked_decorators_wrap_the_traced_function(traced: Traced) -> None:
    decorated = traced.load(f"{CORPUS}.decorated")
    assert decorated.hello("ann") == "HELLO ANN"
    assert decorated.fib(20) == 6765
    assert decorated.fib.cache_info().hits > 0
    assert decorated.pick("x") == "x"
    assert traced.names().count(f"{CORPUS}.decorated.hello") == 1


def test_contextmanager_generators_see_thrown_exceptions(traced: Traced) -> None:
    decorated = traced.load(f"{CORPUS}.decorated")
    log: list[str] = []
    with decorated.tagged(log) as value:
        assert value == "inside"
        raise KeyError("swallowed by the context manager")
    assert log == ["enter", "swallowed", "exit"]


def test_generators_keep_send_and_return_values(traced: Traced) -> None:
    generators = traced.load(f"{CORPUS}.generators")
    gen = generators.delegator()
    next(gen)
    assert gen.send(10.0) == 10.0
    assert gen.send(20.0) == 15.0
    with pytest.raises(StopIteration) as stop:
        gen.send(None)
    assert stop.value.value == "2 values"
    assert inspect.isgeneratorfunction(generators.delegator)


def test_generators_keep_throw_and_close(traced: Traced) -> None:
    generators = traced.load(f"{CORPUS}.generators")
    log: list[str] = []
    gen = generators.catcher(log)
    assert next(gen) == 1
    assert gen.throw(ValueError("boom")) == 2
    gen.close()
    assert log == ["caught boom", "finally"]
    assert list(generators.countdown(3)) == [3, 2, 1]


def test_a_generator_that_yields_while_closing_still_raises_runtimeerror(traced: Traced) -> None:
    generators = traced.load(f"{CORPUS}.generators")
    gen = generators.stubborn()
    next(gen)
    with pytest.raises(RuntimeError, match="ignored GeneratorExit"):
        gen.close()


def test_coroutines_and_async_generators_keep_their_protocols(traced: Traced) -> None:
    asyncs = traced.load(f"{CORPUS}.asyncs")

    async def drive() -> list[Any]:
        log: list[str] = []
        ticks = asyncs.ticker(3)
        got = [await ticks.asend(None), await ticks.asend(5), await ticks.asend(None)]
        guarded = asyncs.guarded(log)
        got += [await guarded.asend(None), await guarded.athrow(ValueError("x"))]
        await guarded.aclose()
        async with asyncs.opened(log) as resource:
            got.append(resource)
        return [*got, await asyncs.add(1, 2), log]

    assert asyncio.run(drive()) == [
        0,
        50,
        1,
        1,
        2,
        "resource",
        3,
        ["caught", "finally", "open", "close"],
    ]
    assert inspect.isasyncgenfunction(asyncs.ticker)
    assert inspect.iscoroutinefunction(asyncs.add)


def test_postponed_annotations_still_resolve(traced: Traced) -> None:
    annotated = traced.load(f"{CORPUS}.annotated")
    hints = typing.get_type_hints(annotated.convert)
    assert hints == {"value": annotated.Later, "return": annotated.Later}
    assert isinstance(annotated.Later().clone(), annotated.Later)


def _marked_line(name: str) -> int:
    lines = (CORPUS_DIR / "failing.py").read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if f"# raises-here: {name}" in line)


def _corpus_frames(exc: BaseException) -> list[tuple[int, str]]:
    frames = traceback.extract_tb(exc.__traceback__)
    return [(f.lineno or 0, f.name) for f in frames if f.filename.endswith("failing.py")]


def _raise_from(call: Callable[[], Any]) -> BaseException:
    try:
        call()
    except Exception as exc:
        return exc
    raise AssertionError("did not raise")


@pytest.mark.parametrize(
    ("name", "call"),
    [
        pytest.param("fails", lambda m: m.fails(1), id="sync"),
        pytest.param("fails_in_generator", lambda m: list(m.fails_in_generator()), id="generator"),
        pytest.param("fails_async", lambda m: asyncio.run(m.fails_async()), id="coroutine"),
    ],
)
def test_traceback_line_numbers_are_the_source_lines(
    traced: Traced, name: str, call: Callable[[Any], Any]
) -> None:
    failing = traced.load(f"{CORPUS}.failing")
    exc = _raise_from(lambda: call(failing))
    assert _corpus_frames(exc)[-1] == (_marked_line(name), name)


def test_nested_traced_calls_show_each_user_frame_at_its_line(traced: Traced) -> None:
    failing = traced.load(f"{CORPUS}.failing")
    exc = _raise_from(failing.calls_fails)
    assert _corpus_frames(exc) == [
        (_marked_line("calls_fails"), "calls_fails"),
        (_marked_line("fails"), "fails"),
    ]


def test_source_and_first_line_numbers_are_unchanged(traced: Traced) -> None:
    failing = traced.load(f"{CORPUS}.failing")
    source = (CORPUS_DIR / "failing.py").read_text()
    def_line = next(i for i, line in enumerate(source.splitlines(), 1) if "def fails(" in line)
    assert inspect.getsourcelines(failing.fails)[1] == def_line
    assert failing.fails.__wrapped__.__code__.co_firstlineno == def_line
    assert re.search(r"raises-here: fails\b", inspect.getsource(failing.fails))
