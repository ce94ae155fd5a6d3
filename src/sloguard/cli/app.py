"""The root typer app; verb groups register themselves from their modules."""

from __future__ import annotations

import typer

from sloguard import __version__
from sloguard.cli import auth, config, demo, gate, probe, run, serve, slo, slo_rules, slo_tools

__all__ = ["app", "main"]

app = typer.Typer(
    name="sloguard",
    help="Keep a Python web service inside its service level objectives.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(config.app, name="config")
app.add_typer(auth.app, name="auth")
app.add_typer(probe.app, name="probe")
slo.app.command("rules")(slo_rules.rules)
slo.app.command("backtest")(slo_tools.backtest_command)
slo.app.command("simulate")(slo_tools.simulate_command)
slo.app.command("test")(slo_tools.spec_tests)
slo.app.command("attribution")(slo_tools.attribution)
app.add_typer(slo.app, name="slo")
app.command("demo")(demo.demo)
app.command("gate")(gate.gate)
app.command("serve")(serve.serve)
run.register(app)


@app.command("version")
def version() -> None:
    """Print the sloguard version."""
    typer.echo(__version__)


def main() -> None:
    app()
