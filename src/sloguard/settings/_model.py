"""The settings model: one frozen pydantic model per section."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from sloguard.settings._base import LOOPBACK, Ratio, _Section
from sloguard.settings._inject import InjectSettings
from sloguard.settings._resilience import ResilienceSettings
from sloguard.slo.spec import SLOSpec

__all__ = [
    "AdminSettings",
    "AuthSettings",
    "ClaimsSettings",
    "JWKSSettings",
    "PolicySourceSettings",
    "StaticKeySettings",
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
    #: the server span through sloguard's FastTracer (same sampler, ids and
    #: processors, about a third of the SDK span's cost); false keeps the SDK span
    fast_spans: bool = True

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


class StaticKeySettings(_Section):
    """A verification key from a file or an environment variable: PEM, JWK JSON or HMAC secret."""

    kid: str | None = None
    file: Path | None = None
    env: str | None = None
    algorithms: tuple[str, ...]

    @model_validator(mode="after")
    def _one_source(self) -> StaticKeySettings:
        if (self.file is None) == (self.env is None):
            raise ValueError("give exactly one of file or env")
        return self


class JWKSSettings(_Section):
    url: str
    algorithms: tuple[str, ...] = ("RS256", "ES256", "PS256", "EdDSA")
    ttl_s: Annotated[float, Field(gt=0)] = 300.0
    min_refetch_interval_s: Annotated[float, Field(ge=0)] = 30.0
    timeout_s: Annotated[float, Field(gt=0)] = 2.0


class ClaimsSettings(_Section):
    """Claim paths (dots for nesting: ``realm_access.roles``) for each Principal field."""

    subject: str = "sub"
    roles: tuple[str, ...] = ("roles",)
    tenant: str | None = "tenant"
    scopes: tuple[str, ...] = ("scope", "scp")


class PolicySourceSettings(_Section):
    file: Path | None = None
    redis_url: str | None = None
    redis_key: str = "sloguard:auth:policy"
    redis_channel: str = "sloguard:auth:policy:changed"
    poll_interval_s: Annotated[float, Field(gt=0)] = 1.0

    @model_validator(mode="after")
    def _at_most_one(self) -> PolicySourceSettings:
        if self.file is not None and self.redis_url is not None:
            raise ValueError("give a policy file or a Redis URL, not both")
        return self


class AuthSettings(_Section):
    enabled: bool = False
    cookie: str | None = None
    allow_query_token: bool = False
    query_param: str = "access_token"
    max_token_bytes: Annotated[int, Field(ge=256, le=65536)] = 8192
    issuers: tuple[str, ...] = ()
    audiences: tuple[str, ...] = ()
    leeway_s: Annotated[float, Field(ge=0, le=600)] = 30.0
    max_future_iat_s: Annotated[float, Field(ge=0)] = 300.0
    required_claims: tuple[str, ...] = ("exp",)
    static_keys: tuple[StaticKeySettings, ...] = ()
    jwks: tuple[JWKSSettings, ...] = ()
    claims: ClaimsSettings = ClaimsSettings()
    policy: PolicySourceSettings = PolicySourceSettings()
    token_cache_size: Annotated[int, Field(ge=0)] = 10_000
    principal_on_span: bool = True

    @model_validator(mode="after")
    def _keys_when_enabled(self) -> AuthSettings:
        if self.enabled and not (self.static_keys or self.jwks):
            raise ValueError("auth is enabled but no static_keys or jwks are configured")
        return self


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
    auth: AuthSettings = AuthSettings()
    resilience: ResilienceSettings = ResilienceSettings()
    inject: InjectSettings = InjectSettings()
