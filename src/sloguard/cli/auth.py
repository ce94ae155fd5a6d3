"""``sloguard auth …``: validate a policy, and explain a decision."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from sloguard.auth import AuthError, PolicyError, check_policy_file, explain
from sloguard.auth._principal import Principal
from sloguard.routing import RouteTable
from sloguard.settings import ConfigError, load_settings

__all__ = ["app"]

app = typer.Typer(help="Check auth policies and explain decisions.", no_args_is_help=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


@app.command("check")
def check(
    path: Annotated[Path, typer.Argument(help="Policy file (YAML).")], as_json: JsonOpt = False
) -> None:
    """Validate a policy file; exit 2 naming file, line and field for each problem."""
    try:
        snapshot = check_policy_file(path)
    except PolicyError as exc:
        if as_json:
            problems = [{"where": w, "field": f, "message": m} for w, f, m in exc.problems]
            typer.echo(json.dumps({"valid": False, "problems": problems}))
        else:
            console = Console(stderr=True, soft_wrap=True)
            for where, field, message in exc.problems:
                console.print(
                    f"[red]error[/red] {where}: [bold]{field}[/bold]: {message}", highlight=False
                )
        raise typer.Exit(2) from None
    summary = {
        "valid": True,
        "roles": len(snapshot.roles),
        "hash": snapshot.content_hash,
    }
    if as_json:
        typer.echo(json.dumps(summary))
    else:
        roles, digest = len(snapshot.roles), snapshot.content_hash[:12]
        Console().print(f"[green]ok[/green] {path}: {roles} roles, hash {digest}", highlight=False)


@app.command("explain")
def explain_command(
    method: Annotated[str, typer.Option(help="HTTP method.")] = "GET",
    path: Annotated[str, typer.Option(help="Request path, as sent (percent-encoded).")] = "/",
    token: Annotated[
        str | None, typer.Option(help="Bearer token to verify with the configured keys.")
    ] = None,
    policy: Annotated[
        Path | None, typer.Option(help="Policy file (default: auth.policy.file from settings).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Settings file.")] = None,
    route: Annotated[
        list[str] | None,
        typer.Option(help="A route template of the app (repeat); default routing.templates."),
    ] = None,
    tenant_header: Annotated[str | None, typer.Option(help="Value of the tenant header.")] = None,
    permission: Annotated[
        str | None, typer.Option(help="Named permission the route requires.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Say which rule allows or denies a request, and why. Exit 1 when it is denied."""
    from sloguard.asgi._auth_build import build_gate

    err = Console(stderr=True, soft_wrap=True)
    try:
        settings = load_settings(config)
        policy_path = policy or settings.auth.policy.file
        if policy_path is None:
            raise typer.BadParameter("no --policy and no auth.policy.file in the settings")
        snapshot = check_policy_file(policy_path)
        principal: Principal | None = None
        if token is not None:
            gate = build_gate(settings.auth, None)
            principal = gate.claims.to_principal(gate.verifier.verify_sync(token))
    except (ConfigError, PolicyError) as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except AuthError as exc:
        err.print(f"[red]token refused[/red] {exc.code}: {exc.detail}", highlight=False)
        raise typer.Exit(1) from None
    templates = tuple(route or settings.routing.templates)
    table = RouteTable(templates) if templates else None
    result = explain(
        snapshot,
        principal,
        method,
        path,
        table,
        tenant_header=tenant_header,
        required_permission=permission,
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict()))
    else:
        _print(result)
    if not result.decision.allowed:
        raise typer.Exit(1)


def _print(result: object) -> None:
    from sloguard.auth import Explanation

    assert isinstance(result, Explanation)
    console = Console(soft_wrap=True)
    verdict = "[green]allowed[/green]" if result.decision.allowed else "[red]denied[/red]"
    code = f" {result.decision.code}" if result.decision.code else ""
    console.print(
        f"{verdict}{code}: {result.method} {result.path} (route {result.route}) "
        f"by [bold]{result.decision.rule}[/bold]: {result.decision.reason}",
        highlight=False,
    )
    steps = Table("stage", "outcome", "detail", title="How it was decided")
    for step in result.steps:
        steps.add_row(step.stage, step.outcome, step.detail)
    console.print(steps)
    if result.principal is not None:
        console.print(
            f"principal {result.principal}; tenant {result.tenant or '-'}; "
            f"roles {', '.join(r.name for r in result.roles) or '-'}",
            highlight=False,
        )
    if result.matching_grants:
        console.print("grants matching this request: " + "; ".join(result.matching_grants))
