"""The settings model: one frozen pydantic model per section."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sloguard.slo.spec import SLOSpec

__all__ = [
    "AdminSettings",
    "ContextSettings",
    "LoggingSettings",
    "MetricsSettings",
    "RequestSettings",
    "RoutingSettings",
    "SLISettings",
    "ServiceSettings",
    "Settings",
    "TracingSettings",
]

Ratio = Annotated[float, Field(ge=0.0, le=1.0)]

DEFAULT_REDACTED_HEADERS = (
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "x-auth-token",
    "x-csrf-token",
)
DEFAULT_REDACTED_QUERY = (
    "access_token",
    "api_key",
    "apikey",
    "auth",
    "code",
    "id_token",
    "key",
    "password",
    "refresh_token",
    "secret",
    "sig",
    "signature",
    "token",
)
LOOPBACK = ("127.0.0.0/8", "::1/128")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceSettings(_Section):
    name: str = "app"
    version: str = ""
    environment: str = ""


class RequestSettings(_Section):
    request_id_header: str = "x-request-id"
    echo_request_id: bool = True
    max_header_bytes: Annotated[int, Field(ge=64, le=65536)] = 8192

    @field_validator("request_id_header")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.lower()


def _check_networks(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        if value == "*":
            continue
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not an IP network (CIDR) or '*'") from exc
    return values


class TracingSettings(_Section):
    enabled: bool = True
    exporter: Literal["none", "console", "otlp-http", "otlp-grpc"] = "none"
    otlp_endpoint: str | None = None
    otlp_headers: dict[str, str] = Field(default_factory=dict)
    sample_ratio: Ratio = 1.0
    route_sample_ratios: dict[str, Ratio] = Field(default_factory=dict)
    propagators: tuple[Literal["tracecontext", "b3", "x-trace-id"], ...] = (
        "tracecontext",
        "b3",
        "x-trace-id",
    )
    trusted_sources: tuple[str, ...] = LOOPBACK
    record_client_address: bool = True

    _networks = field_validator("trusted_sources")(_check_networks)


class MetricsSettings(_Section):
    enabled: bool = True
    path: str = "/metrics"
    port: Annotated[int, Field(ge=0, le=65535)] | None = None
    host: str = "127.0.0.1"
    multiprocess_dir: Path | None = None
    duration_buckets: tuple[float, ...] = (
        0.005,
        0.01,
        0.025,
        0.05,
        0.075,
        0.1,
        0.25,
        0.5,
        0.75,
        1.0,
        2.5,
        5.0,
        7.5,
        10.0,
    )
    size_buckets: tuple[float, ...] = (100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)
    exclude_paths: tuple[str, ...] = ()

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with '/'")
        return value

    @field_validator("duration_buckets", "size_buckets")
    @classmethod
    def _sorted(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if list(value) != sorted(set(value)) or not value:
            raise ValueError("buckets must be a non-empty, strictly increasing list")
        return value


class LoggingSettings(_Section):
    enabled: bool = True
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    json_format: bool = True
    access_log: bool = True
    access_logger: str = "sloguard.access"
    logged_headers: tuple[str, ...] = ()
    redact_headers: tuple[str, ...] = DEFAULT_REDACTED_HEADERS
    redact_query_params: tuple[str, ...] = DEFAULT_REDACTED_QUERY
    configure_root: bool = True

    @field_validator("logged_headers", "redact_headers", "redact_query_params")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.lower() for v in value)


class RoutingSettings(_Section):
    templates: tuple[str, ...] = ()
    trailing_slash: Literal["strip", "keep"] = "strip"
    max_cached_paths: Annotated[int, Field(ge=0)] = 4096


class SLISettings(_Section):
    enabled: bool = True
    store_path: Path = Path(".sloguard/sli.db")
    flush_interval_s: Annotated[float, Field(gt=0, le=300)] = 5.0
    slos: tuple[SLOSpec, ...] = ()

    @field_validator("slos")
    @classmethod
    def _unique(cls, value: tuple[SLOSpec, ...]) -> tuple[SLOSpec, ...]:
        seen: set[str] = set()
        for slo in value:
            if slo.name in seen:
                raise ValueError(f"duplicate SLO name {slo.name!r}")
            seen.add(slo.name)
        return value


class ContextSettings(_Section):
    patch_executors: bool = True


class AdminSettings(_Section):
    enabled: bool = True
    path_prefix: str = "/-/sloguard"
    allowed_sources: tuple[str, ...] = LOOPBACK

    _networks = field_validator("allowed_sources")(_check_networks)


class Settings(_Section):
    service: ServiceSettings = ServiceSettings()
    request: RequestSettings = RequestSettings()
    tracing: TracingSettings = TracingSettings()
    metrics: MetricsSettings = MetricsSettings()
    logging: LoggingSettings = LoggingSettings()
    routing: RoutingSettings = RoutingSettings()
    sli: SLISettings = SLISettings()
    context: ContextSettings = ContextSettings()
    admin: AdminSettings = AdminSettings()
