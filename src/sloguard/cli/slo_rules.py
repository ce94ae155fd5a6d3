"""``sloguard slo rules``: Prometheus rules from the SLO specs the engine evaluates.

Writes a rule file (``groups:``) or a prometheus-operator ``PrometheusRule``;
SLOs without a PromQL translation (Sloth plugins, threshold SLIs) are listed
on stderr and left out. A latency threshold that is not a histogram bucket
boundary (``metrics.duration_buckets`` in the settings) is an error, exit 2.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import typer

from sloguard.settings import ConfigError, load_settings
from sloguard.slo._rules import (
    RuleGenerationError,
    generate_rules,
    prometheus_rule,
    rule_file,
    to_yaml,
)
from sloguard.slo._specload import SpecError, load_slo_files

__all__ = ["RulesFormat", "rules"]


class RulesFormat(enum.StrEnum):
    RULES = "rules"
    PROMETHEUS_RULE = "prometheusrule"


def rules(
    paths: Annotated[list[Path], typer.Argument(help="SLO spec files or directories.")],
    format: Annotated[
        RulesFormat, typer.Option("--format", help="A rule file, or a PrometheusRule resource.")
    ] = RulesFormat.RULES,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    name: Annotated[
        str, typer.Option(help="The PrometheusRule's metadata.name.")
    ] = "sloguard-slos",
    namespace: Annotated[
        str | None, typer.Option(help="The PrometheusRule's metadata.namespace.")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Settings file (histogram buckets).")] = None,
) -> None:
    """Recording and multi-window burn-rate alerting rules for every SLO in PATHS."""
    try:
        buckets = load_settings(config).metrics.duration_buckets
        definitions = load_slo_files(paths)
        generated = generate_rules(definitions, duration_buckets=buckets)
    except (ConfigError, SpecError, RuleGenerationError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for skipped in generated.skipped:
        typer.echo(f"skipped {skipped.name}: {skipped.reason}", err=True)
    if format is RulesFormat.RULES:
        document = rule_file(generated)
    else:
        document = prometheus_rule(generated, name=name, namespace=namespace)
    text = to_yaml(document)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        typer.echo(f"wrote {len(generated.groups)} rule groups to {output}", err=True)
