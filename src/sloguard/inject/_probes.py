"""Live probes: attach a span, metric or log probe to a function of this process.

A probe names its function as ``module:qualname`` (``myapp.db:Repo.get``).
Resolution looks the module up in ``sys.modules`` and walks the qualname
through class dicts (so ``staticmethod``/``classmethod``/``property`` resolve
to their function) and unwraps decorators (``__wrapped__``). A module that is
not imported yet is an error unless the spec allows importing it: importing
runs the module's top-level code inside a live service, which nobody asked
for by naming a function.

Mechanisms, chosen per probe (``auto``): ``sys.monitoring`` on Python 3.12+
(the code object is never modified), code-object replacement on 3.11 or when
every monitoring tool id sloguard may use is taken.

Budget: every probe times its handler on one call in ``sample_every`` (enter
and exit sampled independently) and, once a window of samples is in, compares
their mean with ``budget_ns``. A probe over budget detaches itself, logs a
WARNING with the figures and stays listed as ``disabled`` with the reason. The
mechanism's own dispatch (the callback or trampoline call) is outside the
timed region; benchmarks/probes.py measures it.

Exceptions::

    ProbeError            a probe could not be added or found
    ├── BadTargetError    the target is malformed or does not resolve to a function
    └── ProbeNotFound     no probe with that id or target
"""

from __future__ import annotations

import builtins
import enum
import importlib
import inspect
import itertools
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import FunctionType, MethodType
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry

from sloguard.inject._probe_codepatch import CodePatcher
from sloguard.inject._probe_handlers import (
    ArgumentReader,
    ArgumentRenderer,
    CallHandler,
    LogHandler,
    Mechanism,
    MetricHandler,
    ProbeMetrics,
    SpanHandler,
)
from sloguard.settings._inject_probes import ProbeSettings

__all__ = [
    "BadTargetError",
    "CostMeter",
    "Probe",
    "ProbeError",
    "ProbeInfo",
    "ProbeKind",
    "ProbeManager",
    "ProbeNotFound",
    "ProbeSpec",
    "ProbeState",
    "default_manager",
    "resolve_target",
]

logger = logging.getLogger("sloguard.probe")
_TARGET = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_MECHANISMS = ("auto", "monitoring", "codepatch")


class ProbeError(Exception):
    """A probe could not be added, found or removed."""


class BadTargetError(ProbeError):
    """The target is malformed or does not resolve to a Python function."""


class ProbeNotFound(ProbeError):
    """No probe has that id or target."""


class ProbeKind(enum.Enum):
    SPAN = "span"
    METRIC = "metric"
    LOG = "log"


class ProbeState(enum.Enum):
    ACTIVE = "active"
    DISABLED = "disabled"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class ProbeSpec:
    """What to probe and how. ``None`` fields take the settings' defaults."""

    target: str
    kind: ProbeKind
    capture_args: bool = False
    budget_ns: int | None = None
    mechanism: str | None = None
    allow_import: bool | None = None

    def __post_init__(self) -> None:
        if not _TARGET.match(self.target):
            raise BadTargetError(
                f"target {self.target!r} is not 'module:qualname' (e.g. 'myapp.db:Repo.get')"
            )
        if self.budget_ns is not None and self.budget_ns < 1:
            raise ProbeError(
                f"budget_ns must be a positive number of nanoseconds, not {self.budget_ns}"
            )
        if self.mechanism is not None and self.mechanism not in _MECHANISMS:
            raise ProbeError(
                f"mechanism must be one of {', '.join(_MECHANISMS)}, not {self.mechanism!r}"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ProbeSpec:
        """A spec from a control request, with an error naming the bad field."""
        unknown = set(data) - {
            "target",
            "kind",
            "capture_args",
            "budget_ns",
            "mechanism",
            "allow_import",
        }
        if unknown:
            raise ProbeError(f"unknown field(s): {', '.join(sorted(unknown))}")
        target, kind = data.get("target"), data.get("kind", "span")
        if not isinstance(target, str):
            raise BadTargetError("field 'target' must be a string 'module:qualname'")
        try:
            probe_kind = ProbeKind(kind)
        except ValueError:
            raise ProbeError(f"field 'kind' must be span, metric or log, not {kind!r}") from None
        budget = data.get("budget_ns")
        if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool)):
            raise ProbeError("field 'budget_ns' must be an integer")
        for flag in ("capture_args", "allow_import"):
            if not isinstance(data.get(flag, False), bool | None):
                raise ProbeError(f"field {flag!r} must be true or false")
        return cls(
            target,
            probe_kind,
            capture_args=bool(data.get("capture_args", False)),
            budget_ns=budget,
            mechanism=data.get("mechanism"),
            allow_import=data.get("allow_import"),
        )


@dataclass(frozen=True, slots=True)
class ProbeInfo:
    """A snapshot of one probe, as ``probe list`` shows it."""

    id: str
    target: str
    kind: ProbeKind
    mechanism: str
    state: ProbeState
    calls: int
    cost_ns: int | None
    budget_ns: int
    capture_args: bool
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "target": self.target,
            "kind": self.kind.value,
            "mechanism": self.mechanism,
            "state": self.state.value,
            "calls": self.calls,
            "cost_ns": self.cost_ns,
            "budget_ns": self.budget_ns,
            "capture_args": self.capture_args,
            "reason": self.reason,
        }


class CostMeter:
    """Mean sampled handler cost per call against a budget (sans-I/O: fed numbers).

    Enter and exit costs are sampled independently; their means add up to a
    per-call estimate. The verdict is taken once per ``window`` exit samples.
    """

    __slots__ = ("_enter_n", "_enter_sum", "_exit_n", "_exit_sum", "budget_ns", "last_ns", "window")

    def __init__(self, budget_ns: int, window: int = 16) -> None:
        self.budget_ns = budget_ns
        self.window = window
        self.last_ns: int | None = None
        self._enter_sum = self._enter_n = self._exit_sum = self._exit_n = 0

    def add_enter(self, cost_ns: int) -> None:
        self._enter_sum += cost_ns
        self._enter_n += 1

    def add_exit(self, cost_ns: int) -> bool:
        """Record an exit sample; True when a finished window's mean is over budget."""
        self._exit_sum += cost_ns
        self._exit_n += 1
        if self._exit_n < self.window or not self._enter_n:
            return False
        mean = self._enter_sum // self._enter_n + self._exit_sum // self._exit_n
        self.last_ns = mean
        self._enter_sum = self._enter_n = self._exit_sum = self._exit_n = 0
        return mean > self.budget_ns


class Probe:
    """One attached probe: handler, sampling, budget and counters (a mechanism's hook)."""

    def __init__(
        self,
        probe_id: str,
        spec: ProbeSpec,
        func: FunctionType,
        handler: CallHandler,
        *,
        budget_ns: int,
        sample_every: int,
        on_disable: Callable[[Probe, str], None],
        clock: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self.id = probe_id
        self.spec = spec
        self.func = func
        self.mechanism: Mechanism | None = None
        self.state = ProbeState.ACTIVE
        self.reason = ""
        self.calls = 0
        self.wants_arguments = spec.capture_args and spec.kind is not ProbeKind.METRIC
        self.meter = CostMeter(budget_ns)
        self._handler = handler
        self._mask = sample_every - 1
        self._exits = 0
        self._clock = clock
        self._on_disable = on_disable

    def enter(self, read: ArgumentReader, source: object) -> object:
        self.calls += 1
        try:
            if self.calls & self._mask:
                return self._handler.enter(read(source) if self.wants_arguments else None)
            started = self._clock()
            token = self._handler.enter(read(source) if self.wants_arguments else None)
            self.meter.add_enter(self._clock() - started)
            return token
        except Exception as exc:
            self._broken("enter", exc)
            return None

    def exit(self, token: object, error: BaseException | None) -> None:
        self._exits += 1
        try:
            if self._exits & self._mask:
                self._handler.exit(token, error)
                return
            started = self._clock()
            self._handler.exit(token, error)
            over = self.meter.add_exit(self._clock() - started)
        except Exception as exc:
            self._broken("exit", exc)
            return
        if over:
            self._on_disable(
                self,
                f"over budget: measured {self.meter.last_ns} ns per call, "
                f"budget {self.meter.budget_ns} ns",
            )

    def _broken(self, where: str, exc: Exception) -> None:
        self._on_disable(self, f"handler failed in {where}: {type(exc).__name__}: {exc}")

    def info(self) -> ProbeInfo:
        return ProbeInfo(
            id=self.id,
            target=self.spec.target,
            kind=self.spec.kind,
            mechanism=self.mechanism.name if self.mechanism else "",
            state=self.state,
            calls=self.calls,
            cost_ns=self.meter.last_ns,
            budget_ns=self.meter.budget_ns,
            capture_args=self.spec.capture_args,
            reason=self.reason,
        )


def _unwrap(obj: Any, target: str) -> FunctionType:
    if isinstance(obj, staticmethod | classmethod | MethodType):
        obj = obj.__func__
    elif isinstance(obj, property):
        obj = obj.fget
    if callable(obj) and not isinstance(obj, FunctionType):
        obj = getattr(obj, "__wrapped__", obj)  # lru_cache and other wrapper objects
    if isinstance(obj, FunctionType):
        obj = inspect.unwrap(obj)
    if not isinstance(obj, FunctionType):
        raise BadTargetError(
            f"{target} is {type(obj).__name__}, not a Python function (no code object to probe)"
        )
    return obj


def resolve_target(target: str, *, allow_import: bool = False) -> FunctionType:
    """The function ``module:qualname`` names in this process."""
    module_name, _, qualname = target.partition(":")
    if not _TARGET.match(target):
        raise BadTargetError(f"target {target!r} is not 'module:qualname'")
    if module_name.split(".")[0] == "sloguard":
        raise BadTargetError(f"{target}: sloguard's own functions cannot be probed")
    module = sys.modules.get(module_name)
    if module is None:
        if not allow_import:
            raise BadTargetError(
                f"module {module_name!r} is not imported in this process "
                "(probes attach to loaded code; allow importing it to load it first)"
            )
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise BadTargetError(f"cannot import {module_name!r}: {exc}") from exc
    obj: object = module
    for part in qualname.split("."):
        found = None
        if isinstance(obj, type):  # the raw class attribute: staticmethod, property, ...
            found = next((vars(k)[part] for k in obj.__mro__ if part in vars(k)), None)
        if found is None:
            found = getattr(obj, part, None)
        if found is None:
            raise BadTargetError(f"{target}: {part!r} not found")
        obj = found
    return _unwrap(obj, target)


class ProbeManager:
    """Adds, lists and removes the probes of this process (thread-safe)."""

    def __init__(
        self,
        settings: ProbeSettings | None = None,
        *,
        tracer_provider: TracerProvider | None = None,
        registry: CollectorRegistry | None = None,
        call_logger: logging.Logger | None = None,
        clock: Callable[[], int] = time.perf_counter_ns,
    ) -> None:
        self.settings = settings or ProbeSettings()
        self._tracer_provider = tracer_provider
        self._registry = registry if registry is not None else REGISTRY
        self._call_logger = call_logger or logging.getLogger("sloguard.probe.calls")
        self._clock = clock
        self._lock = threading.RLock()
        self._probes: dict[str, Probe] = {}
        self._ids = itertools.count(1)
        self._mechanisms: dict[str, Mechanism] = {}

    def _handler(self, spec: ProbeSpec, probe_id: str) -> CallHandler:
        s = self.settings
        renderer = (
            ArgumentRenderer(s.redact_args, s.max_arg_chars, s.max_log_bytes)
            if spec.capture_args
            else None
        )
        if spec.kind is ProbeKind.SPAN:
            provider = self._tracer_provider or trace.get_tracer_provider()
            tracer = provider.get_tracer("sloguard.inject.probes")
            return SpanHandler(tracer, spec.target, probe_id, renderer)
        if spec.kind is ProbeKind.METRIC:
            return MetricHandler(ProbeMetrics.for_registry(self._registry), spec.target)
        return LogHandler(self._call_logger, spec.target, probe_id, renderer)

    def _mechanism(self, name: str) -> Mechanism:
        found = self._mechanisms.get(name)
        if found is None:
            if name == "monitoring":
                from sloguard.inject._probe_monitoring import MonitoringMechanism

                found = MonitoringMechanism()
            else:
                found = CodePatcher()
            self._mechanisms[name] = found
        return found

    def _attach(self, probe: Probe, wanted: str) -> None:
        from sloguard.inject._probe_monitoring import NoFreeToolError, available

        if wanted == "monitoring" and not available():
            raise ProbeError(
                f"mechanism 'monitoring' needs Python 3.12+ (this is {sys.version.split()[0]})"
            )
        if wanted in ("auto", "monitoring") and available():
            try:
                mechanism = self._mechanism("monitoring")
                mechanism.attach(probe.func, probe)
            except NoFreeToolError as exc:
                if wanted == "monitoring":
                    raise ProbeError(str(exc)) from exc
                logger.warning("%s; probe %s falls back to code replacement", exc, probe.id)
            else:
                probe.mechanism = mechanism
                return
        mechanism = self._mechanism("codepatch")
        mechanism.attach(probe.func, probe)
        probe.mechanism = mechanism

    def add(self, spec: ProbeSpec) -> ProbeInfo:
        """Resolve, attach and start a probe; its snapshot."""
        s = self.settings
        allow_import = s.allow_import if spec.allow_import is None else spec.allow_import
        func = resolve_target(spec.target, allow_import=allow_import)
        with self._lock:
            if len(self._probes) >= s.max_probes:
                raise ProbeError(f"at most {s.max_probes} probes (inject.probes.max_probes)")
            probe_id = f"p{next(self._ids)}"
            probe = Probe(
                probe_id,
                spec,
                func,
                self._handler(spec, probe_id),
                budget_ns=spec.budget_ns or s.budget_ns,
                sample_every=s.sample_every,
                on_disable=self._disable,
                clock=self._clock,
            )
            self._attach(probe, spec.mechanism or s.mechanism)
            self._probes[probe_id] = probe
        logger.info(
            "probe %s attached to %s (%s, %s)",
            probe_id,
            spec.target,
            spec.kind.value,
            probe.info().mechanism,
        )
        return probe.info()

    def list(self) -> list[ProbeInfo]:
        with self._lock:
            return [probe.info() for probe in self._probes.values()]

    def get(self, probe_id: str) -> Probe:
        with self._lock:
            try:
                return self._probes[probe_id]
            except KeyError:
                raise ProbeNotFound(f"no probe {probe_id!r}") from None

    def remove(self, key: str) -> builtins.list[ProbeInfo]:
        """Detach and forget the probe with id ``key``, or every probe on target ``key``."""
        with self._lock:
            chosen = [p for p in self._probes.values() if key in (p.id, p.spec.target)]
            if not chosen:
                raise ProbeNotFound(f"no probe with id or target {key!r}")
            for probe in chosen:
                if probe.state is ProbeState.ACTIVE:
                    self._detach(probe)
                probe.state = ProbeState.REMOVED
                del self._probes[probe.id]
            return [probe.info() for probe in chosen]

    def close(self) -> None:
        """Remove every probe (at exit, or when a test is done)."""
        with self._lock:
            for probe_id in list(self._probes):
                self.remove(probe_id)

    def _detach(self, probe: Probe) -> None:
        assert probe.mechanism is not None
        try:
            probe.mechanism.detach(probe.func, probe)
        except RuntimeError as exc:
            probe.reason = str(exc)
            logger.warning("probe %s: %s", probe.id, exc)

    def _disable(self, probe: Probe, reason: str) -> None:
        with self._lock:
            if probe.state is not ProbeState.ACTIVE:
                return
            probe.state = ProbeState.DISABLED
            probe.reason = reason
            self._detach(probe)
        logger.warning("probe %s on %s disabled itself: %s", probe.id, probe.spec.target, reason)

    def after_fork_in_child(self) -> None:
        self._lock = threading.RLock()


_default: ProbeManager | None = None
_default_lock = threading.Lock()


def default_manager(settings: ProbeSettings | None = None) -> ProbeManager:
    """The process's manager (the control server's); created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ProbeManager(settings)
        return _default


def _after_fork_in_child() -> None:
    global _default_lock
    _default_lock = threading.Lock()
    if _default is not None:
        _default.after_fork_in_child()


os.register_at_fork(after_in_child=_after_fork_in_child)
