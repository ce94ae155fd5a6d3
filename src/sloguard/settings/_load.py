"""Read ``sloguard.yaml`` and ``SLOGUARD_*`` variables into :class:`Settings`.

Errors point at their source: ``sloguard.yaml:14: tracing.sample_ratio: Input
should be less than or equal to 1`` for the file, ``SLOGUARD_TRACING__SAMPLE_RATIO:
…`` for an environment override.

Environment overrides use ``SLOGUARD_<SECTION>__<FIELD>`` (double underscore
between levels); values are parsed as YAML scalars or flow collections, so
``SLOGUARD_TRACING__TRUSTED_SOURCES='["10.0.0.0/8"]'`` works. They win over
the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sloguard._yamlpos import line_of as _line_of
from sloguard.settings._model import Settings

__all__ = ["ENV_PREFIX", "ConfigError", "load_settings"]

ENV_PREFIX = "SLOGUARD_"
CONFIG_ENV = "SLOGUARD_CONFIG"
DEFAULT_FILE = "sloguard.yaml"
# Variables with the prefix that are not settings overrides.
_NOT_SETTINGS = frozenset({CONFIG_ENV, "SLOGUARD_BOOTSTRAPPED"})


class ConfigError(Exception):
    """Invalid configuration. ``problems`` lists ``(where, field, message)``."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems
        super().__init__("\n".join(f"{where}: {field}: {msg}" for where, field, msg in problems))


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Load settings from a YAML file and the environment.

    ``path`` None means ``$SLOGUARD_CONFIG``, else ``./sloguard.yaml`` if it
    exists, else defaults only. A path given explicitly must exist.
    """
    env = os.environ if env is None else env
    explicit = path is not None or CONFIG_ENV in env
    file = Path(path if path is not None else env.get(CONFIG_ENV, DEFAULT_FILE))
    data: dict[str, Any] = {}
    node: yaml.Node | None = None
    if file.exists():
        data, node = _read_yaml(file)
    elif explicit:
        raise ConfigError([(str(file), "-", "file not found")])

    origins: dict[tuple[str, ...], str] = {}
    _apply_env(data, env, origins)
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_problems(exc, file, node, origins)) from None


def _read_yaml(file: Path) -> tuple[dict[str, Any], yaml.Node | None]:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([(str(file), "-", f"cannot read: {exc}")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{file}:{mark.line + 1}" if mark is not None else str(file)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([(where, "-", f"invalid YAML: {problem}")]) from None
    if data is None:
        return {}, None
    if not isinstance(data, dict):
        raise ConfigError([(f"{file}:1", "-", "the top level must be a mapping of sections")])
    return data, node


def _apply_env(
    data: dict[str, Any], env: Mapping[str, str], origins: dict[tuple[str, ...], str]
) -> None:
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name in _NOT_SETTINGS:
            continue
        parts = tuple(p.lower() for p in name[len(ENV_PREFIX) :].split("__"))
        if len(parts) < 2 or not all(parts):
            raise ConfigError(
                [(name, "-", "expected SLOGUARD_<SECTION>__<FIELD> (double underscore)")]
            )
        try:
            value = yaml.safe_load(env[name])
        except yaml.YAMLError:
            value = env[name]
        target = data
        for part in parts[:-1]:
            child = target.get(part)
            if not isinstance(child, dict):
                child = {}
                target[part] = child
            target = child
        target[parts[-1]] = value
        origins[parts] = name


def _problems(
    exc: ValidationError,
    file: Path,
    node: yaml.Node | None,
    origins: dict[tuple[str, ...], str],
) -> list[tuple[str, str, str]]:
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(str(part) for part in error["loc"])
        field = ".".join(loc) or "-"
        where = _env_origin(loc, origins)
        if where is None:
            line = _line_of(node, loc)
            where = f"{file}:{line}" if line else str(file)
        problems.append((where, field, error["msg"]))
    return problems


def _env_origin(loc: tuple[str, ...], origins: dict[tuple[str, ...], str]) -> str | None:
    for size in range(len(loc), 0, -1):
        name = origins.get(loc[:size])
        if name is not None:
            return name
    return None
