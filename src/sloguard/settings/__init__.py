"""One settings model for every part of sloguard.

``sloguard.yaml`` (or the file named by ``SLOGUARD_CONFIG``) plus
``SLOGUARD_<SECTION>__<FIELD>`` environment overrides, validated by pydantic.
Each part of sloguard takes only its own section (``settings.tracing``,
``settings.metrics`` …). Invalid input raises :class:`ConfigError`, whose
message names the file, line and field (or the environment variable).
"""

from sloguard.settings._load import ConfigError, load_settings
from sloguard.settings._model import (
    AdminSettings,
    AuthSettings,
    ContextSettings,
    LoggingSettings,
    MetricsSettings,
    RequestSettings,
    RoutingSettings,
    ServiceSettings,
    Settings,
    SLISettings,
    TracingSettings,
)

__all__ = [
    "AdminSettings",
    "AuthSettings",
    "ConfigError",
    "ContextSettings",
    "LoggingSettings",
    "MetricsSettings",
    "RequestSettings",
    "RoutingSettings",
    "SLISettings",
    "ServiceSettings",
    "Settings",
    "TracingSettings",
    "load_settings",
]
