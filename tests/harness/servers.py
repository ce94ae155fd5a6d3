"""The real Redis, Prometheus and Alertmanager the tests talk to.

Each server runs from its Debian binary in a temporary directory, listens on a
free port on 127.0.0.1 only, and counts as started once it answers (Redis
``PING``, ``GET /-/ready`` for the others). A port picked free can be taken
before the server binds it, so startup retries on a new port when the log says
"address already in use". Startup failures raise :class:`ServerStartError`
with the server's log tail; a missing binary raises
:class:`BinaryNotFoundError` with the install command.

The helpers are the few calls tests need against each API (PromQL queries,
waiting for a scrape, posting alerts); anything else goes through ``api()``
or the server's ``url``.

Budget for Prometheus: it is ready in well under a second, but hands new
targets to its scrapers only every 5 s (the discovery manager's fixed batching
in 2.42), so the first scrape of a fresh instance, or of a job added by
``reload()``, comes about 5 s after it. Poll with ``wait_for_scrape``; never
sleep.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from signal import SIGCONT, SIGSTOP
from typing import Any, ClassVar, Protocol, Self

import httpx
import yaml

from tests.harness.processes import (
    LOOPBACK,
    ManagedProcess,
    ServerStartError,
    child_env,
    free_port,
    wait_until,
)

__all__ = [
    "INSTALL_HINT",
    "STARTUP_SECONDS",
    "AlertmanagerServer",
    "BinaryNotFoundError",
    "PrometheusFactory",
    "PrometheusQueryError",
    "PrometheusServer",
    "RedisServer",
    "Sample",
    "ScrapeConfig",
    "Series",
    "ServerStartError",
    "find_binary",
    "postable_alert",
    "promtool",
]

# Seconds from launch to ready, per server name; the root conftest prints a summary.
STARTUP_SECONDS: defaultdict[str, list[float]] = defaultdict(list)
INSTALL_HINT = (
    "make servers  (or: sudo apt-get install redis-server prometheus prometheus-alertmanager)"
)
_START_ATTEMPTS = 5


class BinaryNotFoundError(RuntimeError):
    """A server binary is not installed."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        super().__init__(f"{' / '.join(names)} not found on PATH; install with: {INSTALL_HINT}")


def find_binary(*names: str) -> str:
    """The first of ``names`` on PATH (Debian and upstream names differ)."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    raise BinaryNotFoundError(names)


def promtool(
    *args: str, input: str | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run ``promtool`` (``check metrics`` reads ``input``; ``check rules FILE``)."""
    return subprocess.run(
        [find_binary("promtool"), *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class _Server:
    """Start on a free port (retrying on a clash), report readiness, stop."""

    name: ClassVar[str]
    binaries: ClassVar[tuple[str, ...]]

    def __init__(self, workdir: Path, *, extra_args: Sequence[str], timeout: float) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.binary = find_binary(*self.binaries)
        self.extra_args = list(extra_args)
        self.timeout = timeout
        self.host = LOOPBACK
        self.port = 0
        self.ready_seconds = 0.0
        self.process: ManagedProcess | None = None
        self._launches = 0

    def _command(self, port: int) -> list[str]:
        raise NotImplementedError

    def _is_ready(self, port: int) -> bool:
        raise NotImplementedError

    def start(self, *, same_port: bool = False) -> Self:
        """Launch and wait until ready; ``same_port`` reuses the last port."""
        if self.process is not None and not self.process.exited():
            raise RuntimeError(f"{self.name} is already running on port {self.port}")
        if same_port and not self.port:
            raise RuntimeError(f"{self.name} has no port yet; start() it first")
        attempts = 1 if same_port else _START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self.port if same_port else free_port()
            self._launches += 1
            began = time.monotonic()
            process = ManagedProcess(
                self._command(port),
                log_dir=self.workdir,
                name=f"{self.name}-{self._launches}",
                env=child_env(),
                cwd=self.workdir,
            )
            try:
                what = f"{self.name} on {LOOPBACK}:{port}"
                wait_until(lambda: self._is_ready(port), process, what=what, timeout=self.timeout)
                if process.exited():  # answered, but another process holds the port
                    raise ServerStartError(f"{what} exited after answering\n{process.log_tail()}")
            except ServerStartError:
                process.stop(timeout=2)
                if attempt < attempts and "address already in use" in process.output().lower():
                    continue
                raise
            except BaseException:
                process.stop(timeout=2)
                raise
            self.port, self.process = port, process
            self.ready_seconds = time.monotonic() - began
            STARTUP_SECONDS[self.name].append(self.ready_seconds)
            return self
        raise AssertionError("unreachable")  # the last attempt returns or raises

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code (None if not running)."""
        if self.process is None:
            return None
        return self.process.stop(timeout=timeout)

    def is_running(self) -> bool:
        return self.process is not None and not self.process.exited()

    def log_tail(self, lines: int = 30) -> str:
        return self.process.log_tail(lines) if self.process else ""

    def __enter__(self) -> Self:
        if not self.is_running():
            try:
                self.start()
            except BaseException:
                self.stop()
                raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class RedisServer(_Server):
    """``redis-server`` without persistence; can be killed and restarted on its port."""

    name = "redis"
    binaries = ("redis-server",)

    def __init__(
        self, workdir: Path, *, extra_args: Sequence[str] = (), timeout: float = 10.0
    ) -> None:
        super().__init__(workdir, extra_args=extra_args, timeout=timeout)

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def _command(self, port: int) -> list[str]:
        return [
            self.binary,
            "--port", str(port),
            "--bind", LOOPBACK,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.workdir),
            *self.extra_args,
        ]  # fmt: skip

    def _is_ready(self, port: int) -> bool:
        try:
            return self._command_reply(port, "PING") == "+PONG"
        except OSError:
            return False

    def command(self, *args: str, timeout: float = 2.0) -> str:
        """Send one command and return its one-line reply (``+OK``, ``:1``, ``-ERR ...``).

        Enough for PING, FLUSHALL, DBSIZE or CONFIG SET; use redis-py for more.
        """
        return self._command_reply(self.port, *args, timeout=timeout)

    def ping(self) -> bool:
        return self.is_running() and self._is_ready(self.port)

    def flushall(self) -> None:
        reply = self.command("FLUSHALL")
        if reply != "+OK":
            raise RuntimeError(f"FLUSHALL answered {reply!r}")

    def kill(self) -> None:
        """SIGKILL Redis, as a crash looks to its clients."""
        if self.process is not None:
            self.process.kill()

    def pause(self) -> None:
        """SIGSTOP Redis: connections open, nothing answers (a hung server)."""
        if self.process is not None:
            self.process.proc.send_signal(SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.proc.send_signal(SIGCONT)

    def restart(self) -> Self:
        """Start again on the same port after ``stop()`` or ``kill()``."""
        if self.is_running():
            self.stop()
        return self.start(same_port=True)

    def ensure_running(self) -> None:
        """Resume or restart on the same port if a test left Redis paused or stopped."""
        self.resume()
        if not self.is_running():
            self.start(same_port=True)

    @staticmethod
    def _command_reply(port: int, *args: str, timeout: float = 2.0) -> str:
        encoded = [a.encode() for a in args]
        frame = b"*%d\r\n" % len(encoded) + b"".join(
            b"$%d\r\n%s\r\n" % (len(a), a) for a in encoded
        )
        with socket.create_connection((LOOPBACK, port), timeout=timeout) as sock:
            sock.sendall(frame)
            reply = b""
            while not reply.endswith(b"\r\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionResetError("redis closed the connection")
                reply += chunk
        return reply.decode().split("\r\n", 1)[0]


@dataclass(frozen=True, slots=True)
class ScrapeConfig:
    """One Prometheus scrape job; ``extra`` is merged into its config as-is."""

    job: str
    targets: Sequence[str]
    interval: str = "1s"
    metrics_path: str = "/metrics"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_config(self) -> dict[str, Any]:
        return {
            "job_name": self.job,
            "scrape_interval": self.interval,
            "scrape_timeout": self.interval,
            "metrics_path": self.metrics_path,
            "static_configs": [{"targets": list(self.targets)}],
            **self.extra,
        }


@dataclass(frozen=True, slots=True)
class Sample:
    """One element of an instant-query result."""

    labels: Mapping[str, str]
    timestamp: float
    value: float


@dataclass(frozen=True, slots=True)
class Series:
    """One series of a range-query result: ``(timestamp, value)`` pairs."""

    labels: Mapping[str, str]
    values: tuple[tuple[float, float], ...]


class PrometheusQueryError(RuntimeError):
    """Prometheus answered a query with an error (bad PromQL, timeout …)."""


class _HttpServer(_Server):
    """A server with an HTTP API and ``/-/ready``."""

    def __init__(self, workdir: Path, *, extra_args: Sequence[str], timeout: float) -> None:
        super().__init__(workdir, extra_args=extra_args, timeout=timeout)
        self.http = httpx.Client(timeout=10.0, trust_env=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _is_ready(self, port: int) -> bool:
        try:
            return self.http.get(f"http://{LOOPBACK}:{port}/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def _has_flag(self, flag: str) -> bool:
        return any(a == flag or a.startswith(f"{flag}=") for a in self.extra_args)

    def stop(self, timeout: float = 10.0) -> int | None:
        self.http.close()
        return super().stop(timeout)


class PrometheusServer(_HttpServer):
    """Prometheus scraping the given targets, evaluating the given rule files.

    Always passes ``--config.file``, ``--web.listen-address`` and
    ``--web.enable-lifecycle`` (for ``reload()``); ``--storage.tsdb.path``
    defaults to ``workdir/data`` unless ``extra_args`` sets it.
    """

    name = "prometheus"
    binaries = ("prometheus",)

    def __init__(
        self,
        workdir: Path,
        *,
        scrape_configs: Sequence[ScrapeConfig | Mapping[str, Any]] = (),
        rule_files: Sequence[Path | str] = (),
        evaluation_interval: str = "1s",
        extra_args: Sequence[str] = (),
        timeout: float = 20.0,
    ) -> None:
        super().__init__(workdir, extra_args=extra_args, timeout=timeout)
        self.config_path = workdir / "prometheus.yml"
        self.evaluation_interval = evaluation_interval
        self.write_config(scrape_configs, rule_files)

    def write_config(
        self,
        scrape_configs: Sequence[ScrapeConfig | Mapping[str, Any]],
        rule_files: Sequence[Path | str],
    ) -> None:
        jobs = [c.to_config() if isinstance(c, ScrapeConfig) else dict(c) for c in scrape_configs]
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": self.evaluation_interval},
            "rule_files": [str(Path(f).resolve()) for f in rule_files],
            "scrape_configs": jobs,
        }
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def _command(self, port: int) -> list[str]:
        args = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--web.listen-address={LOOPBACK}:{port}",
        ]
        if not self._has_flag("--storage.tsdb.path"):
            args.append(f"--storage.tsdb.path={self.workdir / 'data'}")
        if not self._has_flag("--web.enable-lifecycle"):
            args.append("--web.enable-lifecycle")
        return [*args, *self.extra_args]

    def api(self, path: str, **params: Any) -> Any:
        """``GET /api/v1/<path>``; the ``data`` member, or PrometheusQueryError."""
        response = self.http.get(f"{self.url}/api/v1/{path}", params=params)
        body = response.json()
        if body.get("status") != "success":
            raise PrometheusQueryError(f"{body.get('errorType')}: {body.get('error')} ({params})")
        return body["data"]

    def query(self, promql: str, time: float | None = None) -> list[Sample]:
        """An instant query; a scalar comes back as one sample without labels."""
        params: dict[str, Any] = {"query": promql}
        if time is not None:
            params["time"] = time
        data = self.api("query", **params)
        if data["resultType"] in ("scalar", "string"):
            ts, value = data["result"]
            return [Sample({}, float(ts), float(value))]
        if data["resultType"] != "vector":
            raise PrometheusQueryError(f"{promql!r} is a {data['resultType']}; use api('query')")
        return [
            Sample(r["metric"], float(r["value"][0]), float(r["value"][1])) for r in data["result"]
        ]

    def query_range(self, promql: str, start: float, end: float, step: float) -> list[Series]:
        data = self.api("query_range", query=promql, start=start, end=end, step=step)
        return [
            Series(r["metric"], tuple((float(t), float(v)) for t, v in r["values"]))
            for r in data["result"]
        ]

    def targets(self) -> list[dict[str, Any]]:
        """The active targets, with ``health``, ``lastScrape`` and ``lastError``."""
        active: list[dict[str, Any]] = self.api("targets", state="active")["activeTargets"]
        return active

    def wait_for_scrape(
        self, job: str, *, after: float | None = None, min_scrapes: int = 1, timeout: float = 15.0
    ) -> float:
        """Wait for ``min_scrapes`` successful scrapes of ``job`` that began after ``after``.

        ``after`` (unix seconds) defaults to now, so the scrape sees what the
        test did before calling. Returns the start time of the latest such
        scrape; its samples are queryable at that time.
        """
        after = time.time() if after is None else after
        deadline = time.monotonic() + timeout
        while True:
            window = math.ceil(time.time() - after) + 5
            data = self.api("query", query=f"up{{job={json.dumps(job)}}}[{window}s]")
            stamps = [
                float(ts)
                for series in data["result"]
                for ts, value in series["values"]
                if float(ts) > after and value == "1"
            ]
            if len(stamps) >= min_scrapes:
                return max(stamps)
            if time.monotonic() > deadline:
                states = [
                    (t["scrapeUrl"], t["health"], t["lastError"])
                    for t in self.targets()
                    if t["labels"].get("job") == job
                ]
                raise TimeoutError(
                    f"{len(stamps)}/{min_scrapes} scrapes of job {job!r} after {after} "
                    f"within {timeout}s; targets: {states}\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def reload(
        self,
        *,
        scrape_configs: Sequence[ScrapeConfig | Mapping[str, Any]] | None = None,
        rule_files: Sequence[Path | str] | None = None,
    ) -> None:
        """Rewrite the config if given new parts, then ``POST /-/reload``."""
        if scrape_configs is not None or rule_files is not None:
            current = yaml.safe_load(self.config_path.read_text())
            self.write_config(
                current["scrape_configs"] if scrape_configs is None else scrape_configs,
                current["rule_files"] if rule_files is None else rule_files,
            )
        response = self.http.post(f"{self.url}/-/reload")
        if response.status_code != 200:
            raise ServerStartError(f"reload failed: {response.text}\n{self.log_tail()}")


class PrometheusFactory(Protocol):
    """What the ``prometheus_factory`` fixture yields: start one, stopped at test end."""

    def __call__(
        self,
        scrape_configs: Sequence[ScrapeConfig | Mapping[str, Any]] = (),
        *,
        rule_files: Sequence[Path | str] = (),
        evaluation_interval: str = "1s",
        extra_args: Sequence[str] = (),
    ) -> PrometheusServer: ...


def postable_alert(
    labels: Mapping[str, str],
    *,
    annotations: Mapping[str, str] | None = None,
    starts_at: str | None = None,
    ends_at: str | None = None,
    generator_url: str | None = None,
) -> dict[str, Any]:
    """An alert as ``POST /api/v2/alerts`` takes it (times are RFC 3339)."""
    alert: dict[str, Any] = {"labels": dict(labels), "annotations": dict(annotations or {})}
    optional = {"startsAt": starts_at, "endsAt": ends_at, "generatorURL": generator_url}
    alert.update({k: v for k, v in optional.items() if v is not None})
    return alert


class AlertmanagerServer(_HttpServer):
    """Alertmanager, gossip off, routing everything to one webhook receiver."""

    name = "alertmanager"
    binaries = ("prometheus-alertmanager", "alertmanager")
    DEFAULT_WEBHOOK = f"http://{LOOPBACK}:9/sloguard-test-webhook"

    def __init__(
        self,
        workdir: Path,
        *,
        webhook_url: str = DEFAULT_WEBHOOK,
        config: Mapping[str, Any] | None = None,
        extra_args: Sequence[str] = (),
        timeout: float = 20.0,
    ) -> None:
        super().__init__(workdir, extra_args=extra_args, timeout=timeout)
        if config is None:
            config = {
                "route": {
                    "receiver": "webhook",
                    "group_by": ["alertname"],
                    "group_wait": "0s",
                    "group_interval": "1s",
                    "repeat_interval": "1h",
                },
                "receivers": [
                    {"name": "webhook", "webhook_configs": [{"url": webhook_url}]},
                ],
            }
        self.config_path = workdir / "alertmanager.yml"
        self.config_path.write_text(yaml.safe_dump(dict(config), sort_keys=False))

    def _command(self, port: int) -> list[str]:
        args = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--web.listen-address={LOOPBACK}:{port}",
            "--cluster.listen-address=",
        ]
        if not self._has_flag("--storage.path"):
            args.append(f"--storage.path={self.workdir / 'data'}")
        return [*args, *self.extra_args]

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        response = self.http.post(f"{self.url}/api/v2/alerts", json=list(alerts))
        if response.status_code != 200:
            raise RuntimeError(f"POST /api/v2/alerts: {response.status_code} {response.text}")

    def alerts(self, *filters: str, active: bool = True) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts``; ``filters`` are matchers such as ``alertname="X"``."""
        params: list[tuple[str, str | int | float | bool | None]] = [("filter", f) for f in filters]
        params.append(("active", active))
        response = self.http.get(f"{self.url}/api/v2/alerts", params=params)
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()
        return alerts
