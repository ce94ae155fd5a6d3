"""``sloguard probe …``: attach, list and detach live probes in a running process.

The process must serve a probe control socket (started under ``sloguard run``,
or calling ``start_control_server``); on Python 3.14+ one is started in a
process that has none through ``sys.remote_exec``.

Exit 0 done; 1 the process could not attach the probe (an internal failure,
reported with its reason); 2 usage or input error: a malformed or unknown
target, an unknown probe, no such process or no control socket.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from sloguard.inject._control import (
    ProbeClient,
    ProbeControlError,
    ProbeRequestError,
)

__all__ = ["app"]

app = typer.Typer(help="Attach, list and detach live probes in a running process.")
PidOpt = Annotated[int, typer.Option("--pid", help="Process id of the running service.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]
DirOpt = Annotated[
    Path | None,
    typer.Option(
        "--socket-dir",
        envvar="SLOGUARD_INJECT__PROBES__SOCKET_DIR",
        help="Where the process keeps its control socket (its inject.probes.socket_dir).",
    ),
]
KINDS = ("span", "metric", "log")
MECHANISMS = ("auto", "monitoring", "codepatch")


def _fail(exc: ProbeControlError) -> NoReturn:
    Console(stderr=True, soft_wrap=True).print(f"[red]error[/red] {exc}", highlight=False)
    code = 1 if isinstance(exc, ProbeRequestError) and exc.code == "failed" else 2
    raise typer.Exit(code)


def _table(probes: list[dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for column in ("id", "target", "kind", "mechanism", "state", "calls", "cost ns", "budget ns"):
        table.add_column(column, justify="right" if column.endswith(("ns", "calls")) else "left")
    for probe in probes:
        state = probe["state"]
        if probe.get("reason"):
            state = f"{state}: {probe['reason']}"
        cost = probe.get("cost_ns")
        table.add_row(
            probe["id"],
            probe["target"],
            probe["kind"],
            probe["mechanism"],
            f"[yellow]{state}[/yellow]" if probe["state"] != "active" else state,
            str(probe["calls"]),
            "-" if cost is None else str(cost),
            str(probe["budget_ns"]),
        )
    return table


@app.command("add")
def add(
    target: Annotated[str, typer.Argument(help="module:qualname, e.g. myapp.db:Repo.get")],
    pid: PidOpt,
    kind: Annotated[str, typer.Option("--kind", help="span, metric or log.")] = "span",
    capture_args: Annotated[
        bool, typer.Option("--capture-args", help="Record arguments (redacted, size-limited).")
    ] = False,
    budget_ns: Annotated[
        int | None,
        typer.Option("--budget-ns", min=100, max=1_000_000_000, help="Per-call cost budget (ns)."),
    ] = None,
    mechanism: Annotated[
        str | None, typer.Option("--mechanism", help="auto, monitoring or codepatch.")
    ] = None,
    allow_import: Annotated[
        bool | None,
        typer.Option("--import/--no-import", help="Import the module if it is not loaded yet."),
    ] = None,
    socket_dir: DirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Attach a probe to TARGET in process --pid, without a restart."""
    if kind not in KINDS:
        raise typer.BadParameter(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if mechanism is not None and mechanism not in MECHANISMS:
        raise typer.BadParameter(f"--mechanism must be one of {', '.join(MECHANISMS)}")
    client = ProbeClient(pid, directory=socket_dir)
    try:
        probe = client.add(
            target,
            kind,
            capture_args=capture_args,
            budget_ns=budget_ns,
            mechanism=mechanism,
            allow_import=allow_import,
        )
    except ProbeControlError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(probe))
        return
    Console().print(
        f"[green]attached[/green] {probe['id']}: {probe['kind']} probe on {probe['target']} "
        f"(pid {pid}, {probe['mechanism']}, budget {probe['budget_ns']} ns)",
        highlight=False,
    )


@app.command("list")
def list_command(pid: PidOpt, socket_dir: DirOpt = None, as_json: JsonOpt = False) -> None:
    """List the probes of process --pid, with calls, measured cost and state."""
    try:
        probes = ProbeClient(pid, directory=socket_dir).list()
    except ProbeControlError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(probes))
        return
    if not probes:
        Console().print(f"no probes in pid {pid}", highlight=False)
        return
    Console().print(_table(probes, f"probes in pid {pid}"))


@app.command("remove")
def remove(
    key: Annotated[str, typer.Argument(help="A probe id (p1) or a target (all its probes).")],
    pid: PidOpt,
    socket_dir: DirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Detach probes from process --pid; the function gets its original code back."""
    try:
        removed = ProbeClient(pid, directory=socket_dir).remove(key)
    except ProbeControlError as exc:
        _fail(exc)
    if as_json:
        typer.echo(json.dumps(removed))
        return
    for probe in removed:
        Console().print(
            f"[green]removed[/green] {probe['id']}: {probe['kind']} probe on {probe['target']} "
            f"after {probe['calls']} calls",
            highlight=False,
        )
