"""``carbonledger budgets``: set, list, check (a CI gate), remove; a model's lifecycle."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from carbonledger.cli._ledger_common import (
    LEDGER_URL_HELP,
    fail,
    ledger_errors,
    resolve_ledger_url,
)

budgets_app = typer.Typer(help="Carbon budgets per model lifecycle or team period.")
LedgerUrl = Annotated[str | None, typer.Option("--ledger-url", help=LEDGER_URL_HELP)]
Model = Annotated[str | None, typer.Option("--model", help="Registered model (lifecycle).")]
Team = Annotated[str | None, typer.Option("--team", help="Team (needs --period).")]
Period = Annotated[str | None, typer.Option(help="month, quarter or year (team budgets).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
STATUS_STYLE = {"ok": "green", "warning": "yellow", "exceeded": "bold red"}


def register(app: typer.Typer) -> None:
    """Add the ``budgets`` command group."""
    app.add_typer(budgets_app, name="budgets")


def _engine(url: str) -> Any:
    from carbonledger.ledger import create_ledger_engine, migrate

    engine = create_ledger_engine(url)
    migrate.require_current(engine)
    return engine


@budgets_app.command("set")
def set_cmd(
    limit_kg: Annotated[float, typer.Option("--limit-kg", help="Budget in kg CO2e.")],
    model: Model = None,
    team: Team = None,
    period: Period = None,
    thresholds: Annotated[
        str | None, typer.Option(help="Alert thresholds in percent, e.g. 50,75,90,100.")
    ] = None,
    basis: Annotated[str, typer.Option(help="location or market CO2e.")] = "location",
    note: Annotated[str | None, typer.Option(help="Free text kept with the budget.")] = None,
    ledger_url: LedgerUrl = None,
) -> None:
    """Create or change a budget (budgets.yaml owns the budgets it defines)."""
    from carbonledger.budgets import make_spec, set_budget

    url = resolve_ledger_url(ledger_url)
    with ledger_errors(url):
        spec = make_spec(
            model=model,
            team=team,
            period=period,
            limit_co2e_kg=limit_kg,
            basis=basis,
            thresholds_pct=thresholds,
            note=note,
            where="budgets set",
        )
        with _engine(url).begin() as conn:
            action, stored = set_budget(conn, spec=spec)
    typer.echo(
        f"{stored.label}: {action}, {stored.limit_co2e_kg:g} kg CO2e ({stored.basis}-based), "
        f"alerts at {', '.join(f'{t:g}%' for t in stored.thresholds_pct)}"
    )


@budgets_app.command("remove")
def remove_cmd(
    model: Model = None, team: Team = None, period: Period = None, ledger_url: LedgerUrl = None
) -> None:
    """Remove a budget set with `budgets set` (and its alerts)."""
    from carbonledger.budgets import make_spec, remove_budget

    url = resolve_ledger_url(ledger_url)
    with ledger_errors(url):
        spec = make_spec(model=model, team=team, period=period, limit_co2e_kg=1, where="remove")
        with _engine(url).begin() as conn:
            removed = remove_budget(
                conn, scope=spec.scope, scope_name=spec.scope_name, period=spec.period
            )
    if not removed:
        raise fail(f"no budget for {spec.label}: `carbonledger budgets list` shows them")
    typer.echo(f"{spec.label}: removed")


@budgets_app.command("list")
def list_cmd(as_json: AsJson = False, ledger_url: LedgerUrl = None) -> None:
    """List the budgets with their limits, thresholds and origin."""
    from carbonledger.budgets import list_budgets

    url = resolve_ledger_url(ledger_url)
    with ledger_errors(url), _engine(url).connect() as conn:
        budgets = list_budgets(conn)
    if as_json:
        typer.echo(json.dumps([_budget_json(b) for b in budgets], indent=2))
        return
    if not budgets:
        typer.echo("no budgets: add one with `carbonledger budgets set` or budgets.yaml")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("scope", "name", "period", "limit kg CO2e", "basis", "thresholds %", "origin")
    for b in budgets:
        table.add_row(
            b.scope,
            b.scope_name,
            b.period,
            f"{b.limit_co2e_kg:g}",
            b.basis,
            ",".join(f"{t:g}" for t in b.thresholds_pct),
            b.origin,
        )
    Console(width=120).print(table)


def _budget_json(b: Any) -> dict[str, Any]:
    return {
        "id": b.id,
        "scope": b.scope,
        "name": b.scope_name,
        "period": b.period,
        "limit_co2e_kg": b.limit_co2e_kg,
        "basis": b.basis,
        "thresholds_pct": list(b.thresholds_pct),
        "origin": b.origin,
        "note": b.note,
    }


@budgets_app.command("check")
def check_cmd(
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", help="budgets.yaml to sync first (default: CARBONLEDGER_BUDGETS_PATH)."
        ),
    ] = None,
    notify: Annotated[
        bool, typer.Option("--notify/--no-notify", help="Record alerts and post the webhook.")
    ] = True,
    tags: Annotated[
        bool, typer.Option("--tags/--no-tags", help="Write status tags on registered models.")
    ] = True,
    at: Annotated[
        datetime | None, typer.Option("--at", help="Evaluate at this UTC time (default: now).")
    ] = None,
    as_json: AsJson = False,
    ledger_url: LedgerUrl = None,
) -> None:
    """Evaluate every budget; exit 0 within, 1 threshold crossed, 2 exceeded (a CI gate)."""
    from carbonledger.budgets import check_budgets
    from carbonledger.settings import get_settings

    url = resolve_ledger_url(ledger_url)
    path = file or get_settings().budgets_path
    when = at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at
    with ledger_errors(url):
        report = check_budgets(
            _engine(url), now=when, budgets_path=path, notify=notify, write_tags=tags
        )
    if as_json:
        typer.echo(json.dumps([_status_json(s) for s in report.statuses], indent=2))
    else:
        _print_report(report)
    raise typer.Exit(report.exit_code)


def _status_json(s: Any) -> dict[str, Any]:
    return {
        **_budget_json(s.budget),
        "status": s.status,
        "used_co2e_kg": s.used_co2e_kg,
        "used_pct": s.used_pct,
        "training_co2e_kg": s.training_co2e_kg,
        "inference_co2e_kg": s.inference_co2e_kg,
        "period_start": s.period_start.isoformat() if s.period_start else None,
        "period_end": s.period_end.isoformat() if s.period_end else None,
        "burn_rate_kg_per_day": s.burn_rate_kg_per_day,
        "projected_exhaustion": s.projection,
        "crossed_pct": list(s.crossed_pct),
    }


def _print_report(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=140)
    if report.sync is not None:
        s = report.sync
        console.print(
            f"budgets.yaml: {len(s.added)} added, {len(s.updated)} updated, "
            f"{len(s.removed)} removed, {s.unchanged} unchanged"
        )
    if not report.statuses:
        console.print("no budgets: add one with `carbonledger budgets set` or budgets.yaml")
        return
    table = Table(
        "budget", "used kg", "limit kg", "used %", "training kg", "inference kg",
        "burn kg/day", "runs out", "status",
    )  # fmt: skip
    for s in report.statuses:
        style = STATUS_STYLE[s.status]
        table.add_row(
            s.budget.label,
            f"{s.used_co2e_kg:.4g}",
            f"{s.budget.limit_co2e_kg:g}",
            f"{s.used_pct:.1f}",
            f"{s.training_co2e_kg:.4g}",
            f"{s.inference_co2e_kg:.4g}",
            f"{s.burn_rate_kg_per_day:.3g}",
            s.projection,
            f"[{style}]{s.status}[/{style}]",
        )
    console.print(table)
    if report.alerts_new:
        console.print(
            f"{report.alerts_new} new threshold crossings recorded"
            + (f", {report.alerts_sent} posted to the webhook" if report.alerts_sent else "")
        )
    for warning in report.warnings:
        console.print(f"warning: {warning}", style="yellow")


@budgets_app.command("lifecycle")
def lifecycle_cmd(
    model: Annotated[str, typer.Argument(help="Registered model name.")],
    by: Annotated[str, typer.Option(help="day or month.")] = "month",
    basis: Annotated[str, typer.Option(help="location or market CO2e.")] = "location",
    as_json: AsJson = False,
    ledger_url: LedgerUrl = None,
) -> None:
    """A model's lifecycle: training runs + all inference, per-request CO2e over time."""
    from carbonledger.budgets import lifecycle_timeline, model_lifecycle
    from carbonledger.budgets.lifecycle import Basis, Bucket

    if by not in ("day", "month") or basis not in ("location", "market"):
        raise fail("--by takes day or month, --basis location or market")
    url = resolve_ledger_url(ledger_url)
    with ledger_errors(url), _engine(url).connect() as conn:
        b: Basis = "market" if basis == "market" else "location"
        lc = model_lifecycle(conn, model_name=model, basis=b)
        points = lifecycle_timeline(conn, model_name=model, basis=b, bucket=cast(Bucket, by))
    if as_json:
        from dataclasses import asdict

        out = {**asdict(lc), "co2e_kg": lc.co2e_kg, "timeline": [asdict(p) for p in points]}
        out["inference_g_per_request"] = lc.inference_g_per_request
        out["lifecycle_g_per_request"] = lc.lifecycle_g_per_request
        typer.echo(json.dumps(out, indent=2))
        return
    g = lc.inference_g_per_request
    typer.echo(
        f"{model}: {lc.co2e_kg:.4g} kg CO2e ({basis}-based) = training {lc.training_co2e_kg:.4g} "
        f"kg ({lc.training_runs} runs, {lc.failed_runs} failed) + inference "
        f"{lc.inference_co2e_kg:.4g} kg ({lc.inference_requests} requests"
        + (f", {g:.3g} g/request fully loaded" if g is not None else "")
        + ")"
    )
    from rich.console import Console
    from rich.table import Table

    table = Table(by, "training kg", "inference kg", "requests", "g/request", "cumulative kg")
    for p in points:
        table.add_row(
            p.period,
            f"{p.training_co2e_kg:.4g}",
            f"{p.inference_co2e_kg:.4g}",
            str(p.requests),
            f"{p.inference_g_per_request:.3g}" if p.inference_g_per_request is not None else "",
            f"{p.cumulative_co2e_kg:.4g}",
        )
    if points:
        Console(width=120).print(table)
