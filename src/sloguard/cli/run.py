"""``sloguard run [options] -- CMD ARGS…``: run a Python program instrumented, no code changes.

The command is ``exec``'d in place of ``sloguard`` (so the server gets its
signals directly and keeps its pid) with two changes to its environment:
sloguard's ``sitecustomize`` directory first on ``PYTHONPATH``, which runs
the bootstrap in every Python process the command starts, and the options
below as ``SLOGUARD_*`` settings overrides, which every worker inherits.

The settings are loaded here first, so a bad ``sloguard.yaml`` is a usage
error (exit 2) before anything starts. ``--explain`` makes every process
print, when it exits, what was instrumented, what was skipped and why;
``--explain-file`` appends the same report as JSON, one line per process.
Not instrumented: interpreters started with ``-I``/``-E``/``-S`` (they ignore
``PYTHONPATH`` or ``site``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

__all__ = ["CONTEXT_SETTINGS", "child_environment", "register", "run"]

# Everything after the command's name belongs to the command, not to sloguard.
CONTEXT_SETTINGS: dict[str, Any] = {"allow_interspersed_args": False}
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def run(
    command: Annotated[list[str], typer.Argument(help="The program and its arguments.")],
    config: Annotated[Path | None, typer.Option(help="Settings file (sloguard.yaml).")] = None,
    trace: Annotated[
        list[str] | None,
        typer.Option(help="Trace the functions a selector matches, e.g. 'app.db:*' (repeat)."),
    ] = None,
    tasks: Annotated[
        bool | None, typer.Option("--tasks/--no-tasks", help="Track asyncio tasks.")
    ] = None,
    explain: Annotated[
        bool, typer.Option(help="At each process's exit, print what was instrumented and why.")
    ] = False,
    explain_file: Annotated[
        Path | None, typer.Option(help="Append each process's report to this file as JSON.")
    ] = None,
    service_name: Annotated[str | None, typer.Option(help="The service's name.")] = None,
) -> None:
    """Run CMD with sloguard's tracing, metrics and logs, without changing its code."""
    from sloguard.settings import ConfigError, load_settings

    overrides: dict[str, Any] = {}
    if service_name is not None:
        overrides["SLOGUARD_SERVICE__NAME"] = service_name
    if tasks is not None:
        overrides["SLOGUARD_INJECT__TASKS__ENABLED"] = tasks
    if explain:
        overrides["SLOGUARD_INJECT__EXPLAIN"] = True
    if explain_file is not None:
        overrides["SLOGUARD_INJECT__EXPLAIN_FILE"] = str(explain_file.resolve())
    try:
        base = load_settings(config)
        if trace:
            selectors = [*base.inject.trace.selectors, *trace]
            overrides["SLOGUARD_INJECT__TRACE__SELECTORS"] = selectors
        env = child_environment(os.environ, config, overrides)
        settings = load_settings(env=env)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if settings.metrics.multiprocess_dir is not None:
        # Before the first metric exists in any worker, whoever imports prometheus_client.
        settings.metrics.multiprocess_dir.mkdir(parents=True, exist_ok=True)
        env.setdefault(_MULTIPROC_ENV, str(settings.metrics.multiprocess_dir.resolve()))
    _exec(command, env)


def child_environment(
    base: Mapping[str, str], config: Path | None, overrides: Mapping[str, Any]
) -> dict[str, str]:
    """``base`` plus the settings overrides and sloguard's ``sitecustomize`` on ``PYTHONPATH``.

    Values are written as JSON, which the settings loader reads as YAML: a
    service called ``true`` stays a string.
    """
    from sloguard.inject._bootstrap import SITE_DIR

    env = dict(base)
    if config is not None:
        env["SLOGUARD_CONFIG"] = str(config.resolve())
    for name, value in overrides.items():
        env[name] = json.dumps(value)
    site = str(SITE_DIR)
    entries = [entry for entry in env.get("PYTHONPATH", "").split(os.pathsep) if entry != site]
    env["PYTHONPATH"] = os.pathsep.join([site, *(entry for entry in entries if entry)])
    return env


def _exec(command: list[str], env: dict[str, str]) -> NoReturn:
    try:
        os.execvpe(command[0], command, env)  # noqa: S606 - running the user's command is the job
    except OSError as exc:
        typer.echo(f"error: cannot run {command[0]!r}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    """Add ``run`` to the root app (it needs its own parsing: options stop at CMD)."""
    app.command("run", context_settings=CONTEXT_SETTINGS)(run)


def _standalone() -> typer.Typer:
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    register(app)  # the only command: ``python -m sloguard.cli.run -- CMD`` runs it
    return app


if __name__ == "__main__":
    _standalone()()
