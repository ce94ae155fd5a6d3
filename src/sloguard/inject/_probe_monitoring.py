"""Live probes through ``sys.monitoring`` (PEP 669, Python 3.12+).

The function's code object is never touched: the interpreter calls our
callbacks on ``PY_START`` and ``PY_RETURN`` of exactly the probed code objects
(``set_local_events``), so unprobed code pays nothing. ``PY_UNWIND`` (a call
ending in an exception) cannot be enabled per code object in 3.12/3.13, so it
is enabled for the whole tool while any probe is attached: every frame an
exception unwinds through calls one callback that finds its code is not probed
and returns (about 0.1 us per unwound frame; see benchmarks/probes.py).

Tool id: sloguard takes the first free id of 3, 4 and 5 (``OPTIMIZER_ID``).
Ids 0-2 are the conventional ones of debuggers (``DEBUGGER_ID``), coverage.py
(``COVERAGE_ID``) and profilers (``PROFILER_ID``, cProfile in 3.12+); taking
one, even while free, would make that tool fail to start later. With 3-5
taken the probe falls back to code replacement. The id is held only while a
probe is attached.

Matching a call's end with its start: plain functions nest, so each thread
keeps a stack of (code, hooks, tokens); a return whose code is not on top
(a call already running when the probe was attached) is ignored. Generators
and coroutines suspend and interleave, so their calls are keyed by their
frame, from the first ``PY_START`` to the final ``PY_RETURN``/``PY_UNWIND``
(one span per call, suspensions included). Python 3.13 closes an abandoned
generator without running its frame and so without an event; such entries
are dropped oldest-first beyond ``MAX_SUSPENDED`` instead of growing.

A code object shared by several functions (closures made by one factory, a
decorator's wrapper) is probed for all of them: ``sys.monitoring`` works on
code. Target resolution unwraps decorators so the shared wrapper is not picked.
"""

from __future__ import annotations

import inspect
import sys
import threading
from collections.abc import Mapping
from types import CodeType, FrameType, FunctionType
from typing import Any

from sloguard.inject._probe_handlers import ProbeHook

__all__ = ["MAX_SUSPENDED", "TOOL_IDS", "MonitoringMechanism", "NoFreeToolError", "available"]

TOOL_IDS = (3, 4, 5)
TOOL_NAME = "sloguard-probes"
MAX_SUSPENDED = 10_000
# ``sys.monitoring`` as Any: mypy checks this package as Python 3.11, which lacks it.
_monitoring: Any = sys.__dict__.get("monitoring")
_SUSPENDABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


class NoFreeToolError(RuntimeError):
    """Every ``sys.monitoring`` tool id sloguard may take is in use."""


def available() -> bool:
    return sys.version_info >= (3, 12)


def _frame_arguments(source: object) -> Mapping[str, object]:
    """The call's arguments in signature order, extra keywords flattened (as code replacement)."""
    frame: FrameType = source  # type: ignore[assignment]
    code = frame.f_code
    names, local = code.co_varnames, frame.f_locals
    bound = {name: local[name] for name in names[: code.co_argcount] if name in local}
    index = code.co_argcount + code.co_kwonlyargcount
    kwonly = names[code.co_argcount : index]
    if code.co_flags & inspect.CO_VARARGS:
        if local.get(names[index]):
            bound[names[index]] = local[names[index]]
        index += 1
    bound.update((name, local[name]) for name in kwonly if name in local)
    if code.co_flags & inspect.CO_VARKEYWORDS:
        bound.update(local.get(names[index], {}))
    return bound


class _Site:
    __slots__ = ("code", "hooks", "needs_frame", "suspendable")

    def __init__(self, code: CodeType, hooks: tuple[ProbeHook, ...]) -> None:
        self.code = code  # keeps the id() the sites are keyed by alive
        self.hooks = hooks
        self.suspendable = bool(code.co_flags & _SUSPENDABLE)
        self.needs_frame = self.suspendable or any(hook.wants_arguments for hook in hooks)


_Call = tuple[CodeType, tuple[ProbeHook, ...], list[object]]


class MonitoringMechanism:
    """Attaches hooks with per-code ``sys.monitoring`` events under one tool id."""

    name = "monitoring"

    def __init__(self, tool_ids: tuple[int, ...] = TOOL_IDS) -> None:
        if not available():
            raise NoFreeToolError("sys.monitoring needs Python 3.12 or newer")
        self._tool_ids = tool_ids
        self._lock = threading.Lock()
        self._tool: int | None = None
        # Keyed by id(code): hashing a code object hashes its bytecode and
        # constants on every lookup (about 3 us per call on 3.12).
        self._sites: dict[int, _Site] = {}
        self._stacks: dict[int, list[_Call]] = {}
        self._suspended: dict[int, _Call] = {}
        self._codes: dict[ProbeHook, CodeType] = {}

    @property
    def tool_id(self) -> int | None:
        return self._tool

    # -- attach / detach ---------------------------------------------------

    def _acquire_tool(self) -> int:
        monitoring = _monitoring
        events = monitoring.events
        taken = []
        for tool in self._tool_ids:
            owner = monitoring.get_tool(tool)
            if owner is not None:
                taken.append(f"{tool}={owner}")
                continue
            try:
                monitoring.use_tool_id(tool, TOOL_NAME)
            except ValueError:  # taken between the check and the claim
                continue
            monitoring.register_callback(tool, events.PY_START, self._on_start)
            monitoring.register_callback(tool, events.PY_RETURN, self._on_return)
            monitoring.register_callback(tool, events.PY_UNWIND, self._on_unwind)
            monitoring.set_events(tool, events.PY_UNWIND)
            return tool
        raise NoFreeToolError(
            "no free sys.monitoring tool id for probes (" + ", ".join(taken) + ")"
        )

    def _release_tool(self, tool: int) -> None:
        monitoring = _monitoring
        events = monitoring.events
        monitoring.set_events(tool, 0)
        for event in (events.PY_START, events.PY_RETURN, events.PY_UNWIND):
            monitoring.register_callback(tool, event, None)
        monitoring.free_tool_id(tool)

    def attach(self, func: FunctionType, hook: ProbeHook) -> None:
        code = func.__code__
        with self._lock:
            if self._tool is None:
                self._tool = self._acquire_tool()
            site = self._sites.get(id(code))
            hooks = (*site.hooks, hook) if site else (hook,)
            self._sites[id(code)] = _Site(code, hooks)
            self._codes[hook] = code
            events = _monitoring.events
            _monitoring.set_local_events(self._tool, code, events.PY_START | events.PY_RETURN)

    def detach(self, func: FunctionType, hook: ProbeHook) -> None:
        with self._lock:
            code = self._codes.pop(hook, None)
            site = self._sites.get(id(code)) if code is not None else None
            if code is None or site is None or self._tool is None:
                return
            hooks = tuple(h for h in site.hooks if h is not hook)
            if hooks:
                self._sites[id(code)] = _Site(code, hooks)
                return
            del self._sites[id(code)]
            _monitoring.set_local_events(self._tool, code, 0)
            self._forget(code)
            if not self._sites:
                self._release_tool(self._tool)
                self._tool = None

    def _forget(self, code: CodeType) -> None:
        """Drop calls of ``code`` that will never see their end event."""
        for stack in self._stacks.values():
            stack[:] = [call for call in stack if call[0] is not code]
        for key in [k for k, call in self._suspended.items() if call[0] is code]:
            del self._suspended[key]

    # -- callbacks (hot) -----------------------------------------------------

    def _on_start(self, code: CodeType, offset: int) -> Any:
        site = self._sites.get(id(code))
        if site is None:
            return None
        hooks = site.hooks
        frame = sys._getframe(1) if site.needs_frame else None
        tokens = [hook.enter(_frame_arguments, frame) for hook in hooks]
        if site.suspendable:
            suspended = self._suspended
            if len(suspended) >= MAX_SUSPENDED:
                del suspended[next(iter(suspended))]
            suspended[id(frame)] = (code, hooks, tokens)
            return None
        ident = threading.get_ident()
        stack = self._stacks.get(ident)
        if stack is None:
            stack = self._stacks[ident] = []
        stack.append((code, hooks, tokens))
        return None

    def _finish(self, code: CodeType, error: BaseException | None) -> None:
        site = self._sites.get(id(code))
        if site is None:
            return
        if site.suspendable:
            call = self._suspended.pop(id(sys._getframe(2)), None)
            if call is None:
                return
        else:
            stack = self._stacks.get(threading.get_ident())
            if not stack or stack[-1][0] is not code:
                return
            call = stack.pop()
        _, hooks, tokens = call
        for hook, token in zip(hooks, tokens, strict=True):
            hook.exit(token, error)

    def _on_return(self, code: CodeType, offset: int, retval: object) -> Any:
        self._finish(code, None)

    def _on_unwind(self, code: CodeType, offset: int, exception: BaseException) -> Any:
        if id(code) in self._sites:
            self._finish(code, exception)
