"""The demo's terminal view: RED per route and SLOs from the store.

On a terminal the view is a rich ``Live`` display redrawn a few times a
second; anywhere else (tests, CI, a pipe) it prints a plain table every few
seconds, so logs stay readable. The same renderer draws the final summary.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sloguard.demo.red import RedRow

__all__ = ["DemoFrame", "DemoView", "SLORow", "render_frame"]


@dataclass(frozen=True, slots=True)
class SLORow:
    """One SLO's counts over the run, as read back from the store."""

    name: str
    kind: str
    objective: float  # percent
    good: int
    total: int
    #: burn rate over the last 5 minutes in the store (1.0 spends the budget exactly on time)
    burn_5m: float | None = None
    #: alert tiers the SLO engine finds firing now (page-1h, ticket-1d, ...)
    firing: tuple[str, ...] = ()

    @property
    def sli(self) -> float | None:
        """Percent good, None before any event."""
        return 100.0 * self.good / self.total if self.total else None

    @property
    def budget_left(self) -> float | None:
        """Share of the error budget not yet spent over these events, in percent."""
        if not self.total:
            return None
        allowed = self.total * (1.0 - self.objective / 100.0)
        return 100.0 * (1.0 - (self.total - self.good) / allowed)

    @property
    def met(self) -> bool | None:
        sli = self.sli
        return None if sli is None else sli >= self.objective


@dataclass(frozen=True, slots=True)
class DemoFrame:
    """Everything one redraw shows."""

    elapsed_s: float
    window_s: float  # the span the RED rows cover
    red: Sequence[RedRow]
    slos: Sequence[SLORow]
    store: str
    sent: int
    answered: int
    failed: int
    measured: int  # requests sloguard counted in its registry
    final: bool = False
    #: breaker states and refusals by code (``protection: off`` when none is set up)
    protection: str = ""


def _ms(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1000:.0f} ms"


def _percent(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}%"


def _red_table(frame: DemoFrame, plain: bool) -> Table:
    span = "whole run" if frame.final else f"last {frame.window_s:.0f} s"
    table = Table(
        title=f"RED per route, measured by sloguard ({span})",
        box=box.ASCII if plain else box.SIMPLE_HEAD,
        title_justify="left",
    )
    table.add_column("route")
    table.add_column("method")
    for name in ("req/s", "err %", "p50", "p95", "p99", "requests"):
        table.add_column(name, justify="right")
    for row in frame.red:
        error = f"{100.0 * row.error_ratio:.1f}%"
        table.add_row(
            row.route,
            row.method,
            f"{row.rate:.1f}",
            Text(error, style="red" if row.errors else ""),
            _ms(row.p50),
            _ms(row.p95),
            _ms(row.p99),
            f"{row.requests:.0f}",
        )
    return table


def _slo_table(frame: DemoFrame, plain: bool) -> Table:
    table = Table(
        title=f"SLOs, read back from the store ({frame.store})",
        box=box.ASCII if plain else box.SIMPLE_HEAD,
        title_justify="left",
    )
    table.add_column("SLO")
    table.add_column("kind")
    for name in ("objective", "good", "total", "SLI", "budget left", "burn 5m"):
        table.add_column(name, justify="right")
    table.add_column("firing")
    for slo in frame.slos:
        style = {True: "green", False: "red", None: ""}[slo.met]
        table.add_row(
            slo.name,
            slo.kind,
            _percent(slo.objective, 1),
            str(slo.good),
            str(slo.total),
            Text(_percent(slo.sli), style=style),
            _percent(slo.budget_left, 0),
            "-" if slo.burn_5m is None else f"{slo.burn_5m:.2f}",
            Text(", ".join(slo.firing) or "-", style="bold red" if slo.firing else ""),
        )
    return table


def render_frame(frame: DemoFrame, *, plain: bool = False) -> RenderableType:
    """The RED table, the SLO table and the sent-vs-measured line."""
    head = "summary" if frame.final else "running"
    totals = Text(
        f"{head} {frame.elapsed_s:.1f} s | load generator: sent {frame.sent}, "
        f"answered {frame.answered}, failed {frame.failed} | "
        f"sloguard measured {frame.measured}"
    )
    if frame.answered != frame.measured and frame.final:
        totals.append("  (mismatch!)", style="bold red")
    parts: list[RenderableType] = [totals]
    if frame.protection:
        parts.append(Text(frame.protection, style="" if "BRK" not in frame.protection else "red"))
    return Group(*parts, _red_table(frame, plain), _slo_table(frame, plain))


class DemoView:
    """Shows frames: live on a terminal, a plain table every ``plain_every_s`` otherwise."""

    def __init__(
        self,
        console: Console,
        *,
        plain_every_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.live = console.is_terminal and not console.is_dumb_terminal
        self._plain_every_s = plain_every_s
        self._clock = clock
        self._last_plain: float | None = None
        self._live: Live | None = None

    def __enter__(self) -> DemoView:
        if self.live:
            self._live = Live(console=self.console, refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
            self._live = None

    def show(self, frame: DemoFrame) -> None:
        """Redraw (live) or print if the plain interval has passed."""
        if self._live is not None:
            self._live.update(render_frame(frame), refresh=True)
            return
        now = self._clock()
        if self._last_plain is None:  # nothing worth a table yet
            self._last_plain = now
        elif now - self._last_plain >= self._plain_every_s:
            self._last_plain = now
            self.console.print(render_frame(frame, plain=True))

    def summary(self, frame: DemoFrame) -> None:
        """Print the final frame (after the live display is gone)."""
        self.console.print(render_frame(frame, plain=not self.live))
