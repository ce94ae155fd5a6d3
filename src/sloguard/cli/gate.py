"""``sloguard gate``: say no to a release while an SLO's budget is spent.

Exit 0 pass, 1 blocked, 2 usage or input error. Policies (any that is set
must pass for every SLO named): the remaining budget at or above
``--min-remaining`` percent; the burn rate over ``--burn-window`` at or below
``--max-burn``; no page tier firing (``--allow-paging`` turns that off). An
exemption (``--exempt REASON``) lets a blocked release through — a
reliability or security fix — and is written to the audit log
(``audit.jsonl`` beside the store) with who, when, what and why.
"""

from __future__ import annotations

import getpass
import json
import os
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any
from xml.sax.saxutils import escape, quoteattr

import typer
from rich.console import Console
from rich.table import Table

from sloguard.cli._slo_source import definitions, statuses
from sloguard.settings import ConfigError, load_settings
from sloguard.slo._budget import as_decimal, burn_rate
from sloguard.slo._engine import SLOStatus
from sloguard.slo._model import parse_duration
from sloguard.slo._specload import SpecError
from sloguard.store import SQLiteStore, StoreError

__all__ = ["gate"]


def gate(
    slo: Annotated[
        list[str] | None, typer.Option("--slo", help="SLO name (repeat); default all.")
    ] = None,
    spec: Annotated[
        list[Path] | None, typer.Option(help="SLO spec files/dirs (default: the settings' SLOs).")
    ] = None,
    config: Annotated[Path | None, typer.Option(help="Settings file.")] = None,
    store: Annotated[Path | None, typer.Option(help="SLI store (default sli.store_path).")] = None,
    min_remaining: Annotated[
        float | None, typer.Option(help="Block when remaining budget % is below this.")
    ] = 0.0,
    max_burn: Annotated[
        float | None, typer.Option(help="Block when the burn rate over --burn-window exceeds this.")
    ] = None,
    burn_window: Annotated[str, typer.Option(help="Window for --max-burn, e.g. 1h.")] = "1h",
    allow_paging: Annotated[bool, typer.Option(help="Do not block on a firing page tier.")] = False,
    exempt: Annotated[
        str | None, typer.Option(help="Let a blocked release through, for this reason (audited).")
    ] = None,
    output: Annotated[str, typer.Option("--format", help="text, json or junit.")] = "text",
    out_file: Annotated[
        Path | None, typer.Option("--output", help="Write the report here.")
    ] = None,
) -> None:
    """Pass (exit 0) or block (exit 1) a release on the SLOs' error budgets."""
    if output not in {"text", "json", "junit"}:
        raise typer.BadParameter("--format must be text, json or junit")
    err = Console(stderr=True, soft_wrap=True)
    at = datetime.now(UTC)
    try:
        settings = load_settings(config)
        chosen = definitions(settings, spec or [], slo or [])
        window = parse_duration(burn_window)
        results = statuses(chosen, store or settings.sli.store_path, at)
        burns = _burns(chosen, store or settings.sli.store_path, at, window) if max_burn else {}
    except (ConfigError, SpecError, StoreError, ValueError) as exc:
        err.print(f"[red]error[/red] {exc}", highlight=False)
        raise typer.Exit(2) from None
    except KeyError as exc:
        err.print(f"[red]error[/red] unknown SLO: {exc.args[0]}", highlight=False)
        raise typer.Exit(2) from None
    checks = [
        _judge(s, min_remaining, max_burn, burns.get(s.definition.name), allow_paging)
        for s in results
    ]
    blocked = any(not c["passed"] for c in checks)
    verdict = "blocked" if blocked else "pass"
    if blocked and exempt:
        verdict = "exempted"
        _audit(store or settings.sli.store_path, checks, exempt, at)
    report = {"verdict": verdict, "at": at.isoformat(), "slos": checks, "exemption": exempt}
    text = _render(report, output)
    if out_file is not None:
        out_file.write_text(text)
    if output == "text":
        _print(report)
    elif out_file is None:
        typer.echo(text)
    raise typer.Exit(1 if verdict == "blocked" else 0)


def _burns(chosen: list[Any], store_path: Path, at: datetime, window: timedelta) -> dict[str, Any]:
    end = int(at.timestamp()) // 60 + 1
    start = end - int(window.total_seconds()) // 60
    burns = {}
    with SQLiteStore(store_path) as store:
        for definition in chosen:
            good, total = store.totals(definition.name, start, end)
            burns[definition.name] = burn_rate(good, total, definition.target)
    return burns


def _judge(
    status: SLOStatus,
    min_remaining: float | None,
    max_burn: float | None,
    burn: Fraction | None,
    allow_paging: bool,
) -> dict[str, Any]:
    report = status.report
    reasons = []
    remaining = report.remaining
    floor = None if min_remaining is None else Fraction(str(min_remaining))
    if floor is not None and remaining is not None and remaining * 100 < floor:
        shown = as_decimal(remaining * 100, 2)
        reasons.append(f"remaining budget {shown}% is below {min_remaining}%")
    if max_burn is not None and burn is not None and burn > Fraction(str(max_burn)):
        reasons.append(f"burn rate {as_decimal(burn, 2)} is above {max_burn}")
    if not allow_paging and status.paging:
        names = ", ".join(t.tier.name for t in status.firing)
        reasons.append(f"page tier firing: {names}")
    return {
        "slo": status.definition.name,
        "passed": not reasons,
        "reasons": reasons,
        "status": str(report.status),
        "sli": None if report.sli is None else str(as_decimal(report.sli * 100, 4)),
        "remaining_percent": None if remaining is None else str(as_decimal(remaining * 100, 2)),
        "burn_rate": None if burn is None else str(as_decimal(burn, 3)),
        "firing": [t.tier.name for t in status.firing],
    }


def _audit(store_path: Path, checks: list[dict[str, Any]], reason: str, at: datetime) -> None:
    path = store_path.parent / "audit.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {
        "at": at.isoformat(),
        "action": "gate.exemption",
        "by": os.environ.get("GITHUB_ACTOR") or getpass.getuser(),
        "reason": reason,
        "blocked_slos": [c["slo"] for c in checks if not c["passed"]],
        "reasons": [r for c in checks for r in c["reasons"]],
    }
    with path.open("a", encoding="utf-8") as log:
        log.write(json.dumps(entry) + "\n")


def _render(report: dict[str, Any], output: str) -> str:
    if output == "junit":
        cases = []
        for check in report["slos"]:
            name = quoteattr(check["slo"])
            if check["passed"]:
                cases.append(f'    <testcase classname="sloguard.gate" name={name}/>')
            else:
                message = quoteattr("; ".join(check["reasons"]))
                cases.append(
                    f'    <testcase classname="sloguard.gate" name={name}>'
                    f"<failure message={message}>{escape(json.dumps(check))}</failure></testcase>"
                )
        failures = sum(not c["passed"] for c in report["slos"])
        if report["verdict"] == "exempted":
            failures = 0
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<testsuite name="sloguard gate" tests="{len(cases)}" failures="{failures}">\n'
            + "\n".join(cases)
            + "\n</testsuite>\n"
        )
    return json.dumps(report, indent=2)


def _print(report: dict[str, Any]) -> None:
    console = Console(soft_wrap=True)
    table = Table("SLO", "SLI %", "budget left %", "firing", "result")
    for check in report["slos"]:
        result = (
            "[green]pass[/green]"
            if check["passed"]
            else "[red]" + "; ".join(check["reasons"]) + "[/red]"
        )
        table.add_row(
            check["slo"],
            check["sli"] or "no data",
            check["remaining_percent"] or "-",
            ", ".join(check["firing"]) or "-",
            result,
        )
    console.print(table)
    colour = {"pass": "green", "blocked": "red", "exempted": "yellow"}[report["verdict"]]
    console.print(f"gate: [{colour}]{report['verdict']}[/{colour}]", highlight=False)
