"""Live probes by code-object replacement: the mechanism for Python 3.11.

``sys.monitoring`` arrived in 3.12. Before it, the one way to change what an
existing function does -- for every reference to it, the router's, a class
dict's, a ``from x import f`` in another module -- is to replace its
``__code__``. Rebinding a module attribute would miss all the references
taken before the probe was attached.

The replacement is a *trampoline*: a code object generated for the function
with the same parameters (names, positional-only/keyword-only split,
``*args``/``**kwargs``), the same number of free variables (CPython refuses a
code object whose ``co_freevars`` count differs from the closure's), the same
``co_name``, ``co_qualname``, ``co_filename`` and ``co_firstlineno``, and the
same kind (plain, generator, coroutine, async generator), so
``inspect.signature``, ``iscoroutinefunction`` and friends answer as before.
Its body loads a dispatcher from its own constants (no name is added to the
module's globals) and hands it the arguments; the dispatcher calls the hooks
and a copy of the original function (``FunctionType(original_code, ...)``
sharing globals, defaults and closure cells).

Detaching assigns the original code object back: ``func.__code__ is
original_code`` afterwards. If someone else replaced ``__code__`` in between,
detaching leaves theirs in place and says so.

Costs: one extra Python frame per call (two for generators and coroutines),
and tracebacks through a probed function show the trampoline's line (the
function's ``def`` line) once more.
"""

from __future__ import annotations

import inspect
import threading
import warnings
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from types import CodeType, FunctionType
from typing import Any

from sloguard.inject._probe_handlers import ProbeHook

__all__ = ["CodePatchError", "CodePatcher", "build_trampoline", "call_arguments"]

_PLACEHOLDER = "__sloguard_probe_dispatch__"
_DISPATCH_LOCAL = "__sloguard_dispatch__"


class CodePatchError(RuntimeError):
    """A function's code could not be replaced, or not restored."""


def _parameters(code: CodeType) -> tuple[str, str, str]:
    """The trampoline's parameter list and the call's positional and keyword parts."""
    names = code.co_varnames
    posonly = names[: code.co_posonlyargcount]
    positional = names[code.co_posonlyargcount : code.co_argcount]
    end = code.co_argcount + code.co_kwonlyargcount
    kwonly = names[code.co_argcount : end]
    varargs = names[end] if code.co_flags & inspect.CO_VARARGS else None
    if varargs is not None:
        end += 1
    varkw = names[end] if code.co_flags & inspect.CO_VARKEYWORDS else None
    params: list[str] = list(posonly)
    if posonly:
        params.append("/")
    params.extend(positional)
    if varargs is not None:
        params.append(f"*{varargs}")
    elif kwonly:
        params.append("*")
    params.extend(kwonly)
    if varkw is not None:
        params.append(f"**{varkw}")
    args = [*posonly, *positional, *([f"*{varargs}"] if varargs else [])]
    kwargs = [f"{name!r}: {name}" for name in kwonly] + ([f"**{varkw}"] if varkw else [])
    call_args = f"({', '.join(args)}{',' if len(args) == 1 else ''})"
    return ", ".join(params), call_args, "{" + ", ".join(kwargs) + "}"


def _body(code: CodeType, call: str) -> list[str]:
    load = f"{_DISPATCH_LOCAL} = {_PLACEHOLDER!r}"
    if code.co_flags & inspect.CO_ASYNC_GENERATOR:
        # The dispatcher returns the original async generator and a finisher;
        # asend/athrow/aclose are forwarded by hand (``async for`` drops them).
        return [
            load,
            f"__agen__, __done__ = {_DISPATCH_LOCAL}{call}",
            "try:",
            "    try:",
            "        __item__ = await __agen__.__anext__()",
            "        while True:",
            "            try:",
            "                __sent__ = yield __item__",
            "            except GeneratorExit:",
            "                await __agen__.aclose()",
            "                raise",
            "            except BaseException as __exc__:",
            "                __item__ = await __agen__.athrow(__exc__)",
            "            else:",
            "                __item__ = await __agen__.asend(__sent__)",
            "    except StopAsyncIteration:",
            "        pass",
            "except BaseException as __exc__:",
            "    __done__(__exc__)",
            "    raise",
            "__done__(None)",
        ]
    if code.co_flags & inspect.CO_COROUTINE:
        return [load, f"return await {_DISPATCH_LOCAL}{call}"]
    if code.co_flags & inspect.CO_GENERATOR:
        return [load, f"return (yield from {_DISPATCH_LOCAL}{call})"]
    return [load, f"return {_DISPATCH_LOCAL}{call}"]


def build_trampoline(code: CodeType, dispatch: Callable[..., Any]) -> CodeType:
    """A code object shaped like ``code`` whose body calls ``dispatch(args, kwargs)``."""
    params, args, kwargs = _parameters(code)
    is_async = bool(code.co_flags & (inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR))
    free = code.co_freevars
    lines = ["def __sloguard_factory__():"]
    if free:
        lines.append(f"    {' = '.join(free)} = None")
    lines.append(f"    {'async ' if is_async else ''}def __trampoline__({params}):")
    if free:
        # Dead code, but it makes the names free variables of the trampoline.
        lines.append(f"        if 0: ({', '.join(free)},)")
    lines.extend(f"        {line}" for line in _body(code, f"({args}, {kwargs})"))
    lines.append("    return __trampoline__")
    namespace: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile("\n".join(lines), code.co_filename, "exec"), namespace)  # noqa: S102
    template: CodeType = namespace["__sloguard_factory__"]().__code__
    consts = tuple(dispatch if const == _PLACEHOLDER else const for const in template.co_consts)
    return template.replace(
        co_consts=consts,
        co_name=code.co_name,
        co_qualname=code.co_qualname,
        co_firstlineno=code.co_firstlineno,
    )


def call_arguments(code: CodeType, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments by parameter name (extra positionals under ``*args``' name)."""
    names = code.co_varnames
    bound = dict(zip(names[: code.co_argcount], args, strict=False))
    if len(args) > code.co_argcount and code.co_flags & inspect.CO_VARARGS:
        bound[names[code.co_argcount + code.co_kwonlyargcount]] = args[code.co_argcount :]
    bound.update(kwargs)
    return bound


@dataclass(eq=False)
class _Site:
    """One patched function: its original code, the copy the dispatcher calls, its hooks."""

    func: FunctionType
    original_code: CodeType
    hooks: tuple[ProbeHook, ...] = ()
    trampoline: CodeType | None = None
    reader: Callable[[object], Mapping[str, object]] = field(init=False)

    def __post_init__(self) -> None:
        code = self.original_code
        self.reader = lambda source: call_arguments(code, *source)  # type: ignore[misc]


def _enter(site: _Site, hooks: tuple[ProbeHook, ...], args: Any, kwargs: Any) -> list[object]:
    source = (args, kwargs) if any(hook.wants_arguments for hook in hooks) else None
    return [hook.enter(site.reader, source) for hook in hooks]


def _exit(hooks: tuple[ProbeHook, ...], tokens: list[object], error: BaseException | None) -> None:
    for hook, token in zip(hooks, tokens, strict=True):
        hook.exit(token, error)


def _dispatcher(site: _Site, original: FunctionType) -> Callable[..., Any]:
    flags = site.original_code.co_flags

    if flags & inspect.CO_ASYNC_GENERATOR:

        def dispatch_agen(args: Any, kwargs: Any) -> tuple[Any, Callable[..., None]]:
            hooks = site.hooks
            tokens = _enter(site, hooks, args, kwargs)
            try:
                agen = original(*args, **kwargs)
            except BaseException as exc:
                _exit(hooks, tokens, exc)
                raise
            return agen, lambda error: _exit(hooks, tokens, error)

        return dispatch_agen

    if flags & inspect.CO_COROUTINE:

        async def dispatch_coroutine(args: Any, kwargs: Any) -> Any:
            hooks = site.hooks
            tokens = _enter(site, hooks, args, kwargs)
            try:
                result = await original(*args, **kwargs)
            except BaseException as exc:
                _exit(hooks, tokens, exc)
                raise
            _exit(hooks, tokens, None)
            return result

        return dispatch_coroutine

    if flags & inspect.CO_GENERATOR:

        def dispatch_generator(args: Any, kwargs: Any) -> Generator[Any, Any, Any]:
            hooks = site.hooks
            tokens = _enter(site, hooks, args, kwargs)
            try:
                result = yield from original(*args, **kwargs)
            except BaseException as exc:
                _exit(hooks, tokens, exc)
                raise
            _exit(hooks, tokens, None)
            return result

        return dispatch_generator

    def dispatch(args: Any, kwargs: Any) -> Any:
        hooks = site.hooks
        if len(hooks) == 1:  # the common case, without the lists
            hook = hooks[0]
            token = hook.enter(site.reader, (args, kwargs) if hook.wants_arguments else None)
            try:
                result = original(*args, **kwargs)
            except BaseException as exc:
                hook.exit(token, exc)
                raise
            hook.exit(token, None)
            return result
        tokens = _enter(site, hooks, args, kwargs)
        try:
            result = original(*args, **kwargs)
        except BaseException as exc:
            _exit(hooks, tokens, exc)
            raise
        _exit(hooks, tokens, None)
        return result

    return dispatch


def _copy(func: FunctionType, code: CodeType) -> FunctionType:
    copy = FunctionType(code, func.__globals__, func.__name__, func.__defaults__, func.__closure__)
    copy.__kwdefaults__ = func.__kwdefaults__
    copy.__qualname__ = func.__qualname__
    copy.__module__ = func.__module__
    return copy


class CodePatcher:
    """Attaches hooks to functions by swapping in a trampoline code object."""

    name = "codepatch"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sites: dict[FunctionType, _Site] = {}

    def attach(self, func: FunctionType, hook: ProbeHook) -> None:
        with self._lock:
            site = self._sites.get(func)
            if site is None:
                site = _Site(func, func.__code__)
                original = _copy(func, site.original_code)
                site.trampoline = build_trampoline(site.original_code, _dispatcher(site, original))
                site.hooks = (hook,)
                func.__code__ = site.trampoline
                self._sites[func] = site
            else:
                site.hooks = (*site.hooks, hook)

    def detach(self, func: FunctionType, hook: ProbeHook) -> None:
        with self._lock:
            site = self._sites.get(func)
            if site is None or hook not in site.hooks:
                return
            site.hooks = tuple(h for h in site.hooks if h is not hook)
            if site.hooks:
                return
            del self._sites[func]
            if func.__code__ is not site.trampoline:
                raise CodePatchError(
                    f"{func.__qualname__}.__code__ was replaced by someone else after the probe "
                    "was attached; leaving their code in place"
                )
            func.__code__ = site.original_code

    def original_code(self, func: FunctionType) -> CodeType | None:
        """The code a patched function had before its first probe, or None."""
        with self._lock:
            site = self._sites.get(func)
            return site.original_code if site else None
