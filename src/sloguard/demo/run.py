"""``sloguard demo``: the shop, guarded, under load, watched live.

One event loop runs everything: uvicorn serving the guarded shop on a
loopback socket, the load driver, and the view, which reads RED figures from
the guard's registry and SLO counts back from the embedded store. Stopping
(``--duration`` elapsed, or Ctrl-C) goes in order so nothing is lost: the
load stops and its requests in flight finish, the server shuts down (its
lifespan shutdown flushes the SLI counts), the guard is closed, and the
final summary is read from the store. A second Ctrl-C forces the stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import socket
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console

from sloguard.asgi import guard
from sloguard.demo.load import LoadDriver
from sloguard.demo.protection import read_protection
from sloguard.demo.red import MetricsSnapshot, read_registry, red_rows
from sloguard.demo.server import DemoError, QuietServer, bind, is_loopback, url_host
from sloguard.demo.settings import demo_settings
from sloguard.demo.shop import ShopConfig, build_shop
from sloguard.demo.view import DemoFrame, DemoView, SLORow
from sloguard.settings import Settings
from sloguard.slo._budget import burn_rate
from sloguard.slo._engine import definition_from_spec, evaluate
from sloguard.store import SQLiteStore

__all__ = ["DemoResult", "run_demo"]

WINDOW_S = 10.0  # the live RED table covers this much recent time
REFRESH_S = 0.5
FORCED_EXIT = 130
PLAIN_WIDTH = 110


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What a demo run did, for the CLI's exit code and for tests."""

    exit_code: int
    app_url: str
    metrics_url: str
    store: Path
    elapsed_s: float
    sent: int
    answered: int
    failed: int
    server_errors: int  # 5xx answers the load generator received
    measured: int
    slos: tuple[SLORow, ...]


def run_demo(
    *,
    duration: float = 0.0,
    rps: float = 20.0,
    port: int = 8000,
    host: str = "127.0.0.1",
    store: Path | str = Path(".sloguard/demo.db"),
    error_rate: float = 0.02,
    slow_rate: float = 0.05,
    config: Path | None = None,
    seed: int | None = None,
    console: Console | None = None,
    plain_every_s: float = 5.0,
) -> DemoResult:
    """Run the demo until ``duration`` seconds pass (0: until Ctrl-C).

    Raises :class:`DemoError` for options it cannot run with, and
    :class:`sloguard.settings.ConfigError` for a bad ``sloguard.yaml``.
    """
    if rps <= 0:
        raise DemoError(f"--rps must be positive, got {rps}")
    if duration < 0:
        raise DemoError(f"--duration must be 0 (until Ctrl-C) or positive, got {duration}")
    if not 0 <= port <= 65535:
        raise DemoError(f"--port must be 0-65535, got {port}")
    try:
        shop_config = ShopConfig(error_rate=error_rate, slow_rate=slow_rate, seed=seed)
    except ValueError as exc:
        raise DemoError(
            str(exc).replace("error_rate", "--error-rate").replace("slow_rate", "--slow-rate")
        ) from None
    store_path = Path(store)
    store_path.parent.mkdir(parents=True, exist_ok=True)
    settings = demo_settings(store_path, config)
    console = console or _default_console()
    sock = bind(host, port)
    try:
        demo = _Demo(
            settings, shop_config, console, rps=rps, seed=seed, plain_every_s=plain_every_s
        )
    except BaseException:
        sock.close()
        raise
    return asyncio.run(demo.run(sock, host, duration))


def _default_console() -> Console:
    console = Console()
    if not console.is_terminal and console.width < PLAIN_WIDTH:
        console = Console(width=PLAIN_WIDTH)  # a pipe or CI log: room for the whole table
    return console


@contextlib.contextmanager
def _quiet_loggers(*names: str) -> Iterator[None]:
    """Silence the load generator's own client logs (one line per request) for a while."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


class _Demo:
    def __init__(
        self,
        settings: Settings,
        shop: ShopConfig,
        console: Console,
        *,
        rps: float,
        seed: int | None,
        plain_every_s: float,
    ) -> None:
        self.settings = settings
        self.guarded = guard(build_shop(shop), settings)
        self.console = console
        self.rps = rps
        self.rng = random.Random(seed)
        self.plain_every_s = plain_every_s
        self.store = settings.sli.store_path
        self.slos = settings.sli.slos
        self.service = settings.service.name
        self.stop = asyncio.Event()
        self.forced = False
        self.load_tasks: list[asyncio.Task[Any]] = []

    async def run(self, sock: socket.socket, host: str, duration: float) -> DemoResult:
        app_url = f"http://{url_host(host)}:{sock.getsockname()[1]}"
        metrics = self.settings.metrics
        metrics_url = (
            f"http://{url_host(metrics.host)}:{metrics.port}{metrics.path}"
            if metrics.port is not None
            else f"{app_url}{metrics.path}"
        )
        loop = asyncio.get_running_loop()
        server = QuietServer(
            uvicorn.Config(
                self.guarded,
                host=host,
                port=sock.getsockname()[1],
                log_level="warning",
                lifespan="on",
                ws="none",
                access_log=False,
            )
        )
        with self._signals(loop, server), _quiet_loggers("httpx", "httpcore"):
            try:
                start_minute = int(time.time()) // 60
                baseline = await asyncio.to_thread(self._read_store, start_minute, start_minute + 1)
                serving = asyncio.create_task(server.serve(sockets=[sock]))
                await self._started(server, serving)
            except BaseException:
                sock.close()
                self.guarded.close()
                raise
            self._announce(host, app_url, metrics_url)
            first = read_registry(self.guarded.registry, loop.time())
            if duration > 0:
                loop.call_later(duration, self.stop.set)
            driver = await self._drive(app_url, first, start_minute, baseline)
            server.should_exit = True
            await serving  # in-flight requests finish; lifespan shutdown flushes the SLIs
            self.guarded.close()  # idempotent: flushes if the lifespan did not run
        final = read_registry(self.guarded.registry, loop.time())
        slos = await asyncio.to_thread(self._slo_rows, start_minute, baseline)
        frame = self._frame(driver, final, first, slos, final.at - first.at, final=True)
        self.console.print()
        self.console.print(_title(app_url, metrics_url, self.store, final=True))
        DemoView(self.console).summary(frame)
        return DemoResult(
            exit_code=FORCED_EXIT if self.forced else 0,
            app_url=app_url,
            metrics_url=metrics_url,
            store=self.store,
            elapsed_s=frame.elapsed_s,
            sent=driver.counts.sent,
            answered=driver.counts.answered,
            failed=driver.counts.failed,
            server_errors=sum(r.by_class["5xx"] for r in driver.counts.routes.values()),
            measured=frame.measured,
            slos=slos,
        )

    async def _started(self, server: QuietServer, serving: asyncio.Task[None]) -> None:
        while not server.started:
            if serving.done():
                with contextlib.suppress(SystemExit):  # uvicorn exits on a failed startup
                    serving.result()
                raise DemoError("the shop server did not start (see the log above)")
            if self.stop.is_set():
                server.should_exit = True
            await asyncio.sleep(0.01)

    def _announce(self, host: str, app_url: str, metrics_url: str) -> None:
        if not is_loopback(host):
            self.console.print(f"[bold yellow]warning:[/] serving on {host}, not loopback")
        self.console.print(_title(app_url, metrics_url, self.store, final=False))

    @contextlib.contextmanager
    def _signals(self, loop: asyncio.AbstractEventLoop, server: QuietServer) -> Iterator[None]:
        handled: list[signal.Signals] = []

        def interrupted() -> None:
            if self.stop.is_set():  # a second Ctrl-C: stop waiting for anything
                self.forced = True
                server.force_exit = True
                for task in self.load_tasks:
                    task.cancel()
            self.stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, interrupted)
            except (RuntimeError, ValueError, NotImplementedError):
                continue  # not the main thread, or no signals here: --duration still works
            handled.append(sig)
        try:
            yield
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)

    async def _drive(
        self,
        app_url: str,
        first: MetricsSnapshot,
        start_minute: int,
        baseline: dict[str, tuple[int, int]],
    ) -> LoadDriver:
        """Load the shop until stopped, redrawing the view; return once the load has drained."""
        loop = asyncio.get_running_loop()
        history: deque[MetricsSnapshot] = deque([first])
        async with httpx.AsyncClient(
            base_url=app_url,
            trust_env=False,  # loopback only: never through a proxy from the environment
            timeout=httpx.Timeout(10.0),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        ) as client:
            driver = LoadDriver(client, rps=self.rps, rng=self.rng)
            loading = asyncio.create_task(driver.run(self.stop))
            self.load_tasks.append(loading)
            with DemoView(self.console, plain_every_s=self.plain_every_s) as view:
                while not loading.done():
                    await asyncio.wait({loading}, timeout=REFRESH_S)
                    history.append(read_registry(self.guarded.registry, loop.time()))
                    while len(history) > 2 and history[-1].at - history[1].at >= WINDOW_S:
                        history.popleft()
                    slos = await asyncio.to_thread(self._slo_rows, start_minute, baseline)
                    elapsed = history[-1].at - first.at
                    view.show(self._frame(driver, history[-1], history[0], slos, elapsed))
            with contextlib.suppress(asyncio.CancelledError):  # a forced stop
                await loading
        return driver

    def _frame(
        self,
        driver: LoadDriver,
        newer: MetricsSnapshot,
        older: MetricsSnapshot,
        slos: Sequence[SLORow],
        elapsed: float,
        *,
        final: bool = False,
    ) -> DemoFrame:
        return DemoFrame(
            elapsed_s=elapsed,
            window_s=newer.at - older.at,
            red=red_rows(newer, older),
            slos=slos,
            store=str(self.store),
            sent=driver.counts.sent,
            answered=driver.counts.answered,
            failed=driver.counts.failed,
            measured=round(newer.total),
            final=final,
            protection=read_protection(self.guarded.registry).describe(),
        )

    def _read_store(self, start_minute: int, end_minute: int) -> dict[str, tuple[int, int]]:
        store = SQLiteStore(self.store)
        try:
            return {slo.name: store.totals(slo.name, start_minute, end_minute) for slo in self.slos}
        finally:
            store.close()

    def _slo_rows(
        self, start_minute: int, baseline: dict[str, tuple[int, int]]
    ) -> tuple[SLORow, ...]:
        """This run's counts (store totals since the start, less what was there before),
        with the SLO engine's view of now: the 5-minute burn rate and the firing tiers."""
        now = datetime.now(UTC)
        end_minute = int(now.timestamp()) // 60 + 1
        totals = self._read_store(start_minute, end_minute)
        engine = self._engine_view(now, end_minute)
        rows = []
        for slo in self.slos:
            good, total = totals[slo.name]
            before_good, before_total = baseline.get(slo.name, (0, 0))
            burn, firing = engine.get(slo.name, (None, ()))
            rows.append(
                SLORow(
                    name=slo.name,
                    kind=slo.kind.value,
                    objective=slo.objective,
                    good=good - before_good,
                    total=total - before_total,
                    burn_5m=burn,
                    firing=firing,
                )
            )
        return tuple(rows)

    def _engine_view(
        self, now: datetime, end_minute: int
    ) -> dict[str, tuple[float | None, tuple[str, ...]]]:
        """Per SLO: burn rate over the last 5 minutes and the tiers firing, from the store."""
        view: dict[str, tuple[float | None, tuple[str, ...]]] = {}
        with SQLiteStore(self.store) as store:
            for slo in self.slos:
                definition = definition_from_spec(slo, self.service)
                longest = max(t.long_window for t in definition.alerting.tiers)
                start = end_minute - int(longest.total_seconds()) // 60 - 1
                series = store.series(slo.name, start, end_minute)
                status = evaluate(definition, series, now)
                good, total = store.totals(slo.name, end_minute - 5, end_minute)
                burn = burn_rate(good, total, definition.target)
                firing = tuple(t.tier.name for t in status.firing)
                view[slo.name] = (None if burn is None else float(burn), firing)
        return view


def _title(app_url: str, metrics_url: str, store: Path, *, final: bool) -> str:
    if final:
        return f"[bold]sloguard demo stopped[/] — the shop served {app_url}"
    return (
        f"[bold]sloguard demo[/]: the shop, guarded by sloguard\n"
        f"  app      {app_url}/products\n"
        f"  metrics  {metrics_url}\n"
        f"  store    {store}\n"
        "Press Ctrl-C to stop."
    )
